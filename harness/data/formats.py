"""Read training records and turn every format into one shape: a list of chat messages.

An :class:`Example` is ``messages`` (role ``system`` | ``user`` | ``assistant``), the source
label and where it came from (``file:line``). Formats:

- ``alpaca``: ``instruction``, optional ``input``, ``output`` (optional ``system``);
- ``sharegpt``: ``conversations`` (or ``messages``), a list of ``{from, value}`` or ``{role, content}``;
- ``prompt_completion``: ``prompt``, ``completion``.

Sources are local ``.jsonl`` / ``.json`` files, Hugging Face dataset names (loaded with
``datasets.load_dataset``), or ``toy`` (the toy benchmark's splits).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.config import FORMATS, SourceConfig
from harness.errors import ConfigError, DataError

__all__ = ["Example", "LoadResult", "load_source", "to_example", "source_kind"]

ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
}


@dataclass
class Example:
    messages: list[dict]  # [{"role": ..., "content": ...}], at least one assistant message
    source: str
    ref: str  # "file.jsonl:12", "hf:name[3]", "toy/add/7"
    meta: dict = field(default_factory=dict)

    def prompt_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] != "assistant")

    def answer_text(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "assistant")


@dataclass
class LoadResult:
    examples: list[Example]
    skipped: Counter  # reason -> count (only when on_error=skip)
    skipped_examples: dict  # reason -> [(ref, message)]
    fingerprint: str  # content hash of the raw source


def _field(rec: dict, key: str, ref: str, *, required: bool = True) -> str:
    if key not in rec or rec[key] is None:
        if required:
            raise DataError(f"{ref}: missing field {key!r} (have {sorted(rec)})")
        return ""
    value = rec[key]
    if not isinstance(value, str):
        raise DataError(f"{ref}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def to_example(rec: object, fmt: str, *, source: str, ref: str) -> Example:
    """Convert one raw record of format ``fmt``; raises DataError naming ``ref`` and the field."""
    if not isinstance(rec, dict):
        raise DataError(f"{ref}: expected a JSON object, got {type(rec).__name__}")
    if fmt == "alpaca":
        instruction = _field(rec, "instruction", ref)
        extra = _field(rec, "input", ref, required=False)
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": _field(rec, "output", ref)}]
        system = _field(rec, "system", ref, required=False)
        if system:
            messages.insert(0, {"role": "system", "content": system})
    elif fmt == "prompt_completion":
        messages = [
            {"role": "user", "content": _field(rec, "prompt", ref)},
            {"role": "assistant", "content": _field(rec, "completion", ref)},
        ]
    elif fmt == "sharegpt":
        key = "conversations" if "conversations" in rec else "messages" if "messages" in rec else None
        if key is None:
            raise DataError(f"{ref}: missing field 'conversations' (have {sorted(rec)})")
        turns = rec[key]
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{ref}: field {key!r} must be a non-empty list of turns")
        messages = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise DataError(f"{ref}: {key}[{i}] must be an object with from/value or role/content")
            role_key, text_key = ("from", "value") if "from" in turn else ("role", "content")
            role = ROLES.get(str(turn.get(role_key, "")).lower())
            if role is None:
                raise DataError(f"{ref}: {key}[{i}].{role_key}={turn.get(role_key)!r}: expected one of {sorted(ROLES)}")
            messages.append({"role": role, "content": _field(turn, text_key, f"{ref}: {key}[{i}]")})
        system = _field(rec, "system", ref, required=False)
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        if not any(m["role"] == "assistant" for m in messages):
            raise DataError(f"{ref}: conversation has no assistant turn")
        if messages[-1]["role"] != "assistant":
            messages = messages[: max(i for i, m in enumerate(messages) if m["role"] == "assistant") + 1]
    else:
        raise ConfigError("data.format", fmt, f"expected one of {', '.join(FORMATS)}")
    return Example(messages=messages, source=source, ref=ref, meta={"raw": rec})


def source_kind(path: str) -> str:
    """``toy``, ``file`` (a .jsonl/.json path or an existing file) or ``hf`` (a dataset name)."""
    if path == "toy":
        return "toy"
    p = Path(path)
    if p.suffix in (".jsonl", ".json") or p.is_file() or path.startswith(("/", "./", "../")):
        return "file"
    return "hf"


def _raw_file_records(path: Path) -> Iterator[tuple[int, object, str | None]]:
    """Yield (line, record, error) for a .jsonl or .json file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            yield e.lineno, None, f"malformed JSON ({e.msg}, column {e.colno})"
            return
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            yield 1, None, "a .json file must hold a list of records"
            return
        for i, rec in enumerate(data):
            yield i, rec, None  # no line numbers inside one JSON document: report the index
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line), None
        except json.JSONDecodeError as e:
            yield lineno, None, f"malformed JSON ({e.msg}, column {e.colno})"


def _file_examples(src: SourceConfig, on_error: str, limit: int | None) -> LoadResult:
    import hashlib

    path = Path(src.path)
    if not path.is_file():
        raise DataError(f"{src.path}: no such file (data.path)")
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    examples: list[Example] = []
    skipped: Counter = Counter()
    skipped_ex: dict = {}
    sep = "[" if path.suffix == ".json" else ":"
    for where, rec, error in _raw_file_records(path):
        ref = f"{path}{sep}{where}{']' if sep == '[' else ''}"
        reason = "malformed_json"
        if error is None:
            try:
                examples.append(to_example(rec, src.format, source=src.label, ref=ref))
            except DataError as e:
                error, reason = str(e), "bad_record"
        else:
            error = f"{ref}: {error}"
        if error is not None:
            if on_error == "raise":
                raise DataError(error + " (set data.on_error=skip to skip and count such records)")
            skipped[reason] += 1
            skipped_ex.setdefault(reason, []).append(error)
        if limit is not None and len(examples) >= limit:
            break
    return LoadResult(examples, skipped, skipped_ex, fingerprint)


def _hf_examples(src: SourceConfig, on_error: str, limit: int | None) -> LoadResult:
    import datasets  # heavy: only when a Hub/local HF dataset is configured

    try:
        ds = datasets.load_dataset(src.path, src.subset, split=src.split)
    except Exception as e:  # noqa: BLE001 - the datasets library raises many kinds; name the source
        raise DataError(f"{src.path}: cannot load Hugging Face dataset (split={src.split!r}): {e}") from e
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    examples: list[Example] = []
    skipped: Counter = Counter()
    skipped_ex: dict = {}
    for i, rec in enumerate(ds):
        ref = f"{src.path}[{src.split}][{i}]"
        try:
            examples.append(to_example(rec, src.format, source=src.label, ref=ref))
        except DataError as e:
            if on_error == "raise":
                raise
            skipped["bad_record"] += 1
            skipped_ex.setdefault("bad_record", []).append(str(e))
    return LoadResult(examples, skipped, skipped_ex, f"hf:{src.path}:{src.subset}:{src.split}:{ds._fingerprint}")


def _toy_examples(src: SourceConfig, limit: int | None) -> LoadResult:
    import hashlib

    from evaluators.benchmarks import toy

    if src.split not in toy.SPLITS:
        raise ConfigError("data.split", src.split, f"expected one of {', '.join(toy.SPLITS)} for the toy source")
    recs = toy.records(src.split, src.families)[:limit]
    examples = [to_example(r, "prompt_completion", source=src.label, ref=r["task_id"]) for r in recs]
    fingerprint = hashlib.sha256(json.dumps(recs, sort_keys=True).encode()).hexdigest()
    return LoadResult(examples, Counter(), {}, fingerprint)


def load_source(src: SourceConfig, *, on_error: str = "raise", limit: int | None = None) -> LoadResult:
    """All examples of one source, with skipped-record counts (``on_error=skip``) and a content hash."""
    kind = source_kind(src.path)
    if kind == "toy":
        return _toy_examples(src, limit)
    if kind == "file":
        return _file_examples(src, on_error, limit)
    return _hf_examples(src, on_error, limit)
