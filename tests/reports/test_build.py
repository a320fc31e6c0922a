"""The HTML report as a pure function over records: sections, faults named, untrusted text inert."""

from __future__ import annotations

import json
import re

from reports.build import build_report, collect, main
from reports.figures import pareto_front
from reports.page import script_hash
from tests.reports.records import HOSTILE, write_study


def _page_data(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(blob)


def test_report_builds_with_failed_pruned_lost_and_malformed_records(tmp_path):
    study = write_study(tmp_path / "s", n_trials=4)
    report = build_report(study)
    assert report.path == study / "report.html" and report.path.stat().st_size > 1_000_000  # plotly.js is inside
    skipped = {s["record"]: s["reason"] for s in report.skipped}
    assert "manifest.json is not valid JSON" in skipped["trial-7"]
    assert "complete, but metrics.json is not valid JSON" in skipped["trial-8"]
    data = _page_data(report.path.read_text())
    assert data["skipped"] == report.skipped
    statuses = {r["trial"]: r["status"] for r in data["rows"]}
    assert statuses == {0: "complete", 1: "complete", 2: "complete", 3: "complete", 4: "pruned", 5: "failed",
                        6: "running", 8: "complete"}
    assert data["counts"] == {"complete": 5, "pruned": 1, "failed": 1, "running": 1}
    # every section has its data
    ranked = [r for r in data["rows"] if r["rank"]]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]
    assert all(r["toy/pass@1 95% CI"].startswith("[") for r in ranked)
    assert {"pareto_trainable_params", "pareto_train_s", "pareto_peak_memory_mb", "importance", "history",
            "curve_train_loss", "curve_eval_loss", "curve_grad_norm", "curve_learning_rate", "problems"} <= set(data["figures"])
    assert "too few" in data["importance_warning"] or "noisy" in data["importance_warning"]
    assert data["diagnoses"]["0"]["verdict"] == "healthy" and data["diagnoses"]["2"]["verdict"] == "overfitting"
    assert data["problems"]["trials"][:1] == [ranked[0]["trial"]] and data["problems"]["diff"]["baseline"].startswith("trial ")
    assert data["samples"] and all(s["prompt"] for s in data["samples"])
    facts = {p["fact"]: p["values"] for p in data["provenance"]}
    assert facts["model hash"] == [{"value": "abc123", "trials": [0, 1, 2, 3, 4, 5, 6, 8]}]


def test_untrusted_text_stays_data_and_the_page_allows_only_its_own_scripts(tmp_path):
    study = write_study(tmp_path / "s", n_trials=3)
    html = build_report(study).path.read_text()
    # the hostile completion, prompt and failure reason never appear as markup ...
    assert HOSTILE not in html and "<img" not in html and "pwned\"</script>" not in html
    assert html.count("</script>") == 4  # guard, data, plotly, app: nothing closed a script early
    # ... but are on the page, verbatim, as JSON data
    data = _page_data(html)
    texts = json.dumps(data)
    assert json.dumps(HOSTILE)[1:-1] in texts
    assert all(HOSTILE in s["prompt"] for s in data["samples"])
    results = (study / "trial-0" / "eval" / "toy" / "results.jsonl").read_text()
    assert json.dumps(HOSTILE)[1:-1] in results  # the record holds it; the page holds it only as escaped JSON
    # the policy: no network, scripts only by hash, and the hashes are the page's own scripts
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1).replace("&#x27;", "'")
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(inline) == 3 and all(script_hash(s) in csp for s in inline)
    # nothing is loaded from anywhere
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)


def test_plot_labels_are_escaped_for_plotly(tmp_path):
    study = write_study(tmp_path / "s", n_trials=3)
    params = json.loads((study / "study.json").read_text())
    params["search_space_spec"]["<b>evil</b>"] = {"type": "categorical", "choices": ["a", "b"]}
    (study / "study.json").write_text(json.dumps(params))
    for n in range(3):
        m = json.loads((study / f"trial-{n}" / "manifest.json").read_text())
        m["params"]["<b>evil</b>"] = "ab"[n % 2]
        (study / f"trial-{n}" / "manifest.json").write_text(json.dumps(m))
    _, figures, _ = collect(study)
    labels = figures["importance"]["data"][0]["y"]
    assert "&lt;b&gt;evil&lt;/b&gt;" in labels and "<b>evil</b>" not in labels


def test_pareto_front_keeps_only_undominated_trials():
    points = [(1, 0.3, "a"), (2, 0.5, "b"), (3, 0.4, "c"), (4, 0.6, "d"), (4, 0.2, "e")]
    assert pareto_front(points, maximize=True) == ["a", "b", "d"]
    assert pareto_front([(1, 2.0, "a"), (2, 1.0, "b"), (3, 1.5, "c")], maximize=False) == ["a", "b"]


def test_a_base_model_evaluation_is_the_baseline_when_the_study_has_one(tmp_path):
    study = write_study(tmp_path / "s", n_trials=3, faults=False)
    base = study / "base" / "eval" / "toy"
    base.mkdir(parents=True)
    (base / "metrics.json").write_text(json.dumps({"per_task": {f"toy/add/{p}": {"n": 5, "c": 0} for p in range(40)}}))
    data = _page_data(build_report(study).path.read_text())
    diff = data["problems"]["diff"]
    assert diff["baseline"] == "baseline base" and diff["lost"] == [] and len(diff["gained"]) > 10
    assert diff["interval"][0] > 0  # the best trial is better than a base that solves nothing


def test_cli_exit_codes(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    study = write_study(tmp_path / "s", n_trials=2)
    assert main([str(study)]) == 0
    out = capsys.readouterr()
    assert "report: " in out.out and "skipped trial-" in out.err
