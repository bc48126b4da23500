"""One error hierarchy: every error odibi_core raises on purpose is an ``OdibiError``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OdibiError(Exception):
    """Base class of every error raised by odibi_core."""

    #: Whether retrying the same work could succeed. Deterministic errors (bad config,
    #: bad SQL, a missing file) say False so the executor fails them at once.
    retryable: bool = False


class PipelineConfigError(OdibiError):
    """A pipeline definition is invalid. ``problems`` lists every problem found."""

    def __init__(self, problems: str | Iterable[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            listed = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{len(self.problems)} problems in the pipeline:\n{listed}"
        super().__init__(message)


class CircularDependencyError(PipelineConfigError):
    """The steps' inputs and outputs form a cycle."""

    def __init__(self, cycle: list[str], where: str = ""):
        self.cycle = cycle
        path = " -> ".join(cycle)
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}steps form a cycle: {path}; "
            "break it by making one of these steps read a data key produced outside the cycle"
        )


class SelectionError(PipelineConfigError):
    """A ``--select`` expression names nothing, or leaves needed inputs out."""


class EngineError(OdibiError):
    """An engine failed to read, transform or write data for a step."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class StepExecutionError(OdibiError):
    """A step failed while running. Wraps the engine's error with the step's name."""

    def __init__(self, step_name: str, message: str, *, retryable: bool = False):
        super().__init__(f"step '{step_name}' failed: {message}")
        self.step_name = step_name
        self.retryable = retryable


class QualityError(StepExecutionError):
    """A step's output broke a quality rule whose action is ``fail`` (or a table rule).

    Never retried: the same input gives the same rows. ``results`` holds the step's
    ``QualityResult`` of each rule checked.
    """

    def __init__(self, step_name: str, message: str, results: tuple = ()):
        super().__init__(step_name, message, retryable=False)
        self.results = results


class PipelineExecutionError(OdibiError):
    """Raised by ``execute(raise_on_error=True)`` when a run ends with a failure."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class StateError(OdibiError):
    """The Delta state store (audit, checkpoints, cache) could not be read or written."""

    retryable = True


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
