"""Probe rows in a history: the diagnosis reads past them, the report draws them with error bars."""

from __future__ import annotations

from reports import figures as fig
from reports.diagnosis import diagnose

ROWS = [
    {"step": 0, "eval_loss": 2.0},
    *({"step": s, "train_loss": 2.0 - s / 100, "eval_loss": 2.0 - s / 90} for s in range(10, 110, 10)),
    {"step": 50, "probe/pass@1": 0.3, "probe/pass@1_se": 0.09, "probe_s": 1.1},
    {"step": 100, "probe/pass@1": 0.4, "probe/pass@1_se": 0.1, "probe_s": 1.0},
]


def test_the_diagnosis_is_the_same_with_or_without_probe_rows():
    plain = [r for r in ROWS if "probe/pass@1" not in r]
    assert diagnose(ROWS) == diagnose(plain) and diagnose(ROWS).verdict == "healthy"


def test_the_probe_curve_has_standard_error_bars():
    from reports.build import _curves

    curves = _curves([{"trial": 3, "history": ROWS}])
    assert curves[3]["probe/pass@1"] == [[50, 0.3], [100, 0.4]]
    figure = fig.curves_figure(curves, "probe/pass@1")
    trace = figure["data"][0]
    assert trace["x"] == [50, 100] and trace["error_y"]["array"] == [0.09, 0.1]
    assert "error_y" not in fig.curves_figure(curves, "eval_loss")["data"][0]
