"""Execution ids, ``RUN_ID.ATTEMPT``: one per execution of a run. A resumed run or a
repaired job run is the next attempt of the same run id."""

from __future__ import annotations

__all__ = ["attempt_of", "execution_id", "run_id_of"]


def execution_id(run_id: str, attempt: int) -> str:
    return f"{run_id}.{attempt}"


def _split(text: str) -> tuple[str, int | None]:
    head, dot, tail = text.rpartition(".")
    if dot and head and tail.isdigit():
        return head, int(tail)
    return text, None


def run_id_of(run_or_execution: str) -> str:
    """The run id of ``RUN_ID`` or of an execution id ``RUN_ID.ATTEMPT``."""
    return _split(run_or_execution)[0]


def attempt_of(execution: str | None, *, run_id: str | None = None) -> int:
    """The attempt of an execution id; 0 for none, or for one of another run than ``run_id``."""
    head, attempt = _split(execution or "")
    if attempt is None or (run_id is not None and head != run_id):
        return 0
    return attempt
