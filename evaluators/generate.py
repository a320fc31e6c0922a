"""Generation of the completions that are scored: prompts in, ``n_samples`` completions each out.

Prompts are tokenized alone (no special tokens added beyond what the tokenizer's default adds),
exactly as the training stage tokenizes prompts, so what the model sees at evaluation matches
what it was trained on. The work is done by an engine (``evaluators.engines``, chosen by
``settings.engine``); completions come back decoded, cut at the first stop sequence, in input
order. Sampling is seeded per (task, sample), so a completion does not depend on the batch size,
the order or the other prompts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from evaluators.engines import ENGINES, GenerationSettings, truncate_at_stop

__all__ = ["GenerationSettings", "generate", "pick_engine", "truncate_at_stop"]


def pick_engine(name: str, model):
    """The engine ``name``, or ``hf_generate`` where ``hf`` cannot drive ``model`` (said once on stderr)."""
    if name not in ENGINES:
        raise ValueError(f"unknown generation engine {name!r}; expected one of {sorted(ENGINES)}")
    engine = ENGINES[name]
    why = engine.unsupported(model)
    if why is None:
        return engine
    if name == "hf":
        print(f"generation: the hf engine cannot run this model ({why}); using hf_generate", file=sys.stderr, flush=True)
        return ENGINES["hf_generate"]
    raise ValueError(f"the {name} engine cannot run this model: {why}")


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    settings: GenerationSettings,
    stop: Sequence[str],
    keys: Sequence[str] | None = None,
    progress: bool = False,
    desc: str = "generating",
    add_special_tokens: bool = True,
) -> list[list[str]]:
    """Return ``n_samples`` completions per prompt (stop sequences and EOS cut off).

    ``keys`` name the tasks (default: the prompts themselves): a sampled completion is drawn
    from the stream of (``settings.seed``, key, sample index). ``add_special_tokens=False`` for
    prompts already rendered by a chat template that writes its own special tokens.
    """
    from tqdm import tqdm

    keys = list(prompts) if keys is None else list(keys)
    if len(keys) != len(prompts):
        raise ValueError(f"{len(keys)} keys for {len(prompts)} prompts")
    engine = pick_engine(settings.engine, model)
    prompt_ids = tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(prompts) * settings.n_samples, desc=desc, unit="sample", disable=not progress, leave=False)
    try:
        ids = engine.generate_ids(model, tokenizer, prompt_ids, keys=keys, settings=settings, stop=stop, progress=bar.update)
    finally:
        bar.close()
        model.train(was_training)
    flat = tokenizer.batch_decode([new for samples in ids for new in samples], skip_special_tokens=True)
    n = settings.n_samples
    return [[truncate_at_stop(text, stop) for text in flat[k * n:(k + 1) * n]] for k in range(len(prompts))]
