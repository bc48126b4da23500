"""A local Delta table's commits, read from its log files without Spark."""

import json

from odibi_core.engine.delta_log import LocalDeltaLog


def _commit(log, version, operation, tag, rows, *, info_first=True):
    info = {
        "commitInfo": {
            "operation": operation,
            "operationMetrics": {"numOutputRows": str(rows)},
            **({"userMetadata": tag} if tag is not None else {}),
        }
    }
    add = {"add": {"path": f"part-{version}.parquet", "size": 10}}
    actions = [info, add] if info_first else [add, info]
    (log / f"{version:020d}.json").write_text("\n".join(map(json.dumps, actions)) + "\n")


def _table(tmp_path):
    log = tmp_path / "t" / "_delta_log"
    log.mkdir(parents=True)
    _commit(log, 0, "WRITE", "odibi:a", 3)
    _commit(log, 1, "WRITE", "run-1#0@x", 5)
    _commit(log, 2, "OPTIMIZE", "odibi:b", 0)
    _commit(log, 3, "MERGE", "odibi:b", 7, info_first=False)
    _commit(log, 4, "WRITE", None, 1)
    (log / "00000000000000000004.crc").write_text("{}")
    (log / "_last_checkpoint").write_text("{}")
    return tmp_path / "t"


def test_a_commit_is_found_by_its_tag_newest_first_among_data_operations(tmp_path):
    log = LocalDeltaLog.of(str(_table(tmp_path)))
    assert log is not None
    assert log.versions() == [4, 3, 2, 1, 0]
    data = ("WRITE", "MERGE")
    found = log.find(lambda meta: meta == "odibi:b", data)
    assert (found["version"], found["operation"]) == (3, "MERGE")  # not the OPTIMIZE
    assert found["operationMetrics"] == {"numOutputRows": "7"}
    by_prefix = log.find(lambda meta: meta is not None and meta.startswith("run-1#0@"), data)
    assert by_prefix["version"] == 1
    assert log.find(lambda meta: meta == "odibi:missing", data) is None


def test_only_a_local_folder_holding_a_log_is_read(tmp_path):
    table = _table(tmp_path)
    assert LocalDeltaLog.of(f"file://{table}").versions()[0] == 4
    assert LocalDeltaLog.of(str(tmp_path / "not_written_yet")) is None
    assert LocalDeltaLog.of("s3://bucket/t") is None
    assert LocalDeltaLog.of("dbfs:/tmp/t") is None
    assert LocalDeltaLog.of(None) is None
