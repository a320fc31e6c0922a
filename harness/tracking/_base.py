"""What every tracker shares: the ``tracking`` group's schema, the interface a trial talks to, the
do-nothing tracker, the registry entry, and the policy for untrusted text (how many rows, how many characters).

Nothing here imports a tracking library: the ``tracking`` group's schema (:class:`TrackingConfig`)
checks ``tracking.backend`` against the registry, and that check must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.schema import check_one_of

__all__ = ["MAX_CHARS", "MAX_ROWS", "TRUNCATED", "NullTracker", "Tracker", "TrackerBackend", "TrackingConfig", "cell",
           "no_lost_run"]

# One truncation policy for every backend: a table keeps its first MAX_ROWS rows, and a string
# cell (a prompt, a completion: untrusted, arbitrarily long) its first MAX_CHARS characters.
MAX_ROWS = 5_000  # rows per logged table; W&B itself silently keeps at most 10,000 per run table
MAX_CHARS = 2_000  # per string cell
TRUNCATED = "… [truncated]"
_SCALARS = (str, int, float, bool, type(None))


def cell(value: Any, *, max_chars: int = MAX_CHARS) -> str | int | float | bool | None:
    """A table cell as plain data: scalars as they are, anything else as its str; a string longer
    than ``max_chars`` cut to exactly ``max_chars`` characters, ending with TRUNCATED."""
    if not isinstance(value, _SCALARS):
        value = str(value)
    if isinstance(value, str) and len(value) > max_chars:
        value = value[: max_chars - len(TRUNCATED)] + TRUNCATED
    return value


@dataclass(frozen=True)
class TrackingConfig:
    """``tracking`` group. ``backend`` names an entry of ``harness.tracking.TRACKERS``;
    ``mode: disabled`` turns any backend off. ``offline``/``online``, ``project``, ``entity`` and
    ``upload_adapter`` are W&B's (docs/tracking.md)."""

    backend: str = "wandb"
    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "harness"
    entity: str | None = None
    # False: the trial's adapter artifact is a reference to the local folder (checksums only);
    # True: its files are uploaded (on `wandb sync` when offline).
    upload_adapter: bool = False

    def __post_init__(self) -> None:
        from harness.tracking import TRACKERS  # the registry is the list of names (imports no tracking library)

        check_one_of("backend", self.backend, sorted(TRACKERS))


class Tracker(Protocol):
    """One trial's run in an external UI. It mirrors the trial record; it never decides anything.

    ``run_dir``: where the run lives (a folder, or a URL for an online run); ``run_id``: what
    ``finish_lost_run`` needs to close the run if the trial's worker dies (None: nothing to close).
    Rows are logged at their training ``step``; tables and the adapter at the last step logged."""

    @property
    def run_dir(self) -> str | None: ...

    @property
    def run_id(self) -> str | None: ...

    def log(self, row: dict[str, Any], *, step: int) -> None: ...

    def log_table(self, key: str, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> None: ...

    def log_adapter(self, path: Path, *, name: str, upload: bool, metadata: dict[str, Any]) -> None: ...

    def finish(self, *, summary: dict[str, Any], status: str) -> None: ...


class NullTracker:
    """``tracking=none`` (or ``tracking.mode=disabled``): every call does nothing."""

    run_dir = None
    run_id = None

    def log(self, row: dict[str, Any], *, step: int) -> None:
        pass

    def log_table(self, key: str, *, columns: list[str], rows: list[list], max_rows: int = MAX_ROWS) -> None:
        pass

    def log_adapter(self, path: Path, *, name: str, upload: bool, metadata: dict[str, Any]) -> None:
        pass

    def finish(self, *, summary: dict[str, Any], status: str) -> None:
        pass


def no_lost_run(cfg: Any, *, run_id: str, study: str, trial: int, study_dir: Path, reason: str) -> None:
    """``finish_lost_run`` of a backend that keeps nothing to close."""


@dataclass(frozen=True)
class TrackerBackend:
    """One registry entry (``harness.tracking.TRACKERS``), keyed by its ``tracking.backend`` ``name``.

    ``open(cfg, *, study, trial, config, study_dir) -> Tracker`` starts a trial's run.
    ``finish_lost_run(cfg, *, run_id, study, trial, study_dir, reason)`` marks the run of a trial
    whose worker died as failed. ``log_study(cfg, *, study, study_dir, columns, rows, figures,
    report, summary) -> str | None`` logs the study run; None: the backend has none (the study's
    report.html is its view)."""

    name: str
    open: Callable[..., Tracker]
    finish_lost_run: Callable[..., None]
    summary: str
    log_study: Callable[..., str | None] | None = None
