"""harness.record: a trial always leaves a self-describing record, written whole, read back tolerantly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

import harness.record as record
from harness.record import TrialRecord, environment_facts, mark_record, read_json

FACTS = {"git": {"sha": "abc123", "dirty": False}, "versions": {"torch": "2.13.0"}, "hardware": {"cpus": 2}}


@pytest.fixture(autouse=True)
def known_environment(monkeypatch):
    """The facts computed once per process, fixed here: no git or torch in these tests."""
    monkeypatch.setattr(record, "_ENV", FACTS)


def _manifest(trial_dir: Path) -> dict:
    return json.loads((trial_dir / "manifest.json").read_text())


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------- TrialRecord


def test_a_new_record_writes_a_running_manifest_at_once(tmp_path):
    rec = TrialRecord(tmp_path / "trial-3", study="lora_rank", number=3, seed=7)
    m = _manifest(rec.dir)
    assert {k: m[k] for k in ("study", "trial", "seed", "status", "reason", "end")} == {
        "study": "lora_rank", "trial": 3, "seed": 7, "status": "running", "reason": None, "end": None}
    assert m["git"] == FACTS["git"] and m["versions"] == FACTS["versions"] and m["hardware"] == FACTS["hardware"]
    assert isinstance(m["start"], float) and m["timings_s"] == {}


def test_a_retried_trial_number_starts_a_clean_history(tmp_path):
    (tmp_path / "trial-0").mkdir()
    (tmp_path / "trial-0" / "history.jsonl").write_text('{"step": 99}\n')
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    assert not (rec.dir / "history.jsonl").exists()


def test_history_lines_are_appended_in_order(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.append_history({"step": 1, "train_loss": 2.5})
    rec.append_history({"step": 2, "train_loss": 2.0, "eval_loss": 2.2})
    lines = (rec.dir / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"step": 1, "train_loss": 2.5},
                                                    {"step": 2, "train_loss": 2.0, "eval_loss": 2.2}]


def test_phases_add_up_and_are_timed_even_when_they_raise(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    with rec.phase("generate"):
        pass
    with rec.phase("generate"):
        pass
    with pytest.raises(RuntimeError), rec.phase("execute"):
        raise RuntimeError("sandbox gone")
    assert set(rec.timings) == {"generate", "execute"}
    assert all(v >= 0 for v in rec.timings.values())
    rec.flush()
    assert set(_manifest(rec.dir)["timings_s"]) == {"generate", "execute"}


def test_update_merges_facts_and_writes_them(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.update(data_hash="d1", model_hash="m1")
    rec.update(model_hash="m2", adapter=Path("/runs/s/trial-0/adapter"))
    m = _manifest(rec.dir)
    assert (m["data_hash"], m["model_hash"], m["adapter"]) == ("d1", "m2", "/runs/s/trial-0/adapter")
    assert m["status"] == "running"


def test_config_is_written_as_yaml_in_its_own_key_order(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    resolved = {"model": {"name": "tiny"}, "method": {"name": "lora", "r": 8}, "data": {"name": "toy"}}
    rec.write_config(resolved)
    text = (rec.dir / "config.yaml").read_text()
    assert yaml.safe_load(text) == resolved
    assert text.index("model:") < text.index("method:") < text.index("data:")


def test_metrics_are_written_as_record_json(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.write_metrics({"toy/pass@1": 0.25, "eval_loss": 1.5, "adapter": Path("a")})
    text = (rec.dir / "metrics.json").read_text()
    assert json.loads(text) == {"toy/pass@1": 0.25, "eval_loss": 1.5, "adapter": "a"}
    assert text.startswith('{\n  "toy/pass@1"') and text.endswith("}\n")


def test_finish_records_status_end_and_total_time(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.finish("complete")
    m = _manifest(rec.dir)
    assert m["status"] == "complete" and m["reason"] is None
    assert m["end"] >= m["start"] and m["timings_s"]["total"] >= 0


def test_a_failed_trial_keeps_its_reason(tmp_path):
    rec = TrialRecord(tmp_path / "trial-1", study="s", number=1, seed=0)
    rec.finish("failed", "CUDA out of memory at step 12")
    m = _manifest(rec.dir)
    assert (m["status"], m["reason"]) == ("failed", "CUDA out of memory at step 12")


def test_writing_a_record_leaves_no_temporary_files(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.write_config({"seed": 0})
    rec.write_metrics({"eval_loss": 1.0})
    rec.finish("complete")
    assert _temp_files(tmp_path) == []
    assert sorted(p.name for p in rec.dir.iterdir()) == ["config.yaml", "manifest.json", "metrics.json"]


# ---------------------------------------------------------------------------------------------- mark_record


def test_mark_record_fails_a_lost_workers_trial_and_keeps_what_it_knew(tmp_path):
    rec = TrialRecord(tmp_path / "trial-2", study="s", number=2, seed=5)
    rec.update(data_hash="d1")
    mark_record(rec.dir, study="s", number=2, status="failed", reason="worker lost: no heartbeat", host="node1")
    m = _manifest(rec.dir)
    assert (m["status"], m["reason"], m["host"]) == ("failed", "worker lost: no heartbeat", "node1")
    assert (m["seed"], m["data_hash"]) == (5, "d1")
    assert m["end"] is not None


def test_mark_record_keeps_an_end_time_already_recorded(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.finish("complete")
    end = _manifest(rec.dir)["end"]
    mark_record(rec.dir, study="s", number=0, status="failed", reason="Optuna refused the value")
    assert _manifest(rec.dir)["end"] == end


def test_mark_record_gives_a_trial_that_died_before_its_manifest_a_minimal_one(tmp_path):
    trial_dir = tmp_path / "trial-4"
    mark_record(trial_dir, study="s", number=4, status="failed", reason="preempted")
    m = _manifest(trial_dir)
    assert {k: m[k] for k in ("study", "trial", "start", "status", "reason")} == {
        "study": "s", "trial": 4, "start": None, "status": "failed", "reason": "preempted"}
    assert isinstance(m["end"], float)
    assert not (trial_dir / "metrics.json").exists()


def test_mark_record_replaces_a_malformed_manifest(tmp_path):
    trial_dir = tmp_path / "trial-0"
    trial_dir.mkdir()
    (trial_dir / "manifest.json").write_text('{"study": "s", "trial": 0, "sta')  # torn by a crash
    mark_record(trial_dir, study="s", number=0, status="failed", reason="worker lost")
    assert _manifest(trial_dir)["status"] == "failed"


def test_mark_record_brings_the_metrics_status_into_line(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    rec.write_metrics({"eval_loss": 1.0, "status": "complete"})
    mark_record(rec.dir, study="s", number=0, status="failed", reason="Optuna refused the value")
    assert json.loads((rec.dir / "metrics.json").read_text()) == {"eval_loss": 1.0, "status": "failed"}


def test_mark_record_leaves_matching_metrics_untouched(tmp_path):
    rec = TrialRecord(tmp_path / "trial-0", study="s", number=0, seed=0)
    (rec.dir / "metrics.json").write_text('{"status": "failed", "eval_loss": 1.0}')
    mark_record(rec.dir, study="s", number=0, status="failed", reason="r")
    assert (rec.dir / "metrics.json").read_text() == '{"status": "failed", "eval_loss": 1.0}'


# ---------------------------------------------------------------------------------------------- read_json


def test_read_json_returns_the_object(tmp_path):
    (tmp_path / "m.json").write_text('{"status": "complete"}')
    assert read_json(tmp_path / "m.json") == {"status": "complete"}


@pytest.mark.parametrize("content", [None, "", '{"status": "comp', "[1, 2]", '"text"', "\xff\xfe"])
def test_read_json_treats_missing_torn_or_non_object_files_as_empty(tmp_path, content):
    """A trial that died early: its readers see no facts rather than an exception."""
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    assert read_json(path) == {}


# ---------------------------------------------------------------------------------------------- environment_facts


def test_environment_facts_name_git_versions_and_hardware(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # no torch: no GPU list, and no import cost here
    facts = environment_facts()
    assert set(facts) == {"git", "versions", "hardware"}
    assert set(facts["git"]) == {"sha", "dirty"}
    assert facts["versions"]["optuna"] is not None  # installed: its version string
    assert "gpus" not in facts["hardware"]
    assert facts["hardware"]["cpus"] >= 1 and facts["hardware"]["python"].count(".") == 2


def test_a_missing_package_is_recorded_as_none(monkeypatch):
    from importlib import metadata

    def version(name: str) -> str:
        if name == "bitsandbytes":
            raise metadata.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert environment_facts()["versions"]["bitsandbytes"] is None
    assert environment_facts()["versions"]["peft"] == "1.0"
