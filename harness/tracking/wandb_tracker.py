"""W&B: one run per trial, grouped by study; offline unless the config says online.

Offline runs need no login and no network; they land in ``<study>/wandb/offline-run-*``
and can be uploaded later with ``wandb sync``. The run's summary holds every headline
metric, so the W&B runs table sorts as a leaderboard. Tables (per-problem results, samples)
and the adapter (a model artifact) hang off the same run; ``read_offline_run`` and
``read_offline_table`` read an offline run back from disk, for tests and for checking a run
before ``wandb sync``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from harness.tracking._base import MAX_CHARS, MAX_ROWS, TRUNCATED, TrackingConfig, cell

__all__ = ["MAX_CHARS", "MAX_ROWS", "TRUNCATED", "WandbTracker", "read_offline_run", "read_offline_table", "wait_written",
           "finish_lost_run"]


def _settings(wandb: Any) -> Any:
    # Silent, no console capture, no system metrics, no code snapshot: the trial record holds all that.
    return wandb.Settings(silent=True, console="off", x_disable_stats=True, save_code=False)


def _table(wandb: Any, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> tuple[Any, int]:
    """A wandb.Table of at most ``max_rows`` rows, and how many rows were left out."""
    # Completions stay strings (never wandb.Html), i.e. data; long ones are cut (_base.cell).
    data = [[cell(v) for v in row] for row in rows[:max_rows]]
    try:
        table = wandb.Table(columns=list(columns), data=data)
    except TypeError:  # a column mixes types (a number here, a reason string there): keep it, untyped
        table = wandb.Table(columns=list(columns), data=data, allow_mixed_types=True)
    return table, max(0, len(rows) - max_rows)


def _artifact_name(name: str) -> str:
    # W&B allows letters, digits, '-', '_' and '.' in artifact names, at most 128 characters.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:128] or "artifact"


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
            settings=_settings(wandb),
        )
        self._offline = cfg.mode == "offline"
        self.run_dir = str(Path(self._run.dir).parent) if self._offline else self._run.url
        self.run_id = self._run.id
        self._step: int | None = None  # last history step: tables are logged there, not one past it

    def log(self, row: dict[str, Any], *, step: int) -> None:
        self._run.log({k: v for k, v in row.items() if k != "step"}, step=step)
        self._step = step if self._step is None else max(self._step, step)

    def log_table(self, key: str, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> None:
        """Log rows under ``key`` as a W&B table (strings capped at MAX_CHARS, at most ``max_rows``
        rows; how many were left out goes to the summary as ``<key>/rows_dropped``)."""
        import wandb

        table, dropped = _table(wandb, columns=columns, rows=rows, max_rows=max_rows)
        # At the last training step: a step-less log would advance W&B's step counter, and a
        # later training row at a lower step would then be dropped.
        self._run.log({key: table}, **({} if self._step is None else {"step": self._step}))
        if dropped:
            self._run.summary[f"{key}/rows_dropped"] = dropped

    def log_adapter(self, path: Path, *, name: str, upload: bool, metadata: dict[str, Any]) -> None:
        """Log the adapter folder as a "model" artifact: a reference to the local folder (paths and
        checksums, nothing copied), or with ``upload`` its files (sent on ``wandb sync`` offline)."""
        import wandb

        path = Path(path).resolve()
        if not path.is_dir():
            raise NotADirectoryError(f"adapter folder {path} does not exist")
        artifact = wandb.Artifact(name=_artifact_name(name), type="model", metadata=metadata)
        if upload:
            # "immutable": the trial record's adapter is written once, so W&B need not stage a copy
            # (the folder must still exist when the run is synced).
            artifact.add_dir(str(path), name="adapter", policy="immutable")
        else:
            artifact.add_reference(path.as_uri(), name="adapter")
        self._run.log_artifact(artifact)

    def finish(self, *, summary: dict[str, Any], status: str) -> None:
        self._run.summary.update({**summary, "status": status})
        self._run.finish(exit_code=0 if status in ("complete", "pruned") else 1)
        if self._offline:
            wait_written(Path(self.run_dir))


def wait_written(run_dir: Path, *, timeout_s: float = 10.0) -> bool:
    """Wait until an offline run's file ends with its exit record, at most ``timeout_s``.

    ``run.finish()`` returns before wandb-core has flushed and closed the file (closing the
    stream is fire-and-forget), so without this a reader in the same process (a test, a report)
    can see a truncated run. Past the timeout the service still completes the file by itself."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            (wandb_file,) = Path(run_dir).glob("run-*.wandb")
            if any(r.WhichOneof("record_type") == "exit" for r in _records(wandb_file)):
                return True
        except Exception:  # not there yet, or a half-written record
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


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
        if len(chunk) < length:  # a file still being written: stop at its last whole chunk
            return
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
    """An offline W&B run read back from disk: config, history rows, summary (nested keys joined
    with '/'), group, name, job_type, the files it saved (paths under ``files/``) and its artifacts
    (name, type, metadata, entries with path, ref for a reference, digest, size)."""
    import json

    (wandb_file,) = Path(run_dir).glob("run-*.wandb")
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "group": None, "name": None,
                           "job_type": None, "files": [], "artifacts": []}
    for r in _records(wandb_file):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["group"], out["name"], out["job_type"] = r.run.run_group, r.run.display_name, r.run.job_type
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
        elif kind == "files":
            out["files"] += [f.path for f in r.files.files if f.path not in out["files"]]
        elif kind == "artifact":
            out["artifacts"].append(_artifact(r.artifact))
    out["config"] = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in out["config"].items() if k != "_wandb"}
    return out


def _artifact(a) -> dict[str, Any]:
    import json

    entries = [{"path": c.path, "ref": c.ref or None, "digest": c.digest, "size": c.size} for c in a.manifest.contents]
    return {"name": a.name, "type": a.type, "metadata": json.loads(a.metadata or "{}"), "entries": entries}


def read_offline_table(run_dir: Path, key: str) -> tuple[list[str], list[list]]:
    """Columns and rows of the table last logged under ``key`` in an offline run. W&B writes it as
    ``files/media/table/<key>_<step>_<hash>.table.json``; the summary's ``<key>/path`` names it."""
    import json

    summary = read_offline_run(run_dir)["summary"]
    if summary.get(f"{key}/_type") != "table-file":
        raise KeyError(f"no table logged under {key!r} in {run_dir}")
    table = json.loads((Path(run_dir) / "files" / summary[f"{key}/path"]).read_text(encoding="utf-8"))
    return table["columns"], table["data"]


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
        settings=_settings(wandb),
    )
    run.summary.update({"status": "failed", "reason": reason})
    run.finish(exit_code=1)
    if cfg.mode == "offline":
        wait_written(Path(run.dir).parent)
