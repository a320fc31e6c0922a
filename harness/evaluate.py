"""``python -m harness.evaluate [evaluate.source=TRIAL_DIR] [overrides]``: score a model or adapter
exactly as a trial does, without training.

Keys (``evaluate:`` in conf/config.yaml; every other key composes as for a sweep, so
``model=``, ``eval=``, ``eval.generation.*`` work):

- ``evaluate.source``: a trial directory. Its ``config.yaml`` is the starting config (model,
  method, eval, seed), its ``adapter/`` the adapter and its recorded prompt template the
  template; command-line ``key=value`` overrides apply on top (e.g. ``seed=1`` for a fresh
  sampling seed). Group choices (``model=...``) are not allowed with a source.
- ``evaluate.adapter``: an adapter (or full-weights) directory saved by a trial or by peft;
  safetensors only (a pickled ``.bin`` is refused: loading it would run code). Null: the base model.
- ``evaluate.template``: the prompt template the model was trained with (none, alpaca, chatml,
  tokenizer, ...); default: the source's, else ``none``.
- ``evaluate.out``: the evaluation directory; default ``<runs_dir>/evaluations/<name>-seed<seed>``.

It writes ``DIR/manifest.json``, ``DIR/config.yaml``, ``DIR/eval/<benchmark>/{samples,results}.jsonl``
and ``metrics.json``, ``DIR/metrics.json``: the layout the gate reads. Exit codes as the sweep's:
0 done, 1 failed (recorded), 2 config error.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.threads import choose_threads

__all__ = ["evaluate", "main", "resolve_request"]


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError("evaluate.source", str(path.parent), f"cannot read its config.yaml ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError("evaluate.source", str(path.parent), "its config.yaml is not a mapping")
    return data


def resolve_request(overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the resolved config to evaluate with, {source, adapter, template, out})."""
    from omegaconf import OmegaConf

    from harness.config import compose
    from harness.record import read_json

    composed = compose(overrides)
    ev = dict(composed.get("evaluate") or {})
    unknown = set(ev) - {"source", "adapter", "template", "out"}
    if unknown:
        raise ConfigError(f"evaluate.{sorted(unknown)[0]}", ev[sorted(unknown)[0]], "unknown key; allowed: source, adapter, template, out")
    source = Path(ev["source"]).expanduser() if ev.get("source") else None
    if source is None:
        raw = composed
        template = ev.get("template") or "none"
    else:
        if not (source / "config.yaml").is_file():
            raise ConfigError("evaluate.source", str(source), "not a trial directory (no config.yaml)")
        from harness.config import CONF_DIR
        from harness.study import config_groups

        groups = config_groups(CONF_DIR) | {"sweep"}
        chosen = [o for o in overrides if o.partition("=")[0].lstrip("+~") in groups]
        if chosen:
            raise ConfigError("evaluate.source", str(source), f"group choices ({', '.join(chosen)}) cannot change a trial's config; "
                              f"override single keys instead")
        values = [o for o in overrides if "." in o.partition("=")[0] and not o.startswith("evaluate.")]
        values += [o for o in overrides if o.partition("=")[0] in ("seed", "runs_dir", "cache_dir")]
        raw = OmegaConf.to_container(OmegaConf.merge(_load_yaml(source / "config.yaml"), OmegaConf.from_dotlist(values)), resolve=True)
        recorded = read_json(source / "manifest.json").get("template")
        template = ev.get("template") or recorded or "none"
    adapter = ev.get("adapter") or (str(source / "adapter") if source is not None and (source / "adapter").is_dir() else None)
    name = (source.name if source else raw["model"]["name"]) + (f"-{Path(adapter).name}" if adapter and not source else "")
    out = ev.get("out") or str(Path(raw.get("runs_dir") or "runs") / "evaluations" / f"{name}-seed{raw.get('seed', 0)}")
    return raw, {"source": str(source) if source else None, "adapter": adapter, "template": template, "out": out}


def _check_adapter(adapter: str) -> None:
    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ConfigError("evaluate.adapter", adapter, "no such directory")
    files = {p.name for p in path.iterdir()}
    if not any(f.endswith(".safetensors") for f in files):
        pickled = sorted(f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl")))
        raise ConfigError("evaluate.adapter", adapter,
                          f"no .safetensors weights{' (only ' + ', '.join(pickled) + ')' if pickled else ''}: pickled weights are "
                          f"refused because loading them would run code; convert them to safetensors")


def evaluate(raw: dict[str, Any], request: dict[str, Any], *, progress: bool) -> dict[str, Any]:
    """Load, generate, score, record. Raises ConfigError before anything is loaded; other failures
    are recorded in the evaluation's manifest and re-raised."""
    from common.files import write_json_atomic
    from harness.config import trial_config
    from harness.evaluation import evaluate_model
    from harness.record import TrialRecord
    from harness.suites import base_scores
    from harness.worker import redacted_config

    cfg = trial_config(raw)
    if request["adapter"]:
        _check_adapter(request["adapter"])
    out = Path(request["out"])
    record = TrialRecord(out, study="", number=-1, seed=cfg.seed)
    record.update(kind="evaluation", study=None, trial=None, model=cfg.model.name, method=cfg.method.name if request["adapter"] else None,
                  source=request["source"], adapter=request["adapter"], template=request["template"])
    record.write_config(redacted_config(raw))
    try:
        with record.phase("setup"):
            from transformers import set_seed

            from harness.methods import (
                load_trained,
                model_load_kwargs,
                prepare_for_generation,
            )
            from harness.models import load_model, load_tokenizer, resolve_model
            from harness.train import resolve_device

            set_seed(cfg.seed)
            import torch

            torch.set_num_threads(choose_threads(cfg.train.num_threads)[0])
            device = resolve_device(cfg.train.device)
            path, model_hash = resolve_model(cfg.model, cache_dir=cfg.cache_dir)
            tokenizer = load_tokenizer(path, trust_remote_code=cfg.model.trust_remote_code)
            model = load_model(path, cfg=cfg.model, device=device,
                               extra=model_load_kwargs(cfg.method, device=device) if request["adapter"] else None)
        with record.phase("suites"):  # the base's suite scores (cached), before the adapter goes on
            suite_base = base_scores(cfg, model=model, tokenizer=tokenizer, model_hash=model_hash)
        with record.phase("setup"):
            if request["adapter"]:
                model = prepare_for_generation(load_trained(model, cfg.method, request["adapter"]), cfg.method)
            model.eval()
            record.update(model_hash=model_hash, model_path=path, device=device)
        metrics = evaluate_model(cfg, model=model, tokenizer=tokenizer, template=request["template"], record=record, progress=progress,
                                 suite_base=suite_base)
    except Exception as e:  # noqa: BLE001 - recorded with its reason, then reported
        (out / "error.txt").write_text(traceback.format_exc())
        record.finish("failed", f"{type(e).__name__}: {e}")
        raise
    write_json_atomic(out / "metrics.json", {**metrics, "status": "complete"})
    record.finish("complete")
    return metrics


def main(argv: list[str] | None = None) -> int:
    from harness.sweep import check_overrides, quiet

    overrides = sys.argv[1:] if argv is None else argv
    problem = check_overrides(overrides)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        raw, request = resolve_request(overrides)
        from harness.config import trial_config

        trial_config(raw)
        if request["adapter"]:
            _check_adapter(request["adapter"])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet()
    try:
        metrics = evaluate(raw, request, progress=sys.stderr.isatty())
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001
        print(f"evaluation failed: {type(e).__name__}: {e} (see {request['out']}/error.txt)", file=sys.stderr)
        return 1
    shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
    print(f"evaluated {request['adapter'] or 'the base model'}: {shown}; records in {request['out']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
