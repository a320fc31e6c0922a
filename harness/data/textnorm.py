"""Normalised token streams for deduplication and decontamination.

One regex lexer, one view: the *code view*. Text is split into prose and code (fenced
```` ``` ```` blocks are code; an unfenced text is code when most of its lines look like
Python). Then:

- prose: lowercase words and numbers, punctuation and layout dropped;
- code: comments dropped; identifiers become ``ID`` unless they are keywords,
  builtins or attribute names (after ``.``), so renaming variables or the function
  changes nothing; string literals (docstrings) become their lowercase words and
  punctuation runs, whatever their quotes and however backslashes are escaped;
  numbers are spelled canonically (``2.60`` -> ``2.6``, ``0x10`` -> ``16``); round
  parentheses are dropped, because formatters (``ast.unparse``, black) add and remove
  redundant ones (``if (a <= b):`` -> ``if a <= b:``); operators stay; whitespace and
  layout are gone, so reformatting changes (almost) nothing.

This is what makes a renamed-variable copy, a comment-changed copy and a reformatted
copy of the same function look the same, while two different functions do not.
"""

from __future__ import annotations

import builtins
import keyword
import re
import zlib

__all__ = ["code_view", "code_views", "looks_like_code", "split_code", "ngrams", "shingle_hashes", "fenced_blocks"]

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_LINE = re.compile(
    r"^(?:[ \t]+\S|(?:def|class|return|import|from|for|while|if|elif|else|try|except|with|raise|yield|assert|"
    r"lambda|async|await|print)\b|@\w|\w[\w.\[\], ]*\s*[-+*/%|&]?=[^=]|#|\)|\]|\})"
)
_LEX = re.compile(
    r"""(?P<s>[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))"""
    r"|(?P<c>\#[^\n]*)"
    r"|(?P<i>[^\W\d]\w*)"
    r"|(?P<n>\d[\w.]*)"
    r"|(?P<o>\*\*=?|//=?|->|[<>=!]=|[-+*/%&|^@]=|<<|>>|:=|[^\s\w])"
)
_WORD = re.compile(r"\w+")
_STR_TOKENS = re.compile(r"\w+|[^\w\s]+")
_QUOTES = re.compile(r"^[rRbBuUfF]{0,2}(\"\"\"|'''|\"|')(.*)\1$", re.S)
_KEEP = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | frozenset(
    {"self", "cls", "List", "Dict", "Tuple", "Set", "Optional", "Any", "Union", "Callable", "Iterable", "math",
     "re", "collections", "itertools", "heapq", "typing", "np", "os", "sys"}
)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every ``` fenced block."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def looks_like_code(text: str) -> bool:
    """Most non-blank lines look like Python (indented, a keyword, an assignment, a comment...)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return False
    hits = sum(1 for ln in lines if _CODE_LINE.match(ln))
    return hits * 2 >= len(lines) and (len(lines) > 1 or hits == 1 and text.count("(") + text.count("=") > 0)


def split_code(text: str) -> list[tuple[str, bool]]:
    """(piece, is_code) pieces: fenced blocks are code; unfenced text is code if it looks like code."""
    if "```" not in text:
        return [(text, looks_like_code(text))]
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in _FENCE.finditer(text):
        if m.start() > pos:
            out.append((text[pos: m.start()], False))
        out.append((m.group(2), True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def _string_tokens(literal: str, defined: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """A string literal's content as lowercase words and punctuation runs (quote style ignored).

    An escaped backslash counts as one: ``r'\\w'`` and ``'\\\\w'`` (what ``ast.unparse`` writes) are the same.
    A word spelled exactly like a function defined in the code (doctests: ``>>> add(2, 3)``)
    is that identifier: ``ID``. The match is case-sensitive: ``Add two numbers`` is prose
    that a renamer leaves alone, and it must stay evidence.
    """
    m = _QUOTES.match(literal)
    words = _STR_TOKENS.findall((m.group(2) if m else literal).replace("\\\\", "\\"))
    return ["ID" if w in defined else w.lower() for w in words]


def _number(tok: str) -> str:
    """A number literal spelled canonically (``2.60`` -> ``2.6``, ``1_000`` -> ``1000``); else as written."""
    try:
        if tok[:2].lower() in ("0x", "0o", "0b") or not any(c in tok for c in ".eEjJ"):
            return str(int(tok, 0))
        return repr(float(tok))
    except ValueError:
        return tok


_DEF = re.compile(r"\b(?:def|class)\s+(\w+)")
_PARENS = frozenset("()")


def _code_tokens(code: str, out: list[str], abstract: bool = True) -> None:
    # Abstract view: a function's own name inside its docstring (doctests: `>>> add(2, 3)`) is an
    # identifier too, so renaming the function changes nothing there either (case-sensitive:
    # see _string_tokens). Round parentheses are dropped and numbers spelled canonically, so
    # what a formatter rewrites (`if (a <= b):`, `2.60`) changes nothing.
    defined = set(_DEF.findall(code)) if abstract else set()
    after_dot = False
    for m in _LEX.finditer(code):
        kind = m.lastgroup
        tok = m.group()
        if kind == "i":
            out.append(tok if after_dot or tok in _KEEP else "ID" if abstract else tok.lower())
        elif kind == "s":
            out.extend(_string_tokens(tok, defined))
        elif kind == "n":
            out.append(_number(tok))
        elif kind == "o" and tok not in _PARENS:
            out.append(tok)
        after_dot = tok == "."


def code_view(text: str, *, is_code: bool | None = None, abstract: bool = True) -> list[str]:
    """The normalised token stream of ``text`` (see module docstring).

    ``abstract=False`` keeps identifiers (lowercased): the *literal view*, used by
    decontamination where the abstract view would match unrelated short functions.
    """
    out: list[str] = []
    pieces = [(text, is_code)] if is_code is not None else split_code(text)
    for piece, code in pieces:
        if code:
            _code_tokens(piece, out, abstract)
        else:
            out.extend(_WORD.findall(piece.lower()))
    return out


def code_views(text: str) -> tuple[list[str], list[str]]:
    """(abstract view, literal view) of ``text`` in one lexer pass."""
    abstract: list[str] = []
    literal: list[str] = []
    for piece, code in split_code(text):
        if not code:
            words = _WORD.findall(piece.lower())
            abstract += words
            literal += words
            continue
        defined = set(_DEF.findall(piece))
        after_dot = False
        for m in _LEX.finditer(piece):
            kind = m.lastgroup
            tok = m.group()
            if kind == "i":
                if after_dot or tok in _KEEP:
                    abstract.append(tok)
                    literal.append(tok)
                else:
                    abstract.append("ID")
                    literal.append(tok.lower())
            elif kind == "s":
                words = _string_tokens(tok)
                literal += words
                abstract += _string_tokens(tok, defined) if defined else words
            elif kind == "n":
                tok = _number(tok)
                abstract.append(tok)
                literal.append(tok)
            elif kind == "o" and tok not in _PARENS:
                abstract.append(tok)
                literal.append(tok)
            after_dot = tok == "."
    return abstract, literal


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """All n-grams; a stream shorter than n yields nothing (too short to be evidence)."""
    return {tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)}


def shingle_hashes(tokens: list[str], k: int) -> list[int]:
    """Stable 32-bit hashes of the k-token shingles (the whole stream if it is shorter)."""
    if len(tokens) <= k:
        return [zlib.crc32(" ".join(tokens).encode())] if tokens else []
    return list({zlib.crc32(" ".join(tokens[i: i + k]).encode()) for i in range(len(tokens) - k + 1)})
