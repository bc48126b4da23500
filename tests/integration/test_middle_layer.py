"""The run's seams: a plan over a subset fed from a store, and runner layers added from outside."""

import threading

import pandas as pd
import pytest

from odibi_core import NodeState, Step
from odibi_core.core.errors import SelectionError
from odibi_core.execution.plan import build_plan, step_fingerprint
from odibi_core.execution.runners import StepCall, StepRun
from odibi_core.execution.store import MemoryStore
from odibi_core.orchestrator import Orchestrator
from tests.integration.seed_steps import five_steps


def _slim(result_or_path):
    frame = pd.read_parquet(result_or_path)
    return frame.sort_values("customer_id").reset_index(drop=True)


def test_a_selected_middle_step_fed_from_the_store_gives_the_full_runs_output(seed_data):
    full = Orchestrator(steps=five_steps(), engine_type="pandas").execute()
    assert full.success
    expected = _slim("out/slim")
    # The first part of the pipeline, run on its own: what it produces no step of it reads,
    # so it stays in its store, as a task's handoff would.
    first = Orchestrator(steps=five_steps(), engine_type="pandas", select="+add_column").execute()
    upstream = first.data_map["with_column"]

    store = MemoryStore({"with_column": upstream})
    subset = Orchestrator(
        steps=five_steps(), engine_type="pandas", select="drop_columns+", store=store
    )
    assert subset.plan.external_inputs == {"with_column": frozenset({"add_column"})}
    assert subset.dag.topological_order() == ["drop_columns", "save"]
    result = subset.execute()

    assert result.success
    assert result.node_states == {"drop_columns": NodeState.SUCCESS, "save": NodeState.SUCCESS}
    pd.testing.assert_frame_equal(_slim("out/slim"), expected)
    assert len(expected) == 3  # the DE customers, with the added column
    assert list(expected.columns) == ["customer_id", "name", "new_column"]


def test_a_selection_whose_inputs_are_not_in_the_store_names_them_and_the_fix(seed_data):
    with pytest.raises(SelectionError) as error:
        Orchestrator(steps=five_steps(), select="drop_columns+", store=MemoryStore())
    message = str(error.value)
    assert "'with_column' (produced by add_column)" in message
    assert "put the data into the run's store" in message


class SeenSteps:
    """A runner layer written outside the framework: records each step it saw."""

    seen: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, call: StepCall) -> StepRun:
        run = self.inner(call)
        with self.lock:
            self.seen.append((call.step.name, call.engine.name, len(run.outputs)))
        return run


def test_a_runner_layer_added_from_outside_sees_every_step_and_its_result(seed_data):
    SeenSteps.seen = []
    result = Orchestrator(steps=five_steps(), engine_type="pandas", layers=[SeenSteps]).execute()
    assert result.success
    assert sorted(SeenSteps.seen) == [
        ("add_column", "pandas", 1),
        ("drop_columns", "pandas", 1),
        ("filter_customers", "pandas", 1),
        ("read_customers", "pandas", 1),
        ("save", "pandas", 0),
    ]
    # The tracker still records every step, below the added layer.
    assert [s.step_name for s in result.tracker.step_executions] == [
        "read_customers",
        "filter_customers",
        "add_column",
        "drop_columns",
        "save",
    ]


def test_a_failing_step_passes_through_an_added_layer_as_the_same_failure(seed_data):
    steps = five_steps()
    steps[1] = Step(
        layer="transform",
        name="filter_customers",
        type="sql",
        value="SELECT no_such_column FROM bronze",
        inputs={"bronze": "raw_customers"},
        outputs={"data": "de_customers"},
    )
    SeenSteps.seen = []
    result = Orchestrator(steps=steps, engine_type="pandas", layers=[SeenSteps]).execute()
    assert not result.success
    assert result.failed_nodes == ["filter_customers"]
    assert result.skipped_nodes == ["add_column", "drop_columns", "save"]
    assert SeenSteps.seen == [("read_customers", "pandas", 1)]
    assert "no_such_column" in result.errors["filter_customers"]


def test_fingerprints_change_with_what_a_step_computes_and_nothing_else():
    step = five_steps()[1]
    same = Step(**{**step.__dict__, "metadata": {"owner": "me"}, "task": "t1"})
    changed = Step(**{**step.__dict__, "value": "SELECT * FROM bronze WHERE country = 'FR'"})
    assert step_fingerprint(step) == step_fingerprint(same)
    assert step_fingerprint(step) != step_fingerprint(changed)
    assert len(step_fingerprint(step)) == 16
    # Stable across processes: a fixed definition has a fixed fingerprint.
    fixed = Step(layer="ingest", name="r", value="data/x.csv", outputs={"data": "x"})
    assert step_fingerprint(fixed) == step_fingerprint(
        Step(layer="ingest", name="other_name", value="data/x.csv", outputs={"data": "x"})
    )


def test_the_plan_carries_resolved_parameters_and_a_fingerprint_per_selected_step(seed_data):
    from odibi_core.core.config import PipelineConfig

    steps = [
        Step(layer="ingest", name="read", value="data/${params.file}", outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="t",
            value="SELECT * FROM r",
            inputs={"r": "raw"},
            outputs={"data": "out"},
        ),
    ]
    config = PipelineConfig(name="p", steps=tuple(steps), parameters={"file": None})
    plan = build_plan(config, params={"file": "customers.csv"}, select="t")
    assert plan.steps[0].value == "data/customers.csv"
    assert dict(plan.parameters) == {"file": "customers.csv"}
    assert list(plan.fingerprints) == ["t"]
    assert plan.external_inputs == {"raw": frozenset({"read"})}


def test_an_unknown_run_option_is_refused_with_a_suggestion():
    with pytest.raises(
        TypeError, match=r"unknown option 'max_worker' \(did you mean 'max_workers'\?\)"
    ):
        Orchestrator(steps=five_steps(), max_worker=2)
