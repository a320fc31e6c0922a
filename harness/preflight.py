"""Pre-flight: what would fail every trial the same way fails once, before any training.

- the training data: each configured file exists and its first records parse in the
  configured format (a malformed file names the file and line); a missing required key
  (``data=alpaca`` without ``data.path``) is a config error;
- the model: a builtin, a local directory, a hub id already in the local cache, or a hub id
  the hub answers for (one request, a few seconds at most; ``HF_HUB_OFFLINE=1`` means the
  cache only);
- the suites: a name that is not a local suite is an lm-eval task that downloads from the
  hub, so the hub must answer.

Checks that depend on a sampled parameter are left to the trials; a trial that still fails in
a way every trial would share stops the study (``harness.worker``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, DataError

__all__ = ["PreflightFailed", "preflight"]

HUB_TIMEOUT_S = 5.0
_SAMPLE_RECORDS = 50


class PreflightFailed(RuntimeError):
    """A resource every trial needs cannot be reached."""


def preflight(raw: dict[str, Any]) -> None:
    """Raise ConfigError (bad input) or PreflightFailed (unreachable resource); return when all is well."""
    from harness.config import trial_config

    cfg = trial_config(raw)
    _check_data(cfg.data)
    _check_model(cfg.model.path)
    _check_suites([s.name for s in cfg.eval.suites])


def _check_suites(names: list[str]) -> None:
    """A suite that is not ours is an lm-eval task whose data comes from the hub: refuse it now when
    the hub cannot be reached, rather than after the first trial has trained."""
    from evaluators.suites import LOCAL_SUITES, is_local

    hub = [n for n in names if not is_local(n)]
    if not hub:
        return
    local = ", ".join(sorted(LOCAL_SUITES))
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise PreflightFailed(f"eval.suites: {hub[0]!r} is not a local suite ({local}); lm-eval downloads its data from "
                              f"the Hugging Face hub, and HF_HUB_OFFLINE is set")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint}/api/datasets?limit=1", timeout=HUB_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # the hub answered: the task's own download will say what is wrong
    except (urllib.error.URLError, OSError) as e:
        raise PreflightFailed(f"eval.suites: {hub[0]!r} is not a local suite ({local}); lm-eval downloads its data "
                              f"from the Hugging Face hub ({endpoint}), which is unreachable "
                              f"({getattr(e, 'reason', e)}); use a local suite here") from None


def _check_data(data) -> None:
    from harness.data.formats import load_source, source_kind

    sources = list(data.sources) + ([data.validation] if data.validation is not None else [])
    for src in sources:
        if src.path in (None, "", "???"):
            raise ConfigError("data.path", src.path, "this data config needs a file or dataset: pass data.path=FILE.jsonl")
        if source_kind(src.path) != "file":
            continue  # toy data is built in; a Hugging Face dataset is checked by its first trial
        if not Path(src.path).expanduser().is_file():
            raise ConfigError("data.path", src.path, "no such file")
        try:
            load_source(src, on_error=data.on_error, limit=_SAMPLE_RECORDS)
        except DataError as e:
            raise ConfigError("data.path", src.path, f"malformed dataset: {e}") from None


def _check_model(path: str) -> None:
    if path.startswith("builtin:") or Path(path).expanduser().is_dir():
        return
    if _in_hf_cache(path):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if offline:
        raise PreflightFailed(f"model {path!r} is not a local directory and not in the Hugging Face cache, and HF_HUB_OFFLINE is set")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/api/models/{path}"
    import urllib.error
    import urllib.request

    headers = {}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers, method="GET"), timeout=HUB_TIMEOUT_S):
            return
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise PreflightFailed(f"model {path!r}: the hub refused access (HTTP {e.code}); set HF_TOKEN or accept its license") from None
        if e.code == 404:
            raise PreflightFailed(f"model {path!r}: no such model on {endpoint} (HTTP 404)") from None
        raise PreflightFailed(f"model {path!r}: the hub answered HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PreflightFailed(
            f"model {path!r} is not a local directory nor in the Hugging Face cache, and the hub ({endpoint}) "
            f"is unreachable ({reason}); download it where the hub is reachable and pass model.path=DIR"
        ) from None


def _in_hf_cache(repo: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(repo, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id
        return False
    return isinstance(found, str)
