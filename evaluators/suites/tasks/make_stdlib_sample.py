"""Rebuild ``stdlib_sample.jsonl``: the vendored documents of the ``stdlib`` suite.

    python evaluators/suites/tasks/make_stdlib_sample.py   # with the Python recorded in SOURCE.md

Cuts a fixed list of Python standard-library modules into documents of about ``TARGET``
bytes at line boundaries, in file order, and keeps the first ``LIMIT`` documents. The
source files are the Python Software Foundation's (PSF License, see SOURCE.md); each
document names its file and line range.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

MODULES = ("bisect", "colorsys", "reprlib", "stat", "fnmatch", "glob", "graphlib", "string", "shlex")
TARGET = 1500  # bytes per document
LIMIT = 48


def documents(stdlib: Path) -> list[dict]:
    docs: list[dict] = []
    for module in MODULES:
        lines = (stdlib / f"{module}.py").read_text(encoding="utf-8").splitlines(keepends=True)
        start, chunk = 0, []
        for i, line in enumerate(lines):
            chunk.append(line)
            if sum(len(c.encode()) for c in chunk) >= TARGET or i == len(lines) - 1:
                docs.append({"doc_id": f"{module}.py:{start + 1}-{i + 1}", "file": f"Lib/{module}.py",
                             "text": "".join(chunk)})
                start, chunk = i + 1, []
    return docs[:LIMIT]


if __name__ == "__main__":
    import platform

    out = Path(__file__).resolve().parent / "stdlib_sample.jsonl"
    docs = documents(Path(sysconfig.get_paths()["stdlib"]))
    out.write_text("".join(json.dumps(d) + "\n" for d in docs))
    print(f"wrote {len(docs)} documents ({sum(len(d['text'].encode()) for d in docs)} bytes) from Python "
          f"{platform.python_version()} to {out}")
