"""One contract for every tracker in ``harness.tracking.TRACKERS``: log rows at their steps, a
table of hostile and very long text, the adapter, a summary and a status; then read back what
the backend itself wrote (W&B's offline run files, TensorBoard's event files). No training.

A new backend is an entry in TRACKERS plus a reader in READERS below (a test checks both lists
agree)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

import pytest
import yaml

from harness.errors import ConfigError
from harness.schema import from_dict
from harness.tracking import TRACKERS, TrackingConfig, finish_lost_run, open_tracker
from harness.tracking._base import MAX_CHARS, TRUNCATED
from tests.conftest import CONF, REPO

HOSTILE = "</script><img src=x onerror=alert(1)>"
LONG = "x" * 10_000
ROWS = [  # as harness.train records them: eval at 0, train rows, then both (and a probe) at 10
    {"step": 0, "eval_loss": 2.5},
    {"step": 5, "train_loss": 2.4, "learning_rate": 1e-3, "grad_norm": 0.75},
    {"step": 10, "train_loss": 2.1, "learning_rate": 5e-4, "grad_norm": 0.5, "eval_loss": 2.25, "probe/pass@1": 0.25},
]
SAMPLE_COLUMNS = ["task_id", "completion", "verdict"]
SAMPLES = [["toy/0", HOSTILE, "failed"], ["toy/1", LONG, "passed"], ["toy/2", "def f():\n    return 1", "passed"]]
SUMMARY = {"toy/pass@1": 0.5, "eval_loss": 2.25, "diagnosis": "healthy"}
CONFIG = {"method": {"name": "lora", "r": 8}}


@dataclass
class Readback:
    """What a backend wrote, in one shape: table cells as strings, as each UI shows them."""

    config: dict[str, Any]
    scalars: dict[str, dict[int, float]]  # history key -> {step: value}
    tables: dict[str, tuple[list[str], list[list[str]]]]
    rows_dropped: dict[str, int]
    adapter: Path
    summary: dict[str, Any]  # with "status"
    html: str | None = None  # the samples table as the UI renders it, where that can be checked offline


def _read_wandb(run_dir: Path, tables: list[str]) -> Readback:
    from harness.tracking.wandb_tracker import read_offline_run, read_offline_table

    run = read_offline_run(run_dir)
    scalars: dict[str, dict[int, float]] = {}
    for row in run["history"]:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not key.startswith("_"):
                scalars.setdefault(key, {})[row["_step"]] = value
    read = {key: read_offline_table(run_dir, key) for key in tables}
    (artifact,) = [a for a in run["artifacts"] if a["type"] == "model"]
    (adapter,) = {Path(unquote(urlparse(e["ref"]).path)).parent for e in artifact["entries"]}
    return Readback(
        config=run["config"], scalars=scalars,
        tables={k: (cols, [[str(c) for c in row] for row in rows]) for k, (cols, rows) in read.items()},
        rows_dropped={k: run["summary"][f"{k}/rows_dropped"] for k in tables if f"{k}/rows_dropped" in run["summary"]},
        adapter=adapter, summary=run["summary"],
    )


def _read_tensorboard(run_dir: Path, tables: list[str]) -> Readback:
    import numpy as np
    from tensorboard.plugins.text.text_plugin import text_array_to_html

    from harness.tracking.tensorboard_tracker import read_events, unformat

    events = read_events(run_dir)
    texts = {tag: [[unformat(c) for c in row] for row in series[-1][1]] for tag, series in events["texts"].items()}
    summary: dict[str, Any] = dict(texts["summary"])
    summary.update({k.removeprefix("summary/"): v[max(v)] for k, v in events["scalars"].items() if k.startswith("summary/")})
    samples = events["texts"]["toy/samples"][-1][1]
    return Readback(
        config=json.loads(texts["config"][0][0]),
        scalars={k: v for k, v in events["scalars"].items() if not k.startswith("summary/")},
        tables={k: (texts[k][0], texts[k][1:]) for k in tables},
        rows_dropped={k: int(v[max(v)]) for k, v in ((k, events["scalars"].get(f"{k}/rows_dropped")) for k in tables) if v},
        adapter=Path(dict(texts["adapter"])["path"]), summary=summary,
        html=text_array_to_html(np.array(samples, dtype=object), enable_markdown=True),  # what the Text tab shows
    )


def _lost_wandb(study_dir: Path, run_id: str) -> tuple[str, str]:
    from harness.tracking.wandb_tracker import read_offline_run

    # two folders with the run's id: the dead worker's (perhaps cut short) and the one that closed it
    # (W&B names a second folder started in the same second `offline-run-<time>-<id>-1`)
    for run_dir in (study_dir / "wandb").glob(f"offline-run-*-{run_id}*"):
        try:
            summary = read_offline_run(run_dir)["summary"]
        except Exception:  # noqa: BLE001 - the dead worker's file, never completed
            continue
        if summary.get("status") == "failed":
            return summary["status"], summary["reason"]
    raise AssertionError(f"no failed run {run_id} in {study_dir / 'wandb'}")


def _lost_tensorboard(study_dir: Path, run_id: str) -> tuple[str, str]:
    from harness.tracking.tensorboard_tracker import log_dir, read_events, unformat

    step, cells, _ = read_events(log_dir(study_dir, 4))["texts"]["status"][-1]
    assert step == 5  # at the last step the run reached
    return unformat(cells[0][0]), unformat(cells[1][0])


class Case(NamedTuple):
    cfg: TrackingConfig
    read: Callable[[Path, list[str]], Readback] | None  # None: the backend writes nothing
    read_lost: Callable[[Path, str], tuple[str, str]] | None  # (status, reason) of a run finish_lost_run closed


# tracking.backend -> how the contract opens it and reads back what it wrote
READERS: dict[str, Case] = {
    "none": Case(TrackingConfig(backend="none", mode="disabled"), None, None),
    "wandb": Case(TrackingConfig(backend="wandb", mode="offline"), _read_wandb, _lost_wandb),
    "tensorboard": Case(TrackingConfig(backend="tensorboard"), _read_tensorboard, _lost_tensorboard),
}


def _open(name: str, study_dir: Path, trial: int = 3):
    return open_tracker(READERS[name].cfg, study="contract", trial=trial, config=CONFIG, study_dir=study_dir)


def test_every_registered_tracker_has_a_reader_here():
    assert set(READERS) == set(TRACKERS)


@pytest.mark.filterwarnings("ignore:html5lib's sanitizer is deprecated:DeprecationWarning")  # TensorBoard's renderer
@pytest.mark.parametrize("name", sorted(READERS))
def test_tracker_contract(name, wandb_dirs):
    study_dir = wandb_dirs / "runs" / "contract"
    adapter = study_dir / "trial-3" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 64)

    tracker = _open(name, study_dir)
    for row in ROWS:
        tracker.log(row, step=row["step"])
    tracker.log_table("toy/samples", columns=SAMPLE_COLUMNS, rows=SAMPLES)
    tracker.log_table("toy/problems", columns=["task_id", "n", "c"], rows=[["toy/0", 1, 0], ["toy/1", 1, 1]], max_rows=1)
    tracker.log_adapter(adapter, name="contract-trial-3-adapter", upload=False, metadata={"method": "lora"})
    tracker.finish(summary=SUMMARY, status="complete")

    reader = READERS[name].read
    if reader is None:  # keeps nothing: nothing was written anywhere
        assert tracker.run_dir is None and tracker.run_id is None
        assert [p for p in study_dir.rglob("*") if not p.is_relative_to(adapter)] == [study_dir / "trial-3"]
        return
    back = reader(Path(tracker.run_dir), ["toy/samples", "toy/problems"])
    assert back.config == CONFIG
    # every value of every row, at its step (TensorBoard stores float32)
    for row in ROWS:
        for key, value in row.items():
            if key != "step":
                assert back.scalars[key][row["step"]] == pytest.approx(value, rel=1e-6), (key, row["step"])
    assert set(back.scalars["eval_loss"]) == {0, 10} and set(back.scalars["train_loss"]) == {5, 10}
    # untrusted text is data: stored verbatim, long strings cut to the shared policy
    columns, rows = back.tables["toy/samples"]
    assert columns == SAMPLE_COLUMNS
    assert rows[0] == ["toy/0", HOSTILE, "failed"] and rows[2] == ["toy/2", "def f():\n    return 1", "passed"]
    assert len(rows[1][1]) == MAX_CHARS and rows[1][1].endswith(TRUNCATED) and rows[1][1].startswith("x" * 1_000)
    if back.html is not None:  # the UI shows it as text, never as markup
        assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in back.html
        assert "<img" not in back.html and "<script" not in back.html.lower()
    assert back.tables["toy/problems"] == (["task_id", "n", "c"], [["toy/0", "1", "0"]])
    assert back.rows_dropped == {"toy/problems": 1}
    assert back.adapter == adapter.resolve()
    assert back.summary["status"] == "complete" and back.summary["diagnosis"] == "healthy"
    assert back.summary["toy/pass@1"] == pytest.approx(0.5) and back.summary["eval_loss"] == pytest.approx(2.25)


# A worker that opens its trial's run, logs a row and dies (no finish, no exit handlers).
WORKER = """
import json, os, sys
from pathlib import Path
from tests.harness.test_tracking_contract import _open
tracker = _open(sys.argv[1], Path(sys.argv[2]), trial=4)
tracker.log({"step": 5, "train_loss": 2.0}, step=5)
print(json.dumps({"run_dir": tracker.run_dir, "run_id": tracker.run_id}), flush=True)
os._exit(9)
"""


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_lost_run_is_closed_as_failed(name, wandb_dirs):
    """The reaper (harness.liveness) closes the run of a trial whose worker died, by the run id
    the manifest kept, with the record's reason."""
    study_dir = wandb_dirs / "runs" / "contract"
    case = READERS[name]
    # its own W&B service, as a worker has (not ours, which an earlier test here may have started)
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    worker = subprocess.run([sys.executable, "-c", WORKER, name, str(study_dir)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 9, worker.stderr
    run_id = json.loads(worker.stdout.splitlines()[-1])["run_id"]
    finish_lost_run(case.cfg, run_id=run_id, study="contract", trial=4, study_dir=study_dir,
                    reason="worker lost: no heartbeat")
    if case.read_lost is None:
        assert run_id is None and not study_dir.exists()
    else:
        assert case.read_lost(study_dir, run_id) == ("failed", "worker lost: no heartbeat")


@pytest.mark.parametrize("name", [n for n in sorted(READERS) if n != "wandb"])  # W&B resumes by id, folder or not
def test_lost_run_without_a_run_folder_is_a_no_op(name, wandb_dirs):
    """A trial that died before its tracker opened has no run to close."""
    study_dir = wandb_dirs / "runs" / "contract"
    finish_lost_run(READERS[name].cfg, run_id="contract/trial-9", study="contract", trial=9, study_dir=study_dir,
                    reason="worker lost")
    assert not study_dir.exists()


def test_a_tracker_failure_is_a_warning_in_the_record(tmp_path):
    """What harness.trial does with every tracker call: a failure is noted once in the manifest's
    tracking_warnings, and the trial goes on."""
    from harness.record import TrialRecord, read_json
    from harness.trial import _mirror

    record = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)

    def broken() -> None:
        raise OSError("No space left on device")

    for _ in range(3):  # every row fails alike: one warning
        assert _mirror(record, "a history row", broken) is None
    assert _mirror(record, "opening the tracker", lambda: "a tracker") == "a tracker"
    assert read_json(tmp_path / "trial-0" / "manifest.json")["tracking_warnings"] == [
        "a history row: OSError: No space left on device"]


def test_config_names_come_from_the_registry():
    for name in TRACKERS:
        assert TrackingConfig(backend=name).backend == name
    with pytest.raises(ConfigError) as e:
        from_dict(TrackingConfig, {"backend": "mlflow"}, "tracking")
    assert (e.value.key, e.value.value) == ("tracking.backend", "mlflow")
    assert e.value.expected == f"expected one of {sorted(TRACKERS)}"


def test_each_tracking_config_file_names_a_registered_backend():
    files = sorted((CONF / "tracking").glob("*.yaml"))
    backends = {from_dict(TrackingConfig, yaml.safe_load(f.read_text()), "tracking").backend for f in files}
    assert backends == set(TRACKERS) and {f.stem for f in files} == set(TRACKERS)


def test_importing_tracking_imports_no_tracking_library():
    code = ("import sys, harness.tracking; heavy = {'wandb', 'tensorboard', 'torch'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
