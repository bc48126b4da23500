"""Frames kept in the state location's data tables: checkpoints, handoffs and the cache.

Both kinds are written the same way (an overwrite of the table the name function gives) and
read back the same way (the recorded table at the recorded version, refused when the record
names anything but a data table of this location).
"""

from __future__ import annotations

from typing import Any

from odibi_core.core.errors import StateError
from odibi_core.engine.base import ReadSpec, WriteSpec
from odibi_core.state.location import StateTableRef, StateTables


def save_frame(
    ref: StateTableRef, frame: Any, *, spark_engine: Any, step: str
) -> tuple[str, int | None]:
    """Overwrite ``ref`` with ``frame`` (pandas or Spark); the table as recorded, and its
    new version."""
    target, fmt = ref.engine_target
    written = spark_engine.write(frame, WriteSpec(target, fmt, mode="overwrite"), step=step)
    return target, written.delta_version


def read_frame(
    tables: StateTables,
    recorded: str,
    version: int | None,
    *,
    engine: Any,
    step: str,
    what: str,
    fix: str,
) -> Any:
    """The frame the recorded data table holds at ``version``, as ``engine``'s frame.

    When ``recorded`` is no data table of this location, the error says ``what`` named it
    and ends with ``fix``.
    """
    ref = tables.data_table_ref(recorded)
    if ref is None:
        raise StateError(
            f"step '{step}': {what} names {recorded}, which is no checkpoint, handoff or "
            f"cache table of state location {tables.location}; {fix}"
        )
    source, fmt = ref.engine_target
    options = {"versionAsOf": str(version)} if version is not None else {}
    return engine.read(ReadSpec(source, fmt, options=options), step=step)
