"""Prompt templates: turn chat messages into alternating prompt / answer text segments.

The same template formats instruct prompts at evaluation (:func:`format_prompt`), and
its name is recorded in the trial record, so training and evaluation never disagree.

- ``none``: texts used raw, back to back (HumanEval-style completion: prompt = code).
- ``alpaca``: the Stanford Alpaca preamble and ``### Instruction:`` / ``### Response:``.
- ``chatml``: ``<|im_start|>role\\n...<|im_end|>``.
- ``tokenizer``: the tokenizer's own ``chat_template`` (``apply_chat_template``); answer
  segments are found by rendering growing prefixes of the conversation.
"""

from __future__ import annotations

from harness.data.config import TEMPLATES
from harness.errors import ConfigError, DataError

__all__ = ["Segment", "render", "format_prompt", "prompt_ids", "ALPACA_PREAMBLE"]

Segment = tuple[str, bool]  # (text, is_answer)

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
)


def _system_first(messages: list[dict], system: str | None) -> tuple[str | None, list[dict]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return system, messages


def _render_simple(messages: list[dict], template: str, system: str | None) -> list[Segment]:
    system, turns = _system_first(messages, system)
    segments: list[Segment] = []
    prompt = ""
    if template == "alpaca":
        prompt = (system + "\n\n" if system else ALPACA_PREAMBLE)
    elif template == "chatml" and system:
        prompt = f"<|im_start|>system\n{system}<|im_end|>\n"
    elif template == "none" and system:
        prompt = system + "\n"
    for m in turns:
        if m["role"] == "assistant":
            if template == "chatml":
                segments.append((prompt, False))
                segments.append((m["content"] + "<|im_end|>", True))
                prompt = "\n"
            else:
                segments.append((prompt, False))
                segments.append((m["content"], True))
                prompt = "\n\n" if template == "alpaca" else ""
        elif template == "alpaca":
            prompt += f"### Instruction:\n{m['content']}\n\n### Response:\n"
        elif template == "chatml":
            prompt += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n<|im_start|>assistant\n"
        else:
            prompt += m["content"]
    return segments


def _render_tokenizer(messages: list[dict], tokenizer, system: str | None) -> list[Segment]:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ConfigError("data.template", "tokenizer", "the tokenizer has no chat_template; choose alpaca, chatml or none")
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]

    def text(msgs: list[dict], gen: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    segments: list[Segment] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before, after = text(messages[:i], True), text(messages[: i + 1], False)
        if not before.startswith(done) or not after.startswith(before):
            raise DataError(
                "the tokenizer's chat template does not render conversations as growing prefixes; "
                "answer tokens cannot be located (use data.template=chatml or alpaca)"
            )
        segments.append((before[len(done):], False))
        segments.append((after[len(before):], True))
        done = after
    return segments


def render(messages: list[dict], template: str, *, tokenizer=None, system: str | None = None) -> list[Segment]:
    """Alternating (prompt, False), (answer, True) segments; a prompt segment may be empty."""
    if template not in TEMPLATES:
        raise ConfigError("data.template", template, f"expected one of {', '.join(TEMPLATES)}")
    if template == "tokenizer":
        return _render_tokenizer(messages, tokenizer, system)
    return _render_simple(messages, template, system)


def format_prompt(prompt: str, template: str, *, tokenizer=None, system: str | None = None) -> str:
    """The text a model sees at evaluation for one user prompt, exactly as at training time."""
    segments = render([{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}], template,
                      tokenizer=tokenizer, system=system)
    return segments[0][0]


def prompt_ids(prompt: str, template: str, *, tokenizer, system: str | None = None) -> list[int]:
    """The prompt's token ids exactly as in training: BOS only where the tokenizer adds one by
    default and the template is not the tokenizer's own chat template (which writes its own)."""
    text = format_prompt(prompt, template, tokenizer=tokenizer, system=system)
    return tokenizer(text, add_special_tokens=template != "tokenizer")["input_ids"]
