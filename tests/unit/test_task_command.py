"""What a job task keeps in Delta: its handoffs, steps marked checkpoint: true, or all."""

from dataclasses import replace

from odibi_core.bundle.tasks import plan_tasks, task_named
from odibi_core.cli.task import kept_keys
from odibi_core.core.config import PipelineConfig, Settings
from odibi_core.core.step import Step


def config(**settings):
    steps = (
        Step(layer="ingest", name="a", value="a.csv", outputs={"data": "ka"}, task="one"),
        Step(
            layer="transform",
            name="b",
            type="sql",
            value="SELECT 1",
            inputs={"x": "ka"},
            outputs={"data": "kb"},
            task="one",
        ),
        Step(layer="store", name="c", value="out", inputs={"data": "kb"}, task="two"),
    )
    return PipelineConfig(name="p", steps=steps, settings=Settings(**settings))


def test_a_task_keeps_only_its_handoffs_by_default():
    pipeline = config()
    assert kept_keys(pipeline, task_named(plan_tasks(pipeline), "one")) == {"kb"}
    assert kept_keys(pipeline, task_named(plan_tasks(pipeline), "two")) == set()


def test_a_step_marked_checkpoint_keeps_what_a_later_step_reads():
    pipeline = config()
    marked = replace(
        pipeline, steps=(replace(pipeline.steps[0], checkpoint=True), *pipeline.steps[1:])
    )
    assert kept_keys(marked, task_named(plan_tasks(marked), "one")) == {"ka", "kb"}


def test_checkpoint_all_keeps_every_output_a_later_step_reads():
    pipeline = config(checkpoint="all")
    assert kept_keys(pipeline, task_named(plan_tasks(pipeline), "one")) == {"ka", "kb"}


def test_what_feeds_an_append_in_the_same_task_is_kept_so_a_rerun_restores_the_append():
    pipeline = config()
    store = replace(pipeline.steps[2], task="one", params={"format": "delta", "mode": "append"})
    appending = replace(pipeline, steps=(*pipeline.steps[:2], store))
    assert kept_keys(appending, task_named(plan_tasks(appending), "one")) == {"ka", "kb"}
    overwriting = replace(appending, steps=(*pipeline.steps[:2], replace(store, params={})))
    assert kept_keys(overwriting, task_named(plan_tasks(overwriting), "one")) == set()
