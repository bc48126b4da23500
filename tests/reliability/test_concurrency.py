"""Concurrent runs of the example pipeline: 4 processes and 8 threads at once, sharing one
warehouse (the MERGE target and the state tables).

All succeed (Delta commit conflicts are retried), each execution's audit rows are there
exactly once, and the MERGE target holds what a single run writes.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from odibi_core.orchestrator import Orchestrator, RunContext
from tests.reliability.conftest import REPO, odibi_process

PROCESSES, THREADS = 4, 8
STEPS = {"read_customers", "read_orders", "read_products", "join_all", "add_flag", "save_orders"}
TARGET = ("main", "sales", "orders_enriched")


def _example(folder: Path) -> Path:
    """The example pipeline with a small copy of its data (same generator, fewer rows)."""
    spec = importlib.util.spec_from_file_location(
        "generate_data", REPO / "pipelines" / "generate_data.py"
    )
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.generate(folder / "data", customers=60, orders=300, products=12)
    return Path(shutil.copy(REPO / "pipelines" / "customer_pipeline.yaml", folder))


def _orchestrator(pipeline: Path, spark, warehouse: Path, state: str | None) -> Orchestrator:
    return Orchestrator(
        pipeline=str(pipeline),
        spark=spark,
        context=RunContext(warehouse=warehouse),
        state_schema=state,
    )


def _target(spark, warehouse: Path) -> pd.DataFrame:
    frame = spark.read.format("delta").load(str(warehouse.joinpath(*TARGET))).toPandas()
    return frame.sort_values("order_id").reset_index(drop=True)[sorted(frame.columns)]


@pytest.mark.slow  # four JVMs at once: runs under `make test-slow` and `make stress`
@pytest.mark.spark
def test_four_processes_and_eight_threads_at_once(spark, tmp_path, monkeypatch):
    from odibi_core.orchestrator import state_location_of
    from odibi_core.state.audit import AuditStore

    pipeline = _example(tmp_path)
    single = tmp_path / "single"
    assert _orchestrator(pipeline, spark, single, None).execute().success
    shared = tmp_path / "warehouse"
    # Twelve runs queue for the state tables' lock; on a loaded 2-core machine the last
    # one waits longer than the default 120 s.
    env = {"ODIBI_WAREHOUSE": str(shared), "ODIBI_STATE_LOCK_TIMEOUT": "900"}
    monkeypatch.setenv("ODIBI_STATE_LOCK_TIMEOUT", env["ODIBI_STATE_LOCK_TIMEOUT"])

    processes = [
        odibi_process(["run", str(pipeline), "--quiet"], tmp_path, env=env)
        for _ in range(PROCESSES)
    ]
    results: list = []

    def run_in_thread() -> None:
        results.append(_orchestrator(pipeline, spark, shared, "odibi_state").execute())

    threads = [threading.Thread(target=run_in_thread) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    ended = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        ended.append((process.returncode, out, err))

    failed = [err for code, _, err in ended if code != 0]
    assert not failed, failed[0]
    assert len(results) == THREADS and all(r.success for r in results), [r.error for r in results]
    run_ids = {r.run_id for r in results}
    for _, out, _ in ended:
        match = re.search(r"run (\S+): 6/6 steps succeeded", out)
        assert match, out
        run_ids.add(match.group(1))

    store = AuditStore(
        state_location_of("odibi_state"), spark_provider=lambda: spark, warehouse=shared
    )
    runs = store.runs.read()
    assert len(runs) == PROCESSES + THREADS and {r["status"] for r in runs} == {"SUCCESS"}
    assert {r["run_id"] for r in runs} == run_ids and len(run_ids) == PROCESSES + THREADS
    assert {r.execution_id for r in results} <= {r["execution_id"] for r in runs}
    audit = [(r["execution_id"], r["step_name"], r["status"]) for r in store.audit.read()]
    expected = {(r["execution_id"], step, "SUCCESS") for r in runs for step in STEPS}
    assert sorted(audit) == sorted(expected)  # every execution's rows, each exactly once
    pd.testing.assert_frame_equal(_target(spark, shared), _target(spark, single))
