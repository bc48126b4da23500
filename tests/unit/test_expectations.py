"""Quality rules as a step declares them: parsing, config errors, fingerprints, results."""

from __future__ import annotations

import pytest

from odibi_core import Step
from odibi_core.core.config import parse_pipeline
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.expectations import Expectation, QualityResult, TableExpectation
from odibi_core.execution.plan import step_fingerprint


def _pipeline(**rules):
    return {
        "pipeline": "p",
        "steps": [
            {"layer": "ingest", "name": "read", "value": "in.csv", "outputs": {"data": "raw"}},
            {
                "layer": "transform",
                "name": "clean",
                "value": "SELECT * FROM orders",
                "inputs": {"orders": "raw"},
                "outputs": {"data": "clean"},
                **rules,
            },
        ],
    }


def test_yaml_rules_parse_into_typed_rules():
    config = parse_pipeline(
        _pipeline(
            expectations={
                "valid_amount": {"rule": "amount >= 0", "on_violation": "drop"},
                "has_customer": "customer_id IS NOT NULL",
            },
            table_expectations={"not_empty": {"min_rows": 1}, "one": {"unique": ["order_id"]}},
        )
    )
    step = config.steps[1]
    assert step.expectations == (
        Expectation("valid_amount", "amount >= 0", "drop"),
        Expectation("has_customer", "customer_id IS NOT NULL", "warn"),
    )
    assert step.table_expectations == (
        TableExpectation("not_empty", "min_rows", 1),
        TableExpectation("one", "unique", ("order_id",)),
    )
    assert [r.rule for r in step.table_expectations] == ["min_rows 1", "unique (order_id)"]


def test_unknown_action_and_keys_are_config_errors_naming_step_rule_and_allowed_values():
    with pytest.raises(PipelineConfigError) as caught:
        parse_pipeline(
            _pipeline(
                expectations={"ok": {"rule": "a > 0", "on_violation": "dorp", "level": 1}},
                table_expectations={"rows": {"min_row": 1}, "u": {"unique": []}},
            )
        )
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert all("step 2 'clean'" in p for p in problems)
    assert (
        "expectation 'ok': on_violation 'dorp' is not one of warn, drop, fail, quarantine"
        in (problems[1])
    )
    assert "(did you mean 'drop'?)" in problems[1]
    assert "expectation 'ok': unknown key 'level'; a rule takes rule, on_violation" in problems[0]
    assert "'min_row' (did you mean 'min_rows'?)" in problems[2]
    assert "unique must list column names" in problems[3]


def test_a_python_step_takes_the_yaml_mapping_and_reports_the_same_problems():
    from odibi_core.core.config import validate_steps

    good = Step(
        "transform",
        "t",
        value="SELECT 1",
        outputs={"data": "x"},
        expectations={"pos": {"rule": "x > 0", "on_violation": "fail"}},
    )
    assert good.expectations == (Expectation("pos", "x > 0", "fail"),)
    bad = Step(
        "transform",
        "t",
        value="SELECT 1",
        outputs={"data": "x"},
        expectations={"pos": {"rule": ""}},
        table_expectations={"pos": {"max_rows": -1}},
    )
    problems = validate_steps([bad])
    assert problems == [
        "<steps>, step 1 't': expectation 'pos': 'rule' must be a Spark SQL condition such as "
        "'amount >= 0'",
        "<steps>, step 1 't': table expectation 'pos': max_rows must be a whole number of 0 or "
        "more, got -1",
    ]


def _select_one(**rules) -> Step:
    return Step("transform", "t", value="SELECT 1", outputs={"data": "x"}, **rules)


def test_the_definition_fingerprint_changes_with_a_rule_and_not_without_rules():
    base = _select_one()
    variants = [
        _select_one(expectations={"pos": {"rule": "x > 0"}}),
        _select_one(expectations={"pos": {"rule": "x >= 0"}}),
        _select_one(expectations={"pos": {"rule": "x > 0", "on_violation": "drop"}}),
        _select_one(table_expectations={"n": {"min_rows": 2}}),
        _select_one(table_expectations={"n": {"min_rows": 3}}),
    ]
    assert len({step_fingerprint(s) for s in (base, *variants)}) == 6
    assert len({step_fingerprint(s, with_engine=False) for s in (base, *variants)}) == 6
    # A step without rules keeps the fingerprint it had before rules existed.
    assert step_fingerprint(base) == "ea5dafb45b60144b"


def test_quality_result_dict_has_a_reason_only_when_counts_are_unknown():
    known = QualityResult("pos", "x > 0", "drop", passed=9, failed=1, reason="ignored")
    assert known.to_dict() == {
        "name": "pos",
        "rule": "x > 0",
        "on_violation": "drop",
        "passed": 9,
        "failed": 1,
    }
    unknown = QualityResult("pos", "x > 0", "warn", None, None, reason="the write read part")
    assert unknown.to_dict()["reason"] == "the write read part"
