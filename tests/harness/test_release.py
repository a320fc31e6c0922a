"""harness.release ships what passed the gate, with a model card and a W&B artifact; refuses the rest."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.release import main
from tests.harness.test_gate import RATES, record


def trial_dir(path: Path, rates: dict[str, float], *, tracking_mode: str = "offline") -> Path:
    record(path, rates)
    (path / "adapter").mkdir()
    (path / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    (path / "adapter" / "adapter_config.json").write_text("{}")
    (path / "manifest.json").write_text(json.dumps({
        "study": "s", "trial": 3, "status": "complete", "model_hash": "builtin:abc", "data_hash": "d00d", "template": "none",
        "git": {"sha": "1234abcd", "dirty": False}, "versions": {"torch": "2.13.0"}, "hardware": {"cpus": 2}}))
    (path / "config.yaml").write_text(yaml.safe_dump({
        "model": {"name": "tiny", "path": "builtin:tiny-llama"}, "method": {"name": "lora", "r": 8},
        "train": {"max_steps": 30}, "eval": {"generation": {"n_samples": 20}, "timeout_s": 3.0},
        "tracking": {"backend": "wandb", "mode": tracking_mode, "project": "harness"}}))
    (path / "data_report.json").write_text(json.dumps({"hygiene": {"kept": 684, "dropped": {"exact_dup": 2}}}))
    return path


def test_a_passing_trial_is_released_with_its_card_and_artifact(tmp_path, capsys):
    from harness.tracking.wandb_tracker import _records

    trial = trial_dir(tmp_path / "trial", RATES)
    baseline = record(tmp_path / "baseline", RATES)
    out = tmp_path / "release"
    assert main(["--trial", str(trial), "--baseline", str(baseline), "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    for text in ("builtin:tiny-llama", "`r=8`", "d00d", "hygiene kept 684", "| toy | pass@1 |", "Verdict: **pass**",
                 "git `1234abcd`", "torch 2.13.0", "chosen among trials scored on this split"):
        assert text in card, text
    assert (out / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert json.loads((out / "gate.json").read_text())["verdict"] == "pass"
    (run_file,) = out.glob("wandb/offline-run-*/run-*.wandb")
    artifacts = [r.artifact for r in _records(run_file) if r.WhichOneof("record_type") == "artifact"]
    assert len(artifacts) == 1 and artifacts[0].type == "model"


def test_a_regressing_trial_is_refused_unless_forced_with_a_reason(tmp_path, capsys):
    worse = {t: (0.0 if i < 20 and r == 1.0 else r) for i, (t, r) in enumerate(RATES.items())}
    trial = trial_dir(tmp_path / "trial", worse, tracking_mode="disabled")
    baseline = record(tmp_path / "baseline", RATES)
    assert main(["--trial", str(trial), "--baseline", str(baseline), "--out", str(tmp_path / "r1")]) == 1
    assert "refused: the gate says regression" in capsys.readouterr().err and not (tmp_path / "r1").exists()
    assert main(["--trial", str(trial), "--baseline", str(baseline), "--force"]) == 3  # --force needs --reason
    assert main(["--trial", str(trial), "--baseline", str(baseline), "--out", str(tmp_path / "r2"),
                 "--force", "--reason", "smaller and accepted by the team"]) == 0
    assert "Released despite the gate (--force)**, reason given: smaller and accepted by the team" in (tmp_path / "r2" / "README.md").read_text()
    assert main(["--trial", str(trial), "--baseline", str(baseline), "--out", str(tmp_path / "r2"),
                 "--force", "--reason", "again"]) == 3  # never overwritten
