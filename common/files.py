"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every record, result and report file of the project is written through these three
functions. Each one

1. serialises first, so a value that cannot be written leaves no trace at all;
2. writes a temporary file with a unique name in the target's own folder (a rename is
   only atomic within one file system), as UTF-8, with the bytes exactly as given;
3. flushes it to disk (fsync), so a crash after the rename cannot leave an empty file;
4. renames it over the target with ``os.replace`` (atomic on POSIX and Windows);
5. removes the temporary file if any step fails.

Two writers of the same path never tear it: each has its own temporary file, and the
last rename wins whole. :func:`read_json` is the reading side for record files: a missing
or unreadable one (a trial that died early) reads as ``{}``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["read_json", "write_text_atomic", "write_json_atomic", "write_jsonl_atomic"]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _open_temp(path: Path) -> tuple[int, Path]:
    """A new, empty file beside ``path`` with a name no other writer holds.

    Like ``tempfile.mkstemp`` (O_EXCL, retry on a clash), but with the mode a plain
    ``open()`` would give (0666 less the umask): mkstemp's 0600 would make records and
    reports unreadable to the rest of the team."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8, newlines as given), creating missing parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temp(path)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(
    path: str | os.PathLike[str],
    data: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = str,
    trailing_newline: bool = True,
) -> None:
    """Replace ``path`` with ``data`` as JSON. The defaults are the record format (indent 2,
    keys in insertion order, anything unknown as ``str``, one final newline); callers whose
    files were always written differently say so, to keep their bytes unchanged."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=default)
    write_text_atomic(path, text + "\n" if trailing_newline else text)


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[Any]) -> None:
    """Replace ``path`` with one compact JSON value per line (every line ends with a newline)."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_json(path: Path) -> dict[str, Any]:
    """A record file's JSON object, or {} when it is missing or unreadable (a trial that died early)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
