"""The headless-Chromium helpers (tests/browser.py) on tiny pages: the mechanisms the HTML report's
test relies on. Scripts run and their DOM writes are visible; a Content-Security-Policy with a
script hash runs exactly the hashed inline script, and the page sees the violation; screenshots
render text; the network requests a page attempts are seen, and CSP-blocked ones never happen."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

import pytest

from tests.browser import dump_dom, network_requests, screenshot

pytestmark = pytest.mark.browser


def _page(tmp_path: Path, body: str, *, head: str = "", name: str = "page.html") -> Path:
    page = tmp_path / name
    page.write_text(f'<!doctype html>\n<html><head><meta charset="utf-8">{head}</head>\n<body>{body}</body></html>\n', encoding="utf-8")
    return page


def _csp_sha256(script: str) -> str:
    """The CSP source for an inline script: sha256 of its exact text between <script> and </script>."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def _text_of(dom: str, element_id: str) -> str:
    found = re.search(rf'<([a-z]+) id="{element_id}">(.*?)</\1>', dom, re.DOTALL)
    assert found, f"no element #{element_id} in the DOM:\n{dom[:2000]}"
    return html.unescape(found.group(2))


# A listener registered by the allowed script: each violation becomes an <li> "directive|blocked URI".
RECORD_VIOLATIONS = (
    'document.addEventListener("securitypolicyviolation", (e) => {'
    ' const li = document.createElement("li");'
    ' li.textContent = e.effectiveDirective + "|" + e.blockedURI;'
    ' document.getElementById("violations").appendChild(li); });'
)


def test_a_scripts_dom_writes_are_in_the_dump(chromium, tmp_path):
    page = _page(
        tmp_path,
        '<p id="now">static</p><p id="later">static</p>'
        '<script>document.getElementById("now").textContent = "written by " + "script";'
        ' setTimeout(() => { document.getElementById("later").textContent = "after a timer"; }, 1500);</script>',
    )
    dom = dump_dom(chromium, page)
    assert _text_of(dom, "now") == "written by script"
    assert _text_of(dom, "later") == "after a timer"  # --virtual-time-budget lets timers finish


def test_csp_hash_runs_only_the_hashed_inline_script_and_the_page_sees_the_violation(chromium, tmp_path):
    allowed = RECORD_VIOLATIONS + ' document.getElementById("allowed").textContent = "ALLOWED-RAN";'
    blocked = 'document.getElementById("blocked").textContent = "BLOCKED-RAN";'
    csp = f"default-src 'none'; script-src {_csp_sha256(allowed)}"
    page = _page(
        tmp_path,
        '<p id="allowed">not run</p><p id="blocked">not run</p><ul id="violations"></ul>'
        f"<script>{allowed}</script><script>{blocked}</script>",
        head=f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
    )
    dom = dump_dom(chromium, page)
    assert _text_of(dom, "allowed") == "ALLOWED-RAN"
    assert _text_of(dom, "blocked") == "not run"
    assert "BLOCKED-RAN" not in dom.replace(blocked, "")  # only in the blocked script's own source
    violations = re.findall(r"<li>(.*?)</li>", _text_of(dom, "violations"))
    assert violations == ["script-src-elem|inline"], dom

    # The same page without the policy runs both scripts: the policy, not a typo, blocked the second.
    no_csp = _page(tmp_path, f'<p id="allowed">not run</p><p id="blocked">not run</p><ul id="violations"></ul>'
                   f"<script>{allowed}</script><script>{blocked}</script>", name="no-csp.html")
    dom = dump_dom(chromium, no_csp)
    assert (_text_of(dom, "allowed"), _text_of(dom, "blocked")) == ("ALLOWED-RAN", "BLOCKED-RAN")


def test_screenshot_is_a_png_of_the_window_with_text_rendered(chromium, tmp_path):
    text = _page(tmp_path, '<h1 style="font: 48px sans-serif">Leaderboard 0.1234</h1>' + "<p>pass@1 row</p>" * 200, name="text.html")
    blank = _page(tmp_path, "", name="blank.html")
    png = screenshot(chromium, text, tmp_path / "text.png", width=800, height=1200)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (800, 1200)  # IHDR
    empty = screenshot(chromium, blank, tmp_path / "blank.png", width=800, height=1200).read_bytes()
    # Glyphs (a font is installed) make the image far less compressible than a blank page.
    assert len(data) > 4 * len(empty), (len(data), len(empty))


def test_network_requests_sees_what_the_page_tried_to_fetch(chromium, tmp_path):
    img = _page(tmp_path, '<img src="http://example.invalid/x.png" alt="">', name="img.html")
    assert network_requests(chromium, img) == ["http://example.invalid/x.png"]

    scripted = _page(
        tmp_path,
        '<link rel="stylesheet" href="https://css.example.invalid/s.css">'
        '<script>fetch("http://fetch.example.invalid/f").catch(() => {});'
        ' setTimeout(() => { new Image().src = "http://timer.example.invalid/t.png"; }, 1000);</script>',
        name="scripted.html",
    )
    assert sorted(network_requests(chromium, scripted)) == [
        "http://fetch.example.invalid/f",
        "http://timer.example.invalid/t.png",
        "https://css.example.invalid/s.css",
    ]


def test_network_requests_is_empty_for_a_self_contained_page(chromium, tmp_path):
    local = tmp_path / "local.png"
    local.write_bytes(base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="))
    page = _page(
        tmp_path,
        '<p id="x">x</p><img src="local.png" alt=""><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">'
        '<script>document.getElementById("x").textContent = "ran";</script>',
    )
    assert network_requests(chromium, page) == []


def test_a_csp_blocked_request_never_reaches_the_network(chromium, tmp_path):
    record = RECORD_VIOLATIONS
    page = _page(
        tmp_path,
        f'<ul id="violations"></ul><script>{record}</script><img src="http://example.invalid/x.png" alt="">',
        head=f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src {_csp_sha256(record)}\">",
    )
    assert network_requests(chromium, page) == []
    violations = re.findall(r"<li>(.*?)</li>", _text_of(dump_dom(chromium, page), "violations"))
    assert violations == ["img-src|http://example.invalid/x.png"]
