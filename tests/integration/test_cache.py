"""The cache: an unchanged step is restored from Delta; a changed input or definition
re-runs exactly that step and what is downstream of it."""

import os
import uuid

import pandas as pd
import pytest

from odibi_core import Step
from odibi_core.cli import main
from odibi_core.engine.rules import is_pandas_engine_frame
from odibi_core.orchestrator import Orchestrator
from odibi_core.state.cache import CacheManager, hit_log
from odibi_core.state.location import StateTables, default_local_location

pytestmark = pytest.mark.spark


def _pipeline(tmp_path, *, flag_sql="SELECT *, amount > 10 AS big FROM joined"):
    """Two csv ingests (written once), a join, a flag, a Delta store."""
    if not (tmp_path / "o.csv").exists():
        pd.DataFrame({"id": [1, 2, 3], "amount": [5, 20, 30]}).to_csv(
            tmp_path / "o.csv", index=False
        )
        pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}).to_csv(
            tmp_path / "c.csv", index=False
        )
    return [
        Step(layer="ingest", name="orders", value=str(tmp_path / "o.csv"), outputs={"data": "o"}),
        Step(layer="ingest", name="names", value=str(tmp_path / "c.csv"), outputs={"data": "c"}),
        Step(
            layer="transform",
            name="join",
            value="SELECT o.id, o.amount, c.name FROM o JOIN c ON o.id = c.id",
            inputs={"o": "o", "c": "c"},
            outputs={"data": "joined"},
        ),
        Step(
            layer="transform",
            name="flag",
            value=flag_sql,
            inputs={"joined": "joined"},
            outputs={"data": "flagged"},
        ),
        Step(
            layer="store",
            name="save",
            value=str(tmp_path / "out"),
            params={"format": "delta", "mode": "overwrite"},
            inputs={"data": "flagged"},
        ),
    ]


def _run(spark, steps, name, **options):
    result = Orchestrator(
        steps=steps, spark=spark, pipeline_name=name, enable_cache=True, **options
    ).execute()
    assert result.success, result.error
    return result


class _FrameTypes:
    """Notes whose frame each step's output is: a hit returns its engine's frame (the
    pandas engine's is a pandas DataFrame or the Arrow table it keeps between steps)."""

    seen: dict[str, str] = {}

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, call):
        run = self.inner(call)
        for frame in run.outputs.values():
            package = type(frame).__module__.split(".")[0]
            _FrameTypes.seen[call.step.name] = (
                "pandas" if is_pandas_engine_frame(frame) else package
            )
        return run


def _ran(result):
    """The steps that ran (not restored from the cache), in the order they finished."""
    return sorted(set(result.node_states) - set(result.cached_nodes))


def test_an_identical_run_executes_zero_steps_and_the_cache_commands_show_it(
    spark, tmp_path, capsys, monkeypatch
):
    name = f"cache_{uuid.uuid4().hex[:8]}"
    steps = _pipeline(tmp_path)
    first = _run(spark, steps, name, layers=[_FrameTypes])
    assert first.cached_nodes == []
    assert _FrameTypes.seen.pop("join") == "pandas"
    second = _run(spark, steps, name, engine_type="spark", layers=[_FrameTypes])
    assert _FrameTypes.seen["join"] == "pyspark"  # the engine is not in the key; frames are
    assert sorted(second.cached_nodes) == ["flag", "join", "names", "orders", "save"]
    assert _ran(second) == []
    out = spark.read.format("delta").load(str(tmp_path / "out")).orderBy("id").collect()
    assert [(r.id, r.name, r.big) for r in out] == [(1, "a", False), (2, "b", True), (3, "c", True)]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tmp_path / 'out'}`").collect()
    assert len(history) == 1  # the store was not written again
    assert second.tracker.get("join").restored_from.startswith("restored from cache entry ")
    # The hits are one append to the hit log; the entries' own rows are not rewritten.
    state = StateTables(default_local_location())
    index_history = spark.sql(f"DESCRIBE HISTORY delta.`{state.cache.path}`").collect()
    assert "UPDATE" not in {row.operation for row in index_history}
    logged = hit_log(state, lambda: spark).read({"pipeline": name})
    entries = CacheManager(default_local_location(), pipeline=name, spark_provider=lambda: spark)
    assert sorted(row["key"] for row in logged) == sorted(entries.entries())  # one hit each
    assert {row["execution_id"] for row in logged} == {second.execution_id}

    # Listing a local warehouse's cache reads its tables here: no Spark session is asked for.
    with monkeypatch.context() as no_spark:
        no_spark.setattr("odibi_core.engine.session.get_spark", _no_spark_wanted)
        assert main(["cache", "list", "--pipeline", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PIPELINE", "STEP", "KEY", "ROWS", "HITS", "CREATED", "LAST", "HIT"]
    by_step = {line.split()[1]: line.split() for line in lines[1:]}
    assert sorted(by_step) == ["flag", "join", "names", "orders", "save"]
    assert all(fields[4] == "1" for fields in by_step.values())  # one hit each
    assert main(["cache", "stats", "--pipeline", name]) == 0
    assert capsys.readouterr().out.strip().startswith(f"{name}: 5 entries of 5 step(s), 5 hit(s)")

    join_tables = [p for p in _cache_tables(name) if p.name.endswith("_joined")]
    assert main(["cache", "clear", "--pipeline", name, "--step", "join"]) == 0
    assert capsys.readouterr().out.strip() == "cleared 1 cache entry and 1 data table(s)"
    assert join_tables and all(not p.exists() for p in join_tables)
    third = _run(spark, steps, name)
    assert _ran(third) == ["join"]  # its key is unchanged, so what follows still hits
    # Two hits each, but none for the entry made again: the cleared one's hit is not its.
    assert main(["cache", "stats", "--pipeline", name]) == 0
    assert capsys.readouterr().out.strip().startswith(f"{name}: 5 entries of 5 step(s), 8 hit(s)")


# About 55 s (four cached runs): make test-slow. The default suite keeps the hit path, the
# cache commands and a re-run after a cleared entry (the test above).
@pytest.mark.slow
def test_a_touched_source_an_edited_step_and_a_changed_target_rerun_what_they_affect(
    spark, tmp_path
):
    name = f"cache_{uuid.uuid4().hex[:8]}"
    _run(spark, _pipeline(tmp_path), name)
    target = str(tmp_path / "out")

    # A touched source: that ingest and everything downstream of it.
    source = tmp_path / "c.csv"
    pd.DataFrame({"id": [1, 2, 3], "name": ["x", "b", "c"]}).to_csv(source, index=False)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = _run(spark, _pipeline(tmp_path), name)
    assert _ran(touched) == ["flag", "join", "names", "save"]
    assert touched.cached_nodes == ["orders"]
    out = spark.read.format("delta").load(target).orderBy("id").collect()
    assert [r.name for r in out] == ["x", "b", "c"]

    # An edited SQL step: it and its downstream only.
    edited = _run(
        spark, _pipeline(tmp_path, flag_sql="SELECT *, amount > 25 AS big FROM joined"), name
    )
    assert _ran(edited) == ["flag", "save"]
    assert sorted(edited.cached_nodes) == ["join", "names", "orders"]
    out = spark.read.format("delta").load(target).orderBy("id").collect()
    assert [r.big for r in out] == [False, False, True]

    # A target someone else changed: the store is written again.
    spark.sql(f"DELETE FROM delta.`{target}` WHERE id = 1")
    rewritten = _run(
        spark, _pipeline(tmp_path, flag_sql="SELECT *, amount > 25 AS big FROM joined"), name
    )
    assert _ran(rewritten) == ["save"]
    assert spark.read.format("delta").load(target).count() == 3


def _no_spark_wanted(*args, **kwargs):
    raise AssertionError("odibi cache list asked for a Spark session")


def _cache_tables(pipeline):
    from pathlib import Path

    return list(Path(os.environ["ODIBI_WAREHOUSE"]).rglob(f"odibi_cachedata__{pipeline}__*"))
