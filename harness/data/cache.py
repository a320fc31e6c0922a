"""Content-addressed cache of prepared data: ``<cache_dir>/data-<key>/{arrays.npz, report.json}``.

Token ids are stored as flat int32 arrays with offsets (fast to write and read for
large sets); the report is JSON. Writes go to a temp folder renamed into place, so a
crashed trial never leaves a half-written entry that a later trial would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from harness.data.config import DataConfig

__all__ = ["load", "save", "source_fingerprints"]


def source_fingerprints(cfg: DataConfig) -> dict:
    """A content hash for every configured source (what the cache key must change with)."""
    from harness.data.formats import source_kind

    out = {}
    for src in [*cfg.sources, *([cfg.validation] if cfg.validation else [])]:
        kind = source_kind(src.path)
        if kind == "file":
            p = Path(src.path)
            out[src.label] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "missing"
        elif kind == "toy":
            from evaluators.benchmarks import toy

            recs = toy.records(src.split, src.families) if src.split in toy.SPLITS else []
            out[src.label] = hashlib.sha256(json.dumps(recs, sort_keys=True).encode()).hexdigest()
        else:
            # Hub datasets are versioned by the datasets library's own fingerprint of the loaded split.
            import datasets

            ds = datasets.load_dataset(src.path, src.subset, split=src.split)
            out[src.label] = ds._fingerprint
    return out


def _pack(rows: list[dict]) -> dict:
    import numpy as np

    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r["input_ids"]) for r in rows])
    ids = np.fromiter((t for r in rows for t in r["input_ids"]), dtype=np.int32, count=int(offsets[-1]))
    labels = np.fromiter((t for r in rows for t in r["labels"]), dtype=np.int32, count=int(offsets[-1]))
    return {"offsets": offsets, "input_ids": ids, "labels": labels}


def _unpack(offsets, ids, labels) -> list[dict]:
    ids, labels, offsets = ids.tolist(), labels.tolist(), offsets.tolist()
    return [
        {"input_ids": ids[a:b], "labels": labels[a:b]}
        for a, b in zip(offsets[:-1], offsets[1:], strict=True)
    ]


def save(cache_dir: Path, key: str, train: list[dict], validation: list[dict], report: dict) -> Path:
    import numpy as np

    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / f"data-{key}"
    tmp = Path(tempfile.mkdtemp(prefix=f".data-{key}-", dir=cache_dir))
    try:
        arrays = {f"train_{k}": v for k, v in _pack(train).items()}
        arrays.update({f"validation_{k}": v for k, v in _pack(validation).items()})
        np.savez(tmp / "arrays.npz", **arrays)
        (tmp / "report.json").write_text(json.dumps(report, indent=1, default=str))
        # A folder, not a file (so not common.files): its files are written privately, then the whole
        # folder is renamed into place, and load() trusts only a folder that has both of them.
        if final.exists():
            shutil.rmtree(tmp)  # another worker got there first: same key, same content
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load(cache_dir: Path, key: str) -> tuple[list[dict], list[dict], dict] | None:
    import numpy as np

    entry = cache_dir / f"data-{key}"
    if not (entry / "arrays.npz").is_file() or not (entry / "report.json").is_file():
        return None
    with np.load(entry / "arrays.npz") as z:
        train = _unpack(z["train_offsets"], z["train_input_ids"], z["train_labels"])
        validation = _unpack(z["validation_offsets"], z["validation_input_ids"], z["validation_labels"])
    return train, validation, json.loads((entry / "report.json").read_text())
