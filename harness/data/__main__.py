"""Run data hygiene alone: ``python -m harness.data [--out DIR] [--tokenizer PATH] [overrides]``.

    python -m harness.data data=alpaca data.path=train.jsonl
    python -m harness.data data=toy eval=humaneval

Composes the project config with Hydra (the same ``data`` and ``eval`` groups a trial
uses), cleans the data exactly as a trial would, writes the cleaned records (in their
original format) and ``data_report.json``, and prints where. Without ``--tokenizer``
lengths are counted in words and punctuation marks instead of tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from harness.data.config import DataConfig
from harness.data.prepare import clean_sources
from harness.errors import ConfigError, DataError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose(overrides: list[str]) -> tuple[dict, list[str], int]:
    """(data group as a plain dict, evaluation benchmark names, seed) from the Hydra config tree."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=overrides)
        data = OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError("overrides", " ".join(overrides), f"Hydra could not compose them: {e}") from e
    evald = OmegaConf.to_container(cfg.eval, resolve=True) if "eval" in cfg else {}
    benches = [b["name"] if isinstance(b, dict) else b for b in evald.get("benchmarks", [])]
    return data, benches, int(cfg.get("seed", 0))


def write_cleaned(out: Path, train: list, validation: list, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("validation.jsonl", validation)):
        with (out / name).open("w", encoding="utf-8") as f:
            for ex in rows:
                f.write(json.dumps(ex.meta.get("raw") or {"messages": ex.messages}, ensure_ascii=False) + "\n")
    (out / "data_report.json").write_text(json.dumps(report, indent=1, default=str))


def run(cfg: DataConfig, *, benchmarks: list[str], seed: int, out: Path | None, tokenizer: str | None) -> Path:
    count_tokens = None
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)

        def count_tokens(texts: list[str]) -> list[int]:
            return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]

    train, validation, report = clean_sources(cfg, eval_benchmarks=benchmarks, count_tokens=count_tokens, seed=seed)
    report["counts"] = {"train": len(train), "validation": len(validation)}
    if out is None:
        key = hashlib.sha256(json.dumps([cfg.to_dict(), report["sources"], benchmarks, seed], default=str).encode())
        out = Path("runs") / "data" / f"{cfg.name}-{key.hexdigest()[:12]}"
    write_cleaned(out, train, validation, report)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.data", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/data/<name>-<hash>)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer (path or hub name) for token lengths")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=alpaca data.path=FILE.jsonl")
    args = parser.parse_args(argv)
    try:
        data, benchmarks, seed = compose(args.overrides)
        cfg = DataConfig.from_dict(data)
        out = run(cfg, benchmarks=benchmarks, seed=seed, out=args.out, tokenizer=args.tokenizer)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = json.loads((out / "data_report.json").read_text())
    h = report["hygiene"]
    print(f"kept {h['kept']} of {h['input']} records; dropped: {h.get('dropped', {})}")
    print(f"cleaned data: {out / 'train.jsonl'}" + (f" (+ {out / 'validation.jsonl'})" if report["counts"]["validation"] else ""))
    print(f"report:       {out / 'data_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
