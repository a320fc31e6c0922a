"""W&B mirrors of the records, offline: the study run (leaderboard, plots, report), trial tables
and the adapter artifact, each read back from the run folder on disk. No training, no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tracking import TrackingConfig, log_study, open_tracker
from harness.tracking.wandb_tracker import TRUNCATED, read_offline_run, read_offline_table

HOSTILE = "</script><img src=x onerror=alert(1)>"
SCATTER = {"data": [{"type": "scatter", "mode": "markers", "x": [8, 16, 32], "y": [0.2, 0.3, 0.25]}],
           "layout": {"title": {"text": "pass@1 by rank"}}}


def _study(tmp_path: Path, **kw) -> str | None:
    report = tmp_path / "report.html"
    report.write_text("<html><body><h1>lora_rank</h1><p>3 trials</p></body></html>")
    rows = [{"rank": i + 1, "trial": t, "toy/pass@1": p, "params": {"method.r": r}, "reason": None}
            for i, (t, p, r) in enumerate([(2, 0.31, 16), (0, 0.25, 8), (1, 0.2, 32)])]
    args = {"study": "lora_rank", "study_dir": tmp_path / "runs" / "lora_rank",
            "columns": ["rank", "trial", "toy/pass@1", "params", "reason"], "rows": rows,
            "figures": {"scatter": SCATTER}, "report": report, "summary": {"n_complete": 3, "best_trial": 2}}
    return log_study(TrackingConfig(), **{**args, **kw})


def test_study_run_holds_leaderboard_plots_and_report(wandb_dirs):
    run_dir = Path(_study(wandb_dirs))
    assert run_dir.parent == wandb_dirs / "runs" / "lora_rank" / "wandb"
    run = read_offline_run(run_dir)
    assert (run["job_type"], run["group"], run["name"]) == ("study", "lora_rank", "lora_rank/study")
    columns, rows = read_offline_table(run_dir, "leaderboard")
    assert columns == ["rank", "trial", "toy/pass@1", "params", "reason"]
    assert rows == [[1, 2, 0.31, "{'method.r': 16}", None], [2, 0, 0.25, "{'method.r': 8}", None],
                    [3, 1, 0.2, "{'method.r': 32}", None]]
    assert run["summary"]["n_complete"] == 3 and run["summary"]["best_trial"] == 2
    # the report: a file of the run, and an HTML panel that is the page unchanged (inject=False)
    assert "report/report.html" in run["files"]
    assert (run_dir / "files" / "report" / "report.html").read_text() == (wandb_dirs / "report.html").read_text()
    assert run["summary"]["report/_type"] == "html-file"
    assert (run_dir / "files" / run["summary"]["report/path"]).read_text() == (wandb_dirs / "report.html").read_text()
    # the plot, as Plotly JSON
    assert run["summary"]["plots/scatter/_type"] == "plotly-file"
    plot = json.loads((run_dir / "files" / run["summary"]["plots/scatter/path"]).read_text())
    assert plot["data"][0]["type"] == "scatter" and plot["data"][0]["x"] == [8, 16, 32]


def test_study_run_skips_a_bad_figure_with_a_warning(wandb_dirs, capsys):
    run_dir = _study(wandb_dirs, figures={"scatter": SCATTER, "bad": {"data": [{"type": "no-such-trace"}]}})
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("warning: W&B study run: plot 'bad' skipped")]
    summary = read_offline_run(Path(run_dir))["summary"]
    assert summary["plots/scatter/_type"] == "plotly-file" and "plots/bad/_type" not in summary


def test_study_run_failure_is_a_warning_not_an_exception(wandb_dirs, monkeypatch, capsys):
    import wandb

    def refuse(*args, **kwargs):
        raise RuntimeError("backend unreachable\nsecond line")

    monkeypatch.setattr(wandb, "init", refuse)
    assert _study(wandb_dirs) is None
    assert capsys.readouterr().err == "warning: W&B study run: failed: RuntimeError: backend unreachable\n"


@pytest.mark.parametrize("cfg", [TrackingConfig(backend="none", mode="disabled"), TrackingConfig(mode="disabled"),
                                 TrackingConfig(backend="none")])
def test_no_study_run_without_tracking(tmp_path, cfg):
    out = log_study(cfg, study="s", study_dir=tmp_path / "s", columns=["a"], rows=[{"a": 1}], figures={"f": SCATTER},
                    report=None, summary={})
    assert out is None and list(tmp_path.iterdir()) == []


def _trial(tmp_path: Path):
    return open_tracker(TrackingConfig(), study="lora_rank", trial=3, config={"method": {"r": 8}},
                        study_dir=tmp_path / "runs" / "lora_rank")


def test_trial_table_keeps_completions_as_text_and_caps_them(wandb_dirs):
    tracker = _trial(wandb_dirs)
    tracker.log({"step": 40, "train_loss": 1.5}, step=40)
    samples = [["toy/0", 0, HOSTILE, False, "failed"], ["toy/0", 1, "x" * 10_000, True, "passed"],
               ["toy/1", 0, "return 1", True, "passed"]]
    tracker.log_table("toy/samples", columns=["task_id", "sample", "completion", "passed", "verdict"], rows=samples)
    problems = [["toy/0", 2, 1, 0.5], ["toy/1", 1, 1, 1.0]]
    tracker.log_table("toy/problems", columns=["task_id", "n", "c", "pass@1"], rows=problems, max_rows=1)
    tracker.finish(summary={"toy/pass@1": 0.75}, status="complete")

    run_dir = Path(tracker.run_dir)
    columns, rows = read_offline_table(run_dir, "toy/samples")
    assert columns == ["task_id", "sample", "completion", "passed", "verdict"]
    assert rows[0] == ["toy/0", 0, HOSTILE, False, "failed"]  # stored verbatim, as a string
    assert len(rows[1][2]) == 2_000 and rows[1][2].endswith(TRUNCATED) and rows[1][2].startswith("x" * 1_000)
    assert rows[2] == ["toy/1", 0, "return 1", True, "passed"]
    assert read_offline_table(run_dir, "toy/problems") == (["task_id", "n", "c", "pass@1"], [["toy/0", 2, 1, 0.5]])
    run = read_offline_run(run_dir)
    assert run["job_type"] == "trial" and run["summary"]["toy/problems/rows_dropped"] == 1
    # logged at the last training step, not one past it
    assert [r["_step"] for r in run["history"] if r.get("toy/samples/_type") == "table-file"] == [40]


def test_adapter_artifact_is_a_reference_by_default(wandb_dirs):
    adapter = wandb_dirs / "runs" / "lora_rank" / "trial-3" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 4096)
    tracker = _trial(wandb_dirs)
    tracker.log_adapter(adapter, name="lora_rank/trial:3 adapter", upload=False, metadata={"trial": 3})
    tracker.log_adapter(adapter, name="lora_rank-trial-3-adapter", upload=True, metadata={"trial": 3})
    tracker.finish(summary={}, status="complete")

    ref, up = [a for a in read_offline_run(Path(tracker.run_dir))["artifacts"] if a["type"] == "model"]
    assert ref["name"] == "lora_rank-trial-3-adapter" and ref["metadata"] == {"trial": 3}
    assert {e["path"]: e["ref"] for e in ref["entries"]} == {
        "adapter/adapter_config.json": (adapter / "adapter_config.json").as_uri(),
        "adapter/adapter_model.safetensors": (adapter / "adapter_model.safetensors").as_uri(),
    }
    assert {(e["path"], e["ref"], e["size"]) for e in up["entries"]} == {
        ("adapter/adapter_config.json", None, 8), ("adapter/adapter_model.safetensors", None, 4096)}


def test_importing_tracking_does_not_import_wandb():
    code = "import sys, harness.tracking; assert 'wandb' not in sys.modules and 'plotly' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
