"""Exact and near-duplicate removal. The first occurrence is kept, later copies dropped.

Exact: the full conversation with whitespace runs collapsed, hashed.

Near: MinHash over the k-token shingles of the normalised code view
(:mod:`harness.data.textnorm`: identifiers abstracted, comments and layout gone),
indexed with MinHash LSH (datasketch). A record is a near-duplicate when LSH returns a
kept record whose estimated Jaccard similarity is at least the threshold (LSH
candidates are re-checked, so its false positives do not remove anything).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["exact_key", "NearDedup"]

_WS = re.compile(r"\s+")


def exact_key(messages: list[dict]) -> bytes:
    text = "\x1e".join(f"{m['role']}\x1f{_WS.sub(' ', m['content']).strip()}" for m in messages)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _identity(x: int) -> int:
    return x


class NearDedup:
    """Streaming near-dedup: ``seen(key, shingles)`` says which kept record it duplicates, else keeps it."""

    def __init__(self, *, threshold: float = 0.8, num_perm: int = 128, seed: int = 1):
        from datasketch import MinHash, MinHashLSH

        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._proto = MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity)
        self._kept: dict[str, object] = {}

    def minhash(self, shingles: list[int]):
        m = self._proto.copy()
        m.update_batch(shingles)
        return m

    def seen(self, key: str, shingles: list[int]) -> tuple[str, float] | None:
        """(kept key, similarity) if this record near-duplicates a kept one; otherwise keep it and return None."""
        if not shingles:
            return None
        m = self.minhash(shingles)
        best: tuple[str, float] | None = None
        for other in self.lsh.query(m):
            sim = m.jaccard(self._kept[other])
            if sim >= self.threshold and (best is None or sim > best[1]):
                best = (other, sim)
        if best is None:
            self.lsh.insert(key, m, check_duplication=False)
            self._kept[key] = m
        return best
