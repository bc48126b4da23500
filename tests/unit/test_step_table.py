"""The one per-step table behind the tracker's summary, ``odibi lineage`` and the hook."""

from __future__ import annotations

from odibi_core.cli import format_lineage
from odibi_core.core.step import NodeState
from odibi_core.core.step_table import step_cells, step_table

LINEAGE_STEPS = [
    {
        "step_name": "read",
        "layer": "ingest",
        "engine": "pandas",
        "status": NodeState.SUCCESS,
        "duration_ms": 12,
        "before_snapshot": {"row_count": None},
        "after_snapshot": {"row_count": 1200},
        "row_delta": None,
        "schema_diff": {"added": ["id", "name"], "removed": []},
    },
    {
        "step_name": "big_orders",
        "layer": "transform",
        "engine": None,
        "status": "FAILED",
        "duration_ms": 2500,
        "before_snapshot": {"row_count": 40},
        "after_snapshot": {"row_count": 30},
        "row_delta": -10,
        "schema_diff": {"added": [], "removed": ["note"]},
        "error_message": "Binder Error: column 'x' not found",
    },
]


def test_the_table_aligns_text_left_and_numbers_right():
    columns = ("step", "engine", "status", "duration", "rows before", "rows after", "delta")

    assert step_table(LINEAGE_STEPS, columns).splitlines() == [
        "step        engine  status   duration  rows before  rows after  delta",
        "----------  ------  -------  --------  -----------  ----------  -----",
        "read        pandas  SUCCESS     12 ms            -       1,200      -",
        "big_orders  -       FAILED     2.50 s           40          30    -10",
    ]


def test_notes_go_under_their_step_and_no_header_when_asked():
    table = step_table(
        LINEAGE_STEPS,
        ("step", "row change", "schema change"),
        header=False,
        indent="  ",
        notes=lambda step: [step["error_message"]] if "error_message" in step else [],
    )

    assert table.splitlines() == [
        "  read        rows - -> 1,200  +id,name",
        "  big_orders  rows 40 -> 30    -note",
        "      Binder Error: column 'x' not found",
    ]


def test_a_payload_step_gives_its_row_count_and_dashes_for_what_it_lacks():
    payload_step = {"step_name": "[raw]", "status": "CACHED", "row_count": 1000}

    assert step_cells(payload_step, ("step", "status", "duration", "rows", "layer")) == [
        "[raw]",
        "CACHED",
        "-",
        "1,000",
        "-",
    ]


def test_odibi_lineage_prints_a_row_per_step_with_its_error():
    lineage = {"pipeline_name": "orders", "run_id": "r1", "execution_id": "r1.1"}
    lines = format_lineage({**lineage, "steps": LINEAGE_STEPS}).splitlines()

    assert lines[0] == "pipeline orders  run r1  execution r1.1"
    assert lines[2:] == [
        "  read        ingest     SUCCESS   12 ms  rows - -> 1,200  +id,name",
        "  big_orders  transform  FAILED   2.50 s  rows 40 -> 30    -note",
        "      Binder Error: column 'x' not found",
    ]
