"""The report page in a real headless Chromium: every section drawn, no script error, no policy
violation, no network request, and hostile model output shown as text."""

from __future__ import annotations

import re

import pytest

from reports.build import build_report
from tests.browser import dump_dom, network_requests, screenshot
from tests.reports.records import write_study

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    study = write_study(tmp_path_factory.mktemp("report") / "study", n_trials=6)
    return build_report(study).path


def test_every_section_is_drawn_without_errors(chromium, page):
    dom = dump_dom(chromium, page, wait_ms=8000)
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-ready="1"' in html_tag, "the page's script did not finish"
    assert "data-errors" not in html_tag, re.search(r'<div id="page-errors".*?</div>', dom, re.S).group(0)
    # leaderboard: one row per trial record that could be read (6 complete + pruned, failed, lost, torn metrics)
    table = re.search(r'<table id="leaderboard-table">.*?</table>', dom, re.S).group(0)
    assert len(re.findall(r"<tr data-trial=", table)) == 10
    # plots: 3 Pareto, importance, history, 4 curve overlays, the single-trial view and the problem heatmap
    assert len(re.findall(r'class="main-svg"', dom)) >= 2 * 11  # plotly draws two main-svg layers per plot
    for section in ("leaderboard", "cost", "mattered", "curves", "problems", "samples", "provenance"):
        body = re.search(rf'<section id="{section}">(.*?)</section>', dom, re.S).group(1)
        assert len(body) > 200, f"section {section} is empty"
    assert "Skipped 2 record(s)" in dom and "manifest.json is not valid JSON" in dom


def test_hostile_model_output_is_text_not_markup(chromium, page):
    dom = dump_dom(chromium, page, wait_ms=8000)
    assert "<title>Study report: study</title>" in dom  # the injected script did not run
    assert '<img src="http://example.invalid' not in dom
    assert "&lt;/script&gt;&lt;script&gt;document.title=" in dom  # shown, escaped, in a <pre>
    assert network_requests(chromium, page) == []


def test_screenshot_of_the_report(chromium, page, tmp_path):
    png = screenshot(chromium, page, tmp_path / "report.png", width=1400, height=3000)
    assert png.stat().st_size > 50_000
