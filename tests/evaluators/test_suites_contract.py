"""The contract every local suite meets, run against each entry of ``evaluators.suites.LOCAL_SUITES``:
its task YAML and data file are in tasks/, its documents load with no network, its headline metric is
one the task reports in the direction the entry says, and a run on the tiny model gives that metric
with one score per document.

A new local suite is an entry in LOCAL_SUITES plus a case in CASES below (a test checks both lists agree).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from evaluators.suites import LOCAL_SUITES, TASKS_DIR, _local_config, suite_hash


class Case(NamedTuple):
    documents: int  # how many the vendored data file holds
    limit: int  # documents scored in the run on the tiny model (a few: the run must stay quick)


# suite name -> what the contract expects of it
CASES: dict[str, Case] = {
    "stdlib": Case(documents=48, limit=3),
    "toy_base": Case(documents=130, limit=8),
}


def test_every_local_suite_has_a_case_here():
    assert set(CASES) == set(LOCAL_SUITES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_task_file_names_its_data_and_headline_metric(name):
    suite = LOCAL_SUITES[name]
    assert suite.name == name and suite.summary
    config = suite.config()
    assert config["task"] == f"harness_{name}" and config["test_split"] == "test"
    data = suite.data_path(config)
    assert data.parent == TASKS_DIR and data.is_file(), data  # vendored next to the YAML, never fetched
    metrics = {m["metric"]: m["higher_is_better"] for m in config["metric_list"]}
    assert metrics[suite.metric] is suite.higher_is_better
    assert len(suite_hash(name, None)) == 16 and suite_hash(name, None) != suite_hash(name, CASES[name].limit)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_documents_load_with_no_download(name):
    suite, case = LOCAL_SUITES[name], CASES[name]
    assert len(suite.documents()) == case.documents
    config = _local_config(name, case.limit)
    assert "dataset_kwargs" not in config and "dataset_path" not in config  # lm-eval is handed the rows themselves
    dataset = config["custom_dataset"]()["test"]
    assert list(dataset) == suite.documents(case.limit)


@pytest.fixture(scope="module")
def results(tiny):
    from evaluators.suites import run_suites

    model, tokenizer = tiny
    return run_suites(model, tokenizer, [(name, case.limit, None) for name, case in sorted(CASES.items())])


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_run_on_the_tiny_model_reports_the_headline_metric(results, name):
    suite, result = LOCAL_SUITES[name], results[name]
    assert (result.name, result.task) == (name, f"harness_{name}")
    assert (result.metric, result.higher_is_better) == (suite.metric, suite.higher_is_better)
    assert result.metrics[suite.metric] == result.value and result.value == result.value  # reported, not NaN
    assert len(result.docs) == CASES[name].limit
    assert all(isinstance(d["score"], float) and d["doc_hash"] for d in result.docs)
