"""The report page: one self-contained, offline HTML file around the data of reports.build.

Safety model (model generations are untrusted and land on this page):
- every text from a record reaches the page as JSON inside ``<script type="application/json">``,
  with ``<``, ``>`` and ``&`` escaped as ``\\u003c``... so no record can close that element, and
  the page's script puts it into the document with ``textContent`` only (never as HTML);
- a Content-Security-Policy allows only the page's own three scripts, by hash, and no network
  access of any kind (``default-src 'none'``): an injected ``<script>`` or ``<img src=http...>``
  would be refused by the browser even if it got in;
- plotly.js is embedded once (no CDN); the texts plotly draws are escaped in reports.figures.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from typing import Any

__all__ = ["CSP", "render", "script_hash"]

_STATIC = Path(__file__).resolve().parent / "static"

CSP = ("default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
       "base-uri 'none'; form-action 'none'")

# Registered first, so a violation or error in any later script is shown on the page (and the
# browser test reads it from the DOM).
_GUARD = """
(function () {
  "use strict";
  function note(msg) {
    var box = document.getElementById("page-errors");
    if (box) {
      box.hidden = false;
      var li = document.createElement("li");
      li.textContent = msg;
      box.querySelector("ul").appendChild(li);
    }
    document.documentElement.setAttribute("data-errors", String((+document.documentElement.getAttribute("data-errors") || 0) + 1));
  }
  document.addEventListener("securitypolicyviolation", function (e) {
    note("blocked by the page's security policy: " + e.violatedDirective + " " + (e.blockedURI || ""));
  });
  window.addEventListener("error", function (e) { note("script error: " + e.message); });
  var consoleError = console.error;
  console.error = function () {
    note("console error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
  window.__reportNote = note;
})();
"""

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2733; background: #f6f7f9; }
header { background: #1d2733; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; color: #c9d2dc; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #dde2e8; padding: 6px 24px; z-index: 5; }
nav a { margin-right: 14px; color: #2a5db0; text-decoration: none; }
main { padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: 12px 16px; margin: 14px 0; }
section h2 { margin: 0 0 8px; font-size: 17px; }
.note { color: #58636f; }
.warning { background: #fff6e0; border: 1px solid #f0d28a; padding: 6px 10px; border-radius: 4px; }
#page-errors { background: #fde8e8; border: 1px solid #e8a0a0; padding: 6px 10px; border-radius: 4px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e6e9ee; padding: 3px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: #f0f3f6; cursor: pointer; user-select: none; position: sticky; top: 0; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { white-space: normal; min-width: 280px; max-width: 460px; color: #8a2b2b; }
.scroll { overflow-x: auto; max-height: 640px; overflow-y: auto; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; color: #fff; background: #7f8a96; }
.badge.healthy, .badge.passed, .badge.complete { background: #2e8540; }
.badge.overfitting, .badge.underfitting, .badge.grad_spikes, .badge.pruned, .badge.failed-test { background: #c27c0e; }
.badge.diverged, .badge.oscillating, .badge.failed, .badge.error, .badge.timeout, .badge.crashed, .badge.oom { background: #c0392b; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 10px; }
pre { background: #f3f5f8; border: 1px solid #e1e5ea; padding: 8px; overflow-x: auto; white-space: pre-wrap; margin: 4px 0 10px; max-height: 360px; }
.sample { border-top: 1px solid #e6e9ee; padding-top: 8px; margin-top: 8px; }
"""


def script_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def _json_for_html(data: Any) -> str:
    """JSON that cannot end its <script> element or open another: <, > and & as \\u escapes."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render(data: dict[str, Any]) -> str:
    """The whole page as a string; ``data`` is reports.build.collect's first value."""
    app = (_STATIC / "report.js").read_text()
    plotly_js = _plotly_js()
    scripts = [_GUARD, plotly_js, app]
    csp = CSP.format(hashes=" ".join(script_hash(s) for s in scripts))
    title = html.escape(f"Study report: {data.get('study')}")
    sections = [("leaderboard", "Leaderboard"), ("cost", "Quality versus cost"), ("mattered", "What mattered"),
                ("curves", "Training curves"), ("problems", "Per problem"), ("samples", "Sample generations"),
                ("provenance", "Provenance")]
    nav = " ".join(f'<a href="#{sid}">{name}</a>' for sid, name in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{name}</h2><div class="content"></div></section>' for sid, name in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_STYLE}</style>
<script>{_GUARD}</script>
</head>
<body>
<header><h1>{title}</h1><p id="subtitle"></p></header>
<nav>{nav}</nav>
<main>
<div id="page-errors" hidden><strong>This page hit problems while drawing:</strong><ul></ul></div>
<div id="skipped"></div>
{body}
</main>
<script type="application/json" id="report-data">{_json_for_html(data)}</script>
<script>{plotly_js}</script>
<script>{app}</script>
</body>
</html>
"""
