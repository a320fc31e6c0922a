"""Bad input fails early with one clear message; no trial starts on garbage."""

import json

import pytest

from harness.data import DataConfig, clean_sources, prepare_data
from harness.data.testing import tiny_tokenizer
from harness.errors import ConfigError, DataError

GOOD = {"instruction": "Add two numbers.", "output": "def add(a, b):\n    return a + b\n"}


def _file(tmp_path, lines, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _cfg(path, **extra):
    return DataConfig.from_dict({"path": path, "format": "alpaca", "validation_fraction": 0.0,
                                 "hygiene": {"decontaminate": False}, **extra})


def test_malformed_json_names_file_and_line(tmp_path):
    path = _file(tmp_path, [json.dumps(GOOD), '{"instruction": "x", "output": ', json.dumps(GOOD)])
    with pytest.raises(DataError, match=rf"{path}:2: malformed JSON"):
        clean_sources(_cfg(path))


def test_malformed_json_is_skipped_and_counted_with_on_error_skip(tmp_path):
    bad = {"instruction": "Sub.", "output": 3}
    path = _file(tmp_path, [json.dumps(GOOD), "{oops", json.dumps(bad)])
    train, _, report = clean_sources(_cfg(path, on_error="skip"))
    assert len(train) == 1
    assert report["skipped_on_read"][path]["counts"] == {"malformed_json": 1, "bad_record": 1}


def test_malformed_json_document(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[\n {"instruction": "a",\n  "output": }\n]')
    with pytest.raises(DataError, match=r"train.json\[3\]: malformed JSON"):
        clean_sources(_cfg(str(path)))


@pytest.mark.parametrize(
    "record, message",
    [
        ({"instruction": "x"}, "missing field 'output'"),
        ({"instruction": "x", "output": ["a"]}, "field 'output' must be a string, got list"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_missing_or_wrong_typed_fields(tmp_path, record, message):
    path = _file(tmp_path, [json.dumps(record)])
    with pytest.raises(DataError, match=rf"{path}:1: .*{message}"):
        clean_sources(_cfg(path))


def test_sharegpt_problems_are_named(tmp_path):
    rec = {"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "yo"}]}
    path = _file(tmp_path, [json.dumps(rec)])
    with pytest.raises(DataError, match=r"conversations\[1\].from='robot'"):
        clean_sources(_cfg(path, format="sharegpt"))


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.format='xml': expected one of \['alpaca', 'sharegpt', 'prompt_completion'\]"):
        DataConfig.from_dict({"path": "x.jsonl", "format": "xml"})


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        clean_sources(_cfg(str(tmp_path / "nope.jsonl")))


def test_empty_after_filtering_stops_before_training(tmp_path):
    path = _file(tmp_path, [json.dumps({"instruction": "x", "output": "  "})] * 3)
    with pytest.raises(DataError, match="empty after filtering .*empty_output"):
        prepare_data(_cfg(path), tokenizer=tiny_tokenizer(), cache_dir=None)
