"""TensorBoard: one run per trial, event files in the trial's record, ``<study>/trial-<n>/tensorboard/``.

View a study with ``tensorboard --logdir runs/<study>`` (each trial is a run named
``trial-<n>/tensorboard``). What lands there:

- scalars: every numeric value of every history row at its step, under the row's own key
  (``train_loss``, ``eval_loss``, ``learning_rate``, ``grad_norm``, ``probe/pass@1``, ...);
  the final summary's numbers as ``summary/<key>`` at the last step;
- text (the Text tab): ``config``, each table (``<benchmark>/problems``, ``<benchmark>/samples``),
  ``adapter`` (its path: nothing is copied), ``summary`` (every key and value) and ``status``.

TensorBoard renders text as Markdown. Every string we write (completions and prompts are
untrusted) is an indented Markdown code block, which TensorBoard shows literally: no markup,
link or HTML in a completion can take effect. Strings and tables are cut by the policy every
backend shares (``_base.MAX_CHARS``, ``_base.MAX_ROWS``).

The ``tensorboard`` package is imported only inside the functions that write or read events.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.tracking._base import MAX_ROWS, TrackingConfig, cell

__all__ = ["LOG_DIR", "TensorBoardTracker", "finish_lost_run", "log_dir", "read_events", "unformat"]

LOG_DIR = "tensorboard"  # inside the trial's record folder
_INDENT = "    "  # four spaces: a Markdown code block


def log_dir(study_dir: Path, trial: int) -> Path:
    return Path(study_dir) / f"trial-{trial}" / LOG_DIR


def _text(value: Any) -> str:
    """A text cell TensorBoard shows as data: a number as its digits, anything else (cut by the
    shared policy) as an indented Markdown code block, which the Text tab renders literally."""
    value = cell(value)
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    return "\n".join(_INDENT + line for line in value.split("\n"))


def unformat(text: str) -> str:
    """The string a text cell was made from (undoes the code-block indent; numbers as their str)."""
    lines = text.split("\n")
    if not all(line.startswith(_INDENT) for line in lines):
        return text
    return "\n".join(line[len(_INDENT):] for line in lines)


class _Events:
    """An event file writer with the few summaries we write: scalars and tables of text."""

    def __init__(self, path: Path, *, suffix: str = ""):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        path.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(path), filename_suffix=suffix)

    def scalars(self, values: dict[str, float], *, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        if values:
            self._add([Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()], step=step)

    def table(self, tag: str, cells: list[list[str]], *, step: int, description: str = "") -> None:
        """A 2-D string tensor for the text plugin: the Text tab shows it as an HTML table, each
        cell rendered (and sanitised) as Markdown."""
        import numpy as np
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.text.metadata import create_summary_metadata
        from tensorboard.util.tensor_util import make_tensor_proto

        tensor = make_tensor_proto(np.array(cells, dtype=object))
        metadata = create_summary_metadata(display_name=tag, description=description)
        self._add([Summary.Value(tag=tag, metadata=metadata, tensor=tensor)], step=step)

    def _add(self, values: list, *, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()  # flushes


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardTracker:
    def __init__(self, cfg: TrackingConfig, *, study: str, trial: int, config: dict[str, Any], study_dir: Path):
        path = log_dir(study_dir, trial)
        self._events = _Events(path)
        self.run_dir = str(path)
        self.run_id = f"{study}/trial-{trial}"  # finish_lost_run finds the folder by study and trial
        self._step = 0  # last history step: tables, the adapter and the summary are logged there
        self._events.table("config", [[_text(json.dumps(config, indent=2, default=str))]], step=0)

    def log(self, row: dict[str, Any], *, step: int) -> None:
        """Every numeric value of ``row`` as a scalar at ``step`` (others, and ``step`` itself, skipped)."""
        self._events.scalars(_numbers({k: v for k, v in row.items() if k != "step"}), step=step)
        self._events.flush()  # a worker killed now leaves its curves up to this row (rows are seconds apart)
        self._step = max(self._step, step)

    def log_table(self, key: str, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> None:
        """Rows under ``key`` as a text table, the column names as its first row (at most
        ``max_rows`` rows; how many were left out goes to the scalar ``<key>/rows_dropped``)."""
        dropped = max(0, len(rows) - max_rows)
        cells = [[_text(c) for c in columns], *([_text(v) for v in row] for row in rows[:max_rows])]
        note = f"first {max_rows} of {len(rows)} rows" if dropped else f"{len(rows)} rows"
        self._events.table(key, cells, step=self._step, description=note)
        if dropped:
            self._events.scalars({f"{key}/rows_dropped": dropped}, step=self._step)

    def log_adapter(self, path: Path, *, name: str, upload: bool, metadata: dict[str, Any]) -> None:
        """A note ``adapter`` with the adapter folder's path and files (TensorBoard stores no files:
        ``upload`` cannot be honoured, and the note says so)."""
        path = Path(path).resolve()
        if not path.is_dir():
            raise NotADirectoryError(f"adapter folder {path} does not exist")
        files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        rows = [["name", name], ["path", str(path)], ["files", "\n".join(files)],
                *([k, v] for k, v in metadata.items())]
        if upload:
            rows.append(["upload", "not supported by TensorBoard: the files stay at the path"])
        self._events.table("adapter", [[_text(k), _text(v)] for k, v in rows], step=self._step)

    def finish(self, *, summary: dict[str, Any], status: str) -> None:
        summary = {**summary, "status": status}
        self._events.scalars({f"summary/{k}": v for k, v in _numbers(summary).items()}, step=self._step)
        self._events.table("summary", [[_text(k), _text(v)] for k, v in summary.items()], step=self._step)
        self._events.table("status", [[_text(status)]], step=self._step)
        self._events.close()


def finish_lost_run(cfg: TrackingConfig, *, run_id: str, study: str, trial: int, study_dir: Path, reason: str) -> None:
    """Close the run of a trial whose worker died: a second event file in the trial's folder with
    ``status`` = failed and the reason, at the last step the run reached. No folder (the trial died
    before its tracker opened): nothing to close, a no-op."""
    path = log_dir(study_dir, trial)
    if not path.is_dir():
        return
    steps = [step for scalars in read_events(path)["scalars"].values() for step in scalars]
    events = _Events(path, suffix=".lost")
    try:
        events.table("status", [[_text("failed")], [_text(reason)]], step=max(steps, default=0))
    finally:
        events.close()


def read_events(path: Path) -> dict[str, Any]:
    """A run read back from its event files: ``scalars`` {tag: {step: value}} and ``texts``
    {tag: [(step, cells, description)]}, cells a list of rows of strings as written (see
    ``unformat``). For tests, and for checking a run without starting TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})  # 0: keep every event
    acc.Reload()
    tags = acc.Tags()
    scalars = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in tags["scalars"]}
    texts = {}
    for tag in tags["tensors"]:
        description = acc.SummaryMetadata(tag).summary_description
        texts[tag] = [(e.step, _rows(make_ndarray(e.tensor_proto)), description) for e in acc.Tensors(tag)]
    return {"scalars": scalars, "texts": texts}


def _rows(array) -> list[list[str]]:
    """A 2-D array of UTF-8 bytes as rows of str."""
    return [[c.decode() if isinstance(c, bytes) else str(c) for c in row] for row in array]
