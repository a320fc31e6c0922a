"""Prompt-loss masking: for every template and format, labels are -100 exactly over the prompt
and equal the input ids over the answer + EOS; multi-turn masks exactly the non-assistant turns."""

import json

import pytest

from harness.data import DataConfig, prepare_data, prompt_ids
from harness.data.testing import tiny_tokenizer

OFF = {"enabled": False}
ANSWER = "def add(a, b):\n    return a + b\n"
INSTRUCTION = "Write a function that adds two numbers."
CONVERSATION = [
    {"from": "system", "value": "You write Python."},
    {"from": "human", "value": "Add two numbers."},
    {"from": "gpt", "value": "return a + b"},
    {"from": "human", "value": "Now subtract."},
    {"from": "gpt", "value": "return a - b"},
]
RECORDS = {
    "alpaca": {"instruction": INSTRUCTION, "input": "", "output": ANSWER},
    "prompt_completion": {"prompt": INSTRUCTION, "completion": ANSWER},
    "sharegpt": {"conversations": [{"from": "human", "value": INSTRUCTION}, {"from": "gpt", "value": ANSWER}]},
}
# What each template appends to an answer (before the EOS token).
ANSWER_SUFFIX = {"none": "", "alpaca": "", "chatml": "<|im_end|>", "tokenizer": "<|im_end|>\n"}


def _prepare(tmp_path, records, tok, **data):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    cfg = DataConfig.from_dict({"path": str(path), "validation_fraction": 0.0, "hygiene": OFF, "cutoff_len": 512, **data})
    return prepare_data(cfg, tokenizer=tok, cache_dir=None)


def _spans(labels):
    """[(start, end)] of the supervised (label != -100) runs."""
    out, start = [], None
    for i, x in enumerate([*labels, -100]):
        if x != -100 and start is None:
            start = i
        elif x == -100 and start is not None:
            out.append((start, i))
            start = None
    return out


@pytest.mark.parametrize("bos", [False, True], ids=["no_bos", "bos"])
@pytest.mark.parametrize("template", ["none", "alpaca", "chatml", "tokenizer"])
@pytest.mark.parametrize("fmt", ["alpaca", "prompt_completion", "sharegpt"])
def test_labels_mask_exactly_the_prompt(tmp_path, fmt, template, bos):
    tok = tiny_tokenizer(bos=bos, chat_template=True)
    row = _prepare(tmp_path, [RECORDS[fmt]], tok, format=fmt, template=template).train[0]
    ids, labels = row["input_ids"], row["labels"]

    prompt = prompt_ids(INSTRUCTION, template, tokenizer=tok)  # what evaluation feeds the model
    answer_ids = tok(ANSWER + ANSWER_SUFFIX[template], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert ids == prompt + answer_ids
    assert labels == [-100] * len(prompt) + answer_ids


@pytest.mark.parametrize("template", ["none", "alpaca", "chatml", "tokenizer"])
def test_train_on_prompt_supervises_everything(tmp_path, template):
    tok = tiny_tokenizer(chat_template=True)
    row = _prepare(tmp_path, [RECORDS["alpaca"]], tok, format="alpaca", template=template, train_on_prompt=True).train[0]
    assert row["labels"] == row["input_ids"]


@pytest.mark.parametrize("template", ["none", "alpaca", "chatml", "tokenizer"])
@pytest.mark.parametrize("train_on", ["all", "last"])
def test_multi_turn_supervises_only_assistant_turns(tmp_path, template, train_on):
    tok = tiny_tokenizer(chat_template=True)
    row = _prepare(tmp_path, [{"conversations": CONVERSATION}], tok, format="sharegpt", template=template,
                   train_on=train_on).train[0]
    ids, labels = row["input_ids"], row["labels"]
    spans = _spans(labels)
    answers = ["return a + b", "return a - b"] if train_on == "all" else ["return a - b"]
    assert len(spans) == len(answers)
    for (a, b), answer in zip(spans, answers):
        assert labels[a:b] == ids[a:b]
        assert ids[a:b] == tok(answer + ANSWER_SUFFIX[template], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    # The system prompt and both user turns are in the input and never supervised.
    text = tok.decode(ids)
    for turn in ("You write Python.", "Add two numbers.", "Now subtract."):
        assert turn in text
    unsupervised = [i for i, x in zip(ids, labels) if x == -100]
    assert tok.decode(unsupervised).count("return a") == (1 if train_on == "last" else 0)


def test_role_content_messages_are_sharegpt_too(tmp_path):
    tok = tiny_tokenizer()
    rec = {"messages": [{"role": "user", "content": INSTRUCTION}, {"role": "assistant", "content": ANSWER}]}
    a = _prepare(tmp_path, [rec], tok, format="sharegpt", template="chatml").train[0]
    b = _prepare(tmp_path, [RECORDS["sharegpt"]], tok, format="sharegpt", template="chatml").train[0]
    assert a == b


def test_truncation_keeps_the_answer_and_cuts_the_prompt_on_the_left(tmp_path):
    tok = tiny_tokenizer()
    long_prompt = "word " * 300 + INSTRUCTION
    p = _prepare(tmp_path, [{"prompt": long_prompt, "completion": ANSWER}], tok, template="none", cutoff_len=64)
    row = p.train[0]
    answer_ids = tok(ANSWER, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(row["input_ids"]) == 64
    assert row["input_ids"][-len(answer_ids):] == answer_ids == row["labels"][-len(answer_ids):]
    assert tok.decode(row["input_ids"][: 64 - len(answer_ids)]).endswith(INSTRUCTION)
    assert p.report["encoding"]["train"] == {"truncated": 1}


def test_truncation_of_a_huge_answer_keeps_half_the_window_for_it(tmp_path):
    tok = tiny_tokenizer()
    p = _prepare(tmp_path, [{"prompt": "word " * 100, "completion": "x = 1\n" * 200}], tok, cutoff_len=64)
    labels = p.train[0]["labels"]
    assert len(labels) == 64 and sum(x != -100 for x in labels) == 32


def test_overlong_drop_policy_counts_what_it_drops(tmp_path):
    tok = tiny_tokenizer()
    recs = [{"prompt": "word " * 100, "completion": ANSWER}, {"prompt": INSTRUCTION, "completion": ANSWER}]
    p = _prepare(tmp_path, recs, tok, cutoff_len=64, overlong="drop")
    assert len(p.train) == 1
    assert p.report["encoding"]["train"] == {"truncated": 1, "dropped_overlong": 1}
