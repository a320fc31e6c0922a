"""common.files: atomic writes leave the old file or the new one, never half of either, and no temp files."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from common.files import write_json_atomic, write_jsonl_atomic, write_text_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_text_is_written_byte_for_byte(tmp_path):
    path = tmp_path / "notes.md"
    write_text_atomic(path, "line one\r\nline two — ünïcode\n")
    assert path.read_bytes() == "line one\r\nline two — ünïcode\n".encode()
    assert _leftovers(tmp_path) == []


def test_missing_parent_folders_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "c.txt"
    write_text_atomic(path, "x")
    assert path.read_text() == "x"


def test_an_existing_file_is_replaced(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old, and longer than the new text")
    write_text_atomic(path, "new")
    assert path.read_text() == "new"


def test_files_get_the_mode_plain_open_gives(tmp_path):
    """Not mkstemp's 0600: records and reports are read by the rest of the team."""
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


def test_json_defaults_are_the_record_format(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"b": 1, "a": Path("/x")})
    assert path.read_text() == '{\n  "b": 1,\n  "a": "/x"\n}\n'


def test_json_options_keep_each_callers_bytes(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"b": 1, "a": 2}, sort_keys=True, trailing_newline=False)
    assert path.read_text() == json.dumps({"b": 1, "a": 2}, indent=2, sort_keys=True)
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()}, default=None)


def test_jsonl_is_one_compact_line_per_row(tmp_path):
    path = tmp_path / "r.jsonl"
    write_jsonl_atomic(path, ({"task_id": i, "passed": i % 2 == 0} for i in range(3)))
    assert path.read_text() == "".join(json.dumps({"task_id": i, "passed": i % 2 == 0}) + "\n" for i in range(3))
    write_jsonl_atomic(path, [])
    assert path.read_text() == ""


_CYCLIC: list = []
_CYCLIC.append(_CYCLIC)


@pytest.mark.parametrize("write", [
    lambda p: write_json_atomic(p, {"bad": object()}, default=None),
    lambda p: write_json_atomic(p, {"cycle": _CYCLIC}),
    lambda p: write_jsonl_atomic(p, [{"ok": 1}, {"bad": {1, 2}}]),
    lambda p: write_text_atomic(p, b"bytes are not text"),
])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, write):
    path = tmp_path / "record.json"
    path.write_text("old\n")
    with pytest.raises((TypeError, ValueError)):
        write(path)
    assert path.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_a_failed_rename_removes_the_temp(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    path.write_text("old\n")

    def refuse(src, dst):
        raise OSError("disk said no")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk said no"):
        write_text_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_concurrent_writers_never_tear_the_file(tmp_path):
    """Threads write whole, distinct, large files to one path while a reader checks every version it sees."""
    path = tmp_path / "metrics.json"
    versions = {json.dumps({"writer": w, "payload": [w] * 20_000}) for w in range(6)}
    write_text_atomic(path, next(iter(versions)))
    stop = threading.Event()
    seen: set[str] = set()
    torn: list[str] = []
    errors: list[BaseException] = []

    def writer(text: str) -> None:
        try:
            for _ in range(25):
                write_text_atomic(path, text)
        except BaseException as e:  # noqa: BLE001 (reported by the test)
            errors.append(e)

    def reader() -> None:
        while not stop.is_set():
            text = path.read_text()
            (seen.add if text in versions else torn.append)(text[:80])

    read = threading.Thread(target=reader)
    read.start()
    writers = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    read.join()
    assert not errors, errors
    assert not torn, f"{len(torn)} torn reads, e.g. {torn[0]!r}"
    assert path.read_text() in versions
    assert _leftovers(tmp_path) == []
