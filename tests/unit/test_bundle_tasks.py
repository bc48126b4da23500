"""Job tasks from the DAG: grouping, task dependencies, handoffs and cluster classes."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odibi_core.bundle.tasks import RECORD_RUN_TASK, plan_tasks, task_named
from odibi_core.core.config import PipelineConfig, Settings, load_pipeline
from odibi_core.core.dag import DAGBuilder
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.step import Step

EXAMPLE = "pipelines/customer_pipeline.yaml"


def ingest(name, key, **extra):
    return Step(layer="ingest", name=name, value=f"{name}.csv", outputs={"data": key}, **extra)


def transform(name, inputs, key, **extra):
    return Step(
        layer="transform",
        name=name,
        type="sql",
        value="SELECT 1",
        inputs=inputs,
        outputs={"data": key},
        **extra,
    )


def store(name, key, **extra):
    return Step(layer="store", name=name, value=f"out/{name}", inputs={"data": key}, **extra)


def config_of(steps, engine="pandas", **settings_values):
    return PipelineConfig(
        name="p", steps=tuple(steps), engine=engine, settings=Settings(**settings_values)
    )


def shape(tasks):
    return {t.key: (t.steps, t.depends_on, t.reads, t.handoffs) for t in tasks}


def test_one_task_per_step_of_the_example_pipeline():
    tasks = plan_tasks(load_pipeline(EXAMPLE))
    assert [t.key for t in tasks] == [
        "read_customers",
        "read_orders",
        "read_products",
        "join_all",
        "add_flag",
        "save_orders",
    ]
    join = task_named(tasks, "join_all")
    assert join.depends_on == ("read_customers", "read_orders", "read_products")
    assert join.reads == ("raw_customers", "raw_orders", "raw_products")
    assert join.handoffs == ("joined",)
    assert task_named(tasks, "save_orders").handoffs == ()
    assert {t.compute for t in tasks} == {"spark"}  # engine: auto is Spark-class
    assert {t.retries for t in tasks} == {1}  # settings.max_retries: 1


def test_chains_group_linear_runs_on_one_engine():
    steps = [
        ingest("a", "ka"),
        transform("b", {"x": "ka"}, "kb"),
        transform("c", {"x": "kb"}, "kc", engine="spark"),
        store("d", "kc", engine="spark"),
    ]
    tasks = plan_tasks(config_of(steps, group_by="chain"))
    assert shape(tasks) == {
        "a": (("a", "b"), (), (), ("kb",)),
        "c": (("c", "d"), ("a",), ("kb",), ()),
    }
    assert [t.compute for t in tasks] == ["pandas", "spark"]


def test_a_fork_ends_a_chain():
    steps = [
        ingest("a", "ka"),
        transform("b", {"x": "ka"}, "kb"),
        transform("c", {"x": "ka"}, "kc"),
        transform("d", {"x": "kb", "y": "kc"}, "kd"),
    ]
    tasks = plan_tasks(config_of(steps, group_by="chain"))
    assert [t.steps for t in tasks] == [("a",), ("b",), ("c",), ("d",)]


def test_layer_grouping_and_explicit_task_names():
    steps = [
        ingest("a", "ka"),
        ingest("b", "kb"),
        transform("c", {"x": "ka", "y": "kb"}, "kc"),
        store("d", "kc", task="publish all"),
    ]
    tasks = plan_tasks(config_of(steps, group_by="layer"))
    assert shape(tasks) == {
        "ingest": (("a", "b"), (), (), ("ka", "kb")),
        "transform": (("c",), ("ingest",), ("ka", "kb"), ("kc",)),
        "publish_all": (("d",), ("transform",), ("kc",), ()),
    }


def test_a_grouping_with_a_cycle_names_the_steps():
    steps = [
        ingest("a", "ka", task="one"),
        transform("b", {"x": "ka"}, "kb", task="two"),
        transform("c", {"x": "kb"}, "kc", task="one"),
    ]
    with pytest.raises(PipelineConfigError) as caught:
        plan_tasks(config_of(steps))
    message = str(caught.value)
    assert "a (task one) -> b (task two)" in message
    assert "b (task two) -> c (task one)" in message
    assert "group_by: step" in message


def test_task_compute_overrides_by_task_and_by_step():
    steps = [ingest("a", "ka"), transform("b", {"x": "ka"}, "kb"), store("c", "kb")]
    config = config_of(steps, engine="auto", task_compute={"a": "pandas", "c": "pandas"})
    by_key = {t.key: t.compute for t in plan_tasks(config)}
    assert by_key == {"a": "pandas", "b": "spark", "c": "pandas"}
    # One chain, task 'a': the task's own entry decides over its steps'.
    chained = replace(config, settings=replace(config.settings, group_by="chain"))
    assert [(t.key, t.compute) for t in plan_tasks(chained)] == [("a", "pandas")]
    by_step = replace(chained.settings, task_compute={"c": "pandas"})
    assert [t.compute for t in plan_tasks(replace(config, settings=by_step))] == ["spark"]


def test_the_record_task_name_is_reserved():
    with pytest.raises(PipelineConfigError, match=RECORD_RUN_TASK):
        plan_tasks(config_of([ingest("a", "ka", task=RECORD_RUN_TASK)]))


def test_an_unknown_task_lists_the_tasks():
    tasks = plan_tasks(load_pipeline(EXAMPLE))
    with pytest.raises(PipelineConfigError, match="did you mean 'join_all'.*its tasks are: read_"):
        task_named(tasks, "join_al")


@st.composite
def random_pipelines(draw):
    """A random DAG: step i reads any keys of earlier steps; random engines and tasks."""
    count = draw(st.integers(min_value=1, max_value=12))
    steps = []
    for index in range(count):
        earlier = [f"k{i}" for i in range(index)]
        inputs = (
            draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        )
        engine = draw(st.sampled_from(["pandas", "spark", None]))
        steps.append(
            Step(
                layer=draw(st.sampled_from(["ingest", "transform", "store"]))
                if inputs
                else "ingest",
                name=f"s{index}",
                type="sql" if inputs else None,
                value="SELECT 1" if inputs else f"s{index}.csv",
                engine=engine,
                inputs={f"in{j}": key for j, key in enumerate(inputs)},
                outputs={"data": f"k{index}"},
            )
        )
    return steps


@settings(max_examples=150, deadline=None)
@given(random_pipelines(), st.sampled_from(["step", "chain", "layer"]))
def test_the_task_graph_is_the_dag_lifted_to_tasks(steps, group_by):
    config = config_of(steps, group_by=group_by)
    dag = DAGBuilder(steps).build()
    try:
        tasks = plan_tasks(config)
    except PipelineConfigError as exc:  # only a layer grouping can make a cycle here
        assert group_by == "layer" and "circle" in str(exc)
        return
    task_of = {name: t.key for t in tasks for name in t.steps}
    assert sorted(task_of) == sorted(dag.topological_order())  # each step in one task
    position = {t.key: i for i, t in enumerate(tasks)}
    for t in tasks:
        assert all(position[dep] < position[t.key] for dep in t.depends_on)
    by_key = {t.key: t for t in tasks}
    lifted = set()
    for producer, consumer, keys in dag.edges():
        if task_of[producer] != task_of[consumer]:
            lifted.add((task_of[producer], task_of[consumer]))
            for key in keys:  # every cross-task data key has a handoff both ways
                assert key in by_key[task_of[producer]].handoffs
                assert key in by_key[task_of[consumer]].reads
    assert lifted == {(dep, t.key) for t in tasks for dep in t.depends_on}
    for t in tasks:  # nothing is handed off that no other task reads
        readers = {o.key for o in tasks if set(t.handoffs) & set(o.reads)}
        assert bool(t.handoffs) == bool(readers - {t.key})
