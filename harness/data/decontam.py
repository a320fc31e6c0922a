"""Decontamination: drop training records that contain an evaluation problem.

Every scored task of every configured benchmark gives *parts*: its statement and its
reference solution, as the benchmark's registry entry says (``evaluators.benchmarks``:
HumanEval: prompt = signature + docstring, solution = body; MBPP test split: prompt = the
problem text, solution = the code; toy test split: prompt and body).
Each part becomes two normalised token streams (:mod:`harness.data.textnorm`): the
*literal view* (layout, comments and quote style gone, identifiers kept) and the
*abstract view* (identifiers also replaced by ``ID``). Only *distinctive* n-grams count:
those that occur in exactly one task, so shared boilerplate (``def add_1 ( x : int )``
in the toy split, ``from typing import List``) is never evidence.

A record is contaminated when, for some part, the share of that part's distinctive
n-grams found in the record reaches a threshold:

- literal view, ``decontam_threshold`` (0.5): verbatim and reformatted copies score ~1.0;
- abstract view, ``decontam_renamed_threshold`` (0.8), and only for code parts with at
  least ``decontam_renamed_min_ngrams`` (6) distinctive n-grams: renamed copies score
  ~1.0, while short unrelated functions, which share structure by chance
  (``def ID ( ID ) : return ID * ID``), are not judged on structure alone;
- text and code together, for problems stated in prose (MBPP): the record contains the
  whole statement and 0.8 of the solution's abstract 5-grams. This catches short problems
  renamed (a 9-word statement has no 10-gram; a 3-line solution has too few distinctive
  abstract 10-grams), while neither piece alone is taken as evidence.

Parts with no distinctive n-gram cannot be told apart from other tasks: not checked by
the first two views.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.data.textnorm import code_view, ngrams
from harness.errors import ConfigError

__all__ = ["Decontaminator", "Part", "benchmark_parts"]


@dataclass(frozen=True)
class Part:
    benchmark: str
    task_id: str
    kind: str  # "prompt" | "solution"
    text: str
    is_code: bool


def benchmark_parts(names: Sequence[str]) -> list[Part]:
    """Statements and reference solutions of the scored problems of every named benchmark, as each
    benchmark's registry entry gives them (``BenchmarkEntry.references``: its test split)."""
    from evaluators.benchmarks import BENCHMARKS

    parts: list[Part] = []
    for name in names:
        if name not in BENCHMARKS:
            raise ConfigError("eval.benchmarks", name, f"expected benchmarks from {', '.join(sorted(BENCHMARKS))}")
        parts += [Part(name, r.task_id, r.kind, r.text, r.is_code) for r in BENCHMARKS[name].references()]
    return parts


class _Index:
    """Distinctive n-grams of every part in one view, and the share of them a record contains."""

    def __init__(self, parts: list[Part], streams: list[list[str]], *, n: int, threshold: float, min_ngrams: int):
        self.n, self.threshold = n, threshold
        grams = [ngrams(s, n) for s in streams]
        # A gram is distinctive when one *text* has it: benchmarks repeat some problems
        # verbatim (MBPP test 16 and 43), and those must stay checkable.
        tasks_of: dict[tuple, set] = {}
        for s, gs in zip(streams, grams, strict=True):
            key = hash(tuple(s))
            for g in gs:
                tasks_of.setdefault(g, set()).add(key)
        self.parts: list[Part] = []
        self.sizes: list[int] = []
        self.index: dict[tuple, list[int]] = {}
        self.unchecked: Counter = Counter()
        for p, gs in zip(parts, grams, strict=True):
            mine = [g for g in gs if len(tasks_of[g]) == 1]
            if len(mine) < min_ngrams:
                self.unchecked[p.benchmark] += 1
                continue
            pid = len(self.parts)
            self.parts.append(p)
            self.sizes.append(len(mine))
            for g in mine:
                self.index.setdefault(g, []).append(pid)
        self.checked = Counter(p.benchmark for p in self.parts)

    def match(self, tokens: list[str]) -> tuple[Part, float] | None:
        n, index = self.n, self.index
        hits: Counter = Counter()
        for g in {tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)}:
            pids = index.get(g)
            if pids:
                hits.update(pids)
        best = None
        for pid, h in hits.items():
            cov = h / self.sizes[pid]
            if cov >= self.threshold and (best is None or cov > best[1]):
                best = (self.parts[pid], cov)
        return best

    def summary(self) -> dict:
        return {"ngram": self.n, "threshold": self.threshold, "parts_checked": dict(self.checked),
                "parts_unchecked": dict(self.unchecked)}


class _TextAndCode:
    """Problems whose statement is prose (MBPP) checked by two pieces of evidence together.

    Many MBPP problems are short: a 9-word statement has no 10-gram at all, and a 3-line
    solution has too few distinctive abstract 10-grams to be judged on structure, so a
    copy with renamed variables escapes both indexes. Neither piece alone identifies the
    problem (``write a function to find minimum of three numbers`` may head an unrelated
    answer; ``def ID ( ID , ID ) : ID = ID * ID return ID`` is everywhere), but together
    they do: a record is contaminated when it contains the whole statement (as words, in
    order) *and* at least ``threshold`` of the solution's abstract ``n``-grams (short n-grams,
    since the solution is short; renaming and layout do not change them).
    """

    def __init__(self, parts: list[Part], *, n: int, threshold: float):
        self.n, self.threshold = n, threshold
        solutions = {p.task_id: p for p in parts if p.kind == "solution" and p.is_code}
        statements = [p for p in parts if p.kind == "prompt" and not p.is_code and p.task_id in solutions]
        words = [code_view(p.text, is_code=False) for p in statements]
        # Candidates come from each statement's rarest word ("parallelogram", "octagonal"),
        # so a record is compared only with the few problems that share such a word.
        df = Counter(w for ws in words for w in set(ws))
        self.tasks: list[tuple[Part, str, set[tuple], int]] = []
        self.anchors: dict[str, list[int]] = {}
        for p, ws in zip(statements, words, strict=True):
            code = ngrams(code_view(solutions[p.task_id].text, is_code=True), n)
            if not ws or not code:
                continue
            self.anchors.setdefault(min(ws, key=lambda w: (df[w], -len(w))), []).append(len(self.tasks))
            self.tasks.append((solutions[p.task_id], f" {' '.join(ws)} ", code, len(code)))

    def match(self, abstract: list[str], literal: list[str]) -> tuple[Part, float] | None:
        candidates = {t for w in set(literal) for t in self.anchors.get(w, ())}
        if not candidates:
            return None
        text = f" {' '.join(literal)} "
        grams = None
        best = None
        for t in candidates:
            part, statement, code, size = self.tasks[t]
            if statement not in text:
                continue
            grams = grams if grams is not None else ngrams(abstract, self.n)
            cov = len(code & grams) / size
            if cov >= self.threshold and (best is None or cov > best[1]):
                best = (part, cov)
        return best

    def summary(self) -> dict:
        return {"ngram": self.n, "threshold": self.threshold, "problems_checked": len(self.tasks)}


class Decontaminator:
    """Two indexes over the benchmark parts: the literal view (identifiers kept) catches
    verbatim and reformatted copies; the abstract view (identifiers -> ID) catches renamed
    copies, but only of parts long enough that structure alone identifies them. Short
    problems stated in prose are caught by their statement and solution together."""

    def __init__(self, parts: Iterable[Part], *, n: int = 10, threshold: float = 0.5, min_ngrams: int = 1,
                 renamed_threshold: float = 0.8, renamed_min_ngrams: int = 6, text_and_code_ngram: int = 5):
        parts = list(parts)
        self.literal = _Index(parts, [code_view(p.text, is_code=p.is_code, abstract=False) for p in parts],
                              n=n, threshold=threshold, min_ngrams=min_ngrams)
        code_parts = [p for p in parts if p.is_code]
        self.abstract = _Index(code_parts, [code_view(p.text, is_code=True) for p in code_parts],
                               n=n, threshold=renamed_threshold, min_ngrams=renamed_min_ngrams)
        self.text_and_code = _TextAndCode(parts, n=text_and_code_ngram, threshold=renamed_threshold)

    def match(self, abstract: list[str], literal: list[str]) -> tuple[Part, float, str] | None:
        """The benchmark part this record contains, its coverage and the view that matched; else None."""
        hit = self.literal.match(literal)
        if hit is not None:
            return (*hit, "literal")
        hit = self.abstract.match(abstract)
        if hit is not None:
            return (*hit, "renamed")
        hit = self.text_and_code.match(abstract, literal)
        return None if hit is None else (*hit, "text+code")

    def summary(self) -> dict:
        return {"literal": self.literal.summary(), "renamed": self.abstract.summary(),
                "text_and_code": self.text_and_code.summary()}
