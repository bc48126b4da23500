"""Cache keys: what changes a step's key, and what does not. No JVM: csv sources only."""

import os
from dataclasses import replace

from odibi_core import Step
from odibi_core.core.config import PipelineConfig
from odibi_core.core.fingerprints import delta_fingerprint, files_fingerprint
from odibi_core.execution.caching import CacheKeys, caches, code_version
from odibi_core.execution.plan import build_plan


def _steps(tmp_path, *, sql="SELECT * FROM a", engine=None):
    if not (tmp_path / "a.csv").exists():
        (tmp_path / "a.csv").write_text("id\n1\n2\n")
    return [
        Step(layer="ingest", name="read", value=str(tmp_path / "a.csv"), outputs={"data": "a"}),
        Step(
            layer="transform",
            name="pick",
            value=sql,
            engine=engine,
            inputs={"a": "a"},
            outputs={"data": "b"},
        ),
        Step(
            layer="transform",
            name="double",
            type="function",
            value="tests.funcs:explode",
            inputs={"data": "b"},
            outputs={"data": "c"},
        ),
    ]


def _keys(tmp_path, steps, name="p"):
    plan = build_plan(PipelineConfig(name=name, steps=steps))
    keys = CacheKeys(plan, base_dir=tmp_path, engines=None)
    return {step.name: keys.key_of(step) for step in plan.dag.steps}


def test_equal_definitions_and_inputs_give_equal_keys(tmp_path):
    first = _keys(tmp_path, _steps(tmp_path))
    again = _keys(tmp_path, _steps(tmp_path))
    assert first == again
    assert all(first.values()) and len(set(first.values())) == 3


def test_the_engine_is_not_part_of_the_key(tmp_path):
    assert _keys(tmp_path, _steps(tmp_path)) == _keys(tmp_path, _steps(tmp_path, engine="spark"))


def test_a_touched_source_changes_its_ingest_and_everything_downstream(tmp_path):
    before = _keys(tmp_path, _steps(tmp_path))
    source = tmp_path / "a.csv"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = _keys(tmp_path, _steps(tmp_path))
    assert all(before[name] != after[name] for name in ("read", "pick", "double"))


def test_an_edited_step_changes_its_key_and_downstream_only(tmp_path):
    before = _keys(tmp_path, _steps(tmp_path))
    after = _keys(tmp_path, _steps(tmp_path, sql="SELECT id FROM a"))
    assert after["read"] == before["read"]
    assert after["pick"] != before["pick"] and after["double"] != before["double"]


def test_another_pipeline_has_other_keys(tmp_path):
    steps = _steps(tmp_path)
    assert _keys(tmp_path, steps, "p")["read"] != _keys(tmp_path, steps, "q")["read"]


def test_a_step_reading_data_from_outside_the_run_has_no_key(tmp_path):
    plan = build_plan(PipelineConfig(name="p", steps=_steps(tmp_path)), select="pick")
    keys = CacheKeys(plan, base_dir=tmp_path, engines=None)
    assert keys.key_of(plan.dag.step("pick")) is None


def test_a_missing_source_has_no_key(tmp_path):
    steps = _steps(tmp_path)
    missing = replace(steps[0], value=str(tmp_path / "gone.csv"))
    plan = build_plan(PipelineConfig(name="p", steps=[missing, *steps[1:]]))
    assert CacheKeys(plan, base_dir=tmp_path, engines=None).key_of(missing) is None


def test_function_code_is_known_by_its_source_text(tmp_path):
    step = _steps(tmp_path)[2]
    version = code_version(step)
    assert version is not None and version.startswith("source:")
    assert code_version(replace(step, value="tests.funcs:fail_while_flagged")) != version


def test_content_fingerprints_ignore_the_modification_time(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("id\n1\n")
    by_stat = files_fingerprint(source)
    by_content = files_fingerprint(source, content=True)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert files_fingerprint(source) != by_stat
    assert files_fingerprint(source, content=True) == by_content
    source.write_text("id\n2\n")
    assert files_fingerprint(source, content=True) != by_content


def test_a_folder_is_known_by_all_its_data_files(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "p1.csv").write_text("id\n1\n")
    first = files_fingerprint(folder)
    (folder / "p2.csv").write_text("id\n2\n")
    assert files_fingerprint(folder) != first
    assert files_fingerprint(tmp_path / "nothing") is None


def test_a_delta_fingerprint_follows_the_latest_commit(tmp_path):
    log_dir = tmp_path / "t" / "_delta_log"
    log_dir.mkdir(parents=True)
    assert delta_fingerprint(tmp_path / "t") is None
    (log_dir / f"{0:020d}.json").write_text("{}\n")
    first = delta_fingerprint(tmp_path / "t")
    assert first is not None and first.startswith("delta:0:")
    (log_dir / f"{1:020d}.json").write_text("{}\n")
    assert delta_fingerprint(tmp_path / "t").startswith("delta:1:")


def test_a_step_cache_flag_decides_before_the_run_option():
    step = Step(layer="transform", name="t", value="SELECT 1")
    assert caches(step, True) and not caches(step, False)
    assert caches(replace(step, cache=True), False)
    assert not caches(replace(step, cache=False), True)
