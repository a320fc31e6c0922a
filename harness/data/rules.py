"""Per-record rules: empty answers, lengths, code that does not parse, PII.

Each rule returns a drop reason or ``None``. Reasons are the keys of the data report.
"""

from __future__ import annotations

import ast
import ipaddress
import re
import warnings

from harness.data.formats import Example
from harness.data.textnorm import fenced_blocks, looks_like_code

__all__ = ["empty_output", "syntax_error", "pii", "PII_PATTERNS"]

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w.])")
# Vendor key formats with fixed prefixes, plus a generic `api_key = "long-secret"` assignment.
_KEYS = re.compile(
    r"\b(?:AKIA[0-9A-Z]{16}|sk-(?:proj-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|sk_live_[0-9A-Za-z]{24,}|hf_[A-Za-z]{34})\b"
    r"|(?i:(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|password|passwd)\s*[:=]\s*"
    r"[\"'][A-Za-z0-9_\-/+=]{16,}[\"'])"
)
# Addresses that are not personal: documentation, example and placeholder domains.
_SAFE_DOMAINS = ("example.com", "example.org", "example.net", "test.com", "domain.com", "email.com", "localhost")

PII_PATTERNS = {"email": _EMAIL, "ipv4": _IPV4, "api_key": _KEYS}


def empty_output(ex: Example) -> str | None:
    if any(m["role"] == "assistant" and not m["content"].strip() for m in ex.messages):
        return "empty_output"
    return None


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is not an error
            ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def syntax_error(ex: Example, mode: str) -> str | None:
    """``fenced``: every python (or untagged, code-looking) fenced block parses; ``whole``: prompt + answer parses."""
    if mode == "off":
        return None
    if mode == "whole":
        text = "".join(m["content"] for m in ex.messages if m["role"] != "system")
        return None if _parses(text) else "syntax_error"
    for m in ex.messages:
        if "```" not in m["content"]:
            continue
        for lang, code in fenced_blocks(m["content"]):
            is_python = lang in ("python", "py", "python3") or (lang == "" and looks_like_code(code))
            if is_python and not _parses(code):
                return "syntax_error"
    return None


def _public_ip(groups: tuple[str, ...]) -> bool:
    if any(int(g) > 255 for g in groups):
        return False
    ip = ipaddress.IPv4Address(".".join(groups))
    return ip.is_global  # loopback, private, documentation (192.0.2.0/24 ...) and reserved ranges are not PII


def pii(ex: Example) -> str | None:
    text = "\n".join(m["content"] for m in ex.messages)
    if "@" in text:
        for m in _EMAIL.finditer(text):
            if not m.group(1).lower().endswith(_SAFE_DOMAINS):
                return "pii_email"
    for m in _IPV4.finditer(text):
        if _public_ip(m.groups()):
            return "pii_ipv4"
    if _KEYS.search(text):
        return "pii_api_key"
    return None
