"""W&B: one run per trial, grouped by study; offline unless the config says online.

Offline runs need no login and no network; they land in ``<study>/wandb/offline-run-*``
and can be uploaded later with ``wandb sync``. The run's summary holds every headline
metric, so the W&B runs table sorts as a leaderboard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.config import TrackingConfig

__all__ = ["WandbTracker"]


class WandbTracker:
    def __init__(self, cfg: TrackingConfig, *, study: str, trial: int, config: dict[str, Any], study_dir: Path):
        import wandb

        if cfg.mode == "offline":
            os.environ.setdefault("WANDB_MODE", "offline")  # never prompt for a login
        study_dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=study,
            job_type="trial",
            name=f"{study}/trial-{trial}",
            config=config,
            dir=str(study_dir),
            mode=cfg.mode,
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False),
        )
        self.run_dir = str(Path(self._run.dir).parent) if cfg.mode == "offline" else self._run.url
        self.run_id = self._run.id

    def log(self, row: dict[str, Any], *, step: int) -> None:
        self._run.log({k: v for k, v in row.items() if k != "step"}, step=step)

    def finish(self, *, summary: dict[str, Any], status: str) -> None:
        self._run.summary.update({**summary, "status": status})
        self._run.finish(exit_code=0 if status in ("complete", "pruned") else 1)


def _records(path: Path):
    """Protobuf records of an offline ``run-*.wandb`` file (LevelDB-style log, 32 KiB blocks)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _item_value(item) -> Any:
    import json

    if item.value_json:
        return json.loads(item.value_json)
    for name in ("integer", "number", "boolean", "text"):
        if item.HasField(name):
            return getattr(item, name)
    if item.HasField("json"):
        return json.loads(item.json)
    return None


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """Config, history rows, summary, group and name of an offline W&B run, read back from disk."""
    import json

    (wandb_file,) = Path(run_dir).glob("run-*.wandb")
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "group": None, "name": None}
    for r in _records(wandb_file):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["group"], out["name"] = r.run.run_group, r.run.display_name
            for item in r.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in r.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append({(i.key or "/".join(i.nested_key)): _item_value(i) for i in r.history.item})
        elif kind == "summary":
            for item in r.summary.update:
                out["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    out["config"] = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in out["config"].items() if k != "_wandb"}
    return out


def finish_lost_run(cfg: TrackingConfig, *, run_id: str, study: str, trial: int, study_dir: Path, reason: str) -> None:
    """Close the W&B run of a trial whose worker died: the run is resumed by its id, marked
    failed with the reason, and finished (offline: a second run folder with the same id, which
    ``wandb sync`` merges into the first)."""
    import wandb

    run = wandb.init(
        id=run_id,
        resume="allow",
        project=cfg.project,
        entity=cfg.entity,
        group=study,
        job_type="trial",
        name=f"{study}/trial-{trial}",
        dir=str(study_dir),
        mode=cfg.mode,
        reinit="create_new",
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False),
    )
    run.summary.update({"status": "failed", "reason": reason})
    run.finish(exit_code=1)
