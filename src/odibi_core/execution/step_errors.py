"""How a step's failure is told: the user's own line, and the step whose plan really failed.

A function's error names the last frame of user code (not odibi_core's, not a library's),
so "ZeroDivisionError" comes with the file and line to fix. Spark runs a transform's plan
lazily, inside a later step's action (usually the store); when the failing SQL fragment
Spark reports belongs to an upstream step, the message names that step.
"""

from __future__ import annotations

import re
import site
import sysconfig
import traceback
from collections.abc import Sequence
from pathlib import Path

from odibi_core.core.errors import OdibiError, StepExecutionError
from odibi_core.core.step import Step
from odibi_core.engine.failures import SparkError
from odibi_core.engine.rules import is_spark_exception, spark_error

_PACKAGE_ROOT = Path(__file__).resolve().parent


def user_code_error(step: Step, exc: BaseException) -> StepExecutionError:
    """A ``StepExecutionError`` for an error raised by user code or a library it called.

    ``sys.exit`` is an error of the step, and not retried; a Spark error keeps Spark's
    verdict on retrying; anything else may be transient (I/O, a network call) and is.
    """
    if isinstance(exc, SystemExit):
        what, retryable = f"the function called sys.exit({exc.code!r})", False
    elif is_spark_exception(exc):
        engine_error = spark_error(exc, step=None, action="run the function")
        what, retryable = str(engine_error), engine_error.retryable
    else:
        what, retryable = f"{type(exc).__name__}: {exc}", True
    where = user_frame_text(exc)
    message = f"{where}: {what}" if where else what
    return StepExecutionError(step.name, message, retryable=retryable)


def user_frame_text(exc: BaseException) -> str | None:
    """``path, line N, in function`` of the last frame of user code in ``exc``'s traceback."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<") or _is_library_file(frame.filename):
            continue
        return f"{_display_path(frame.filename)}, line {frame.lineno}, in {frame.name}"
    return None


def blame_lazy_step(error: OdibiError, step: Step, upstream: Sequence[Step]) -> OdibiError:
    """``error``, naming the upstream SQL step whose expression failed inside ``step``.

    ``upstream`` is ordered nearest first. Errors without a SQL fragment, and fragments
    found in ``step``'s own SQL or in no step's, leave the error as it is.
    """
    failure = getattr(error, "failure", None)
    if not isinstance(error, SparkError) or failure is None:
        return error
    for fragment in failure.fragments:
        wanted = _normalized(fragment)
        if step.kind == "sql" and wanted in _normalized(step.value):
            return error
        culprit = next(
            (s for s in upstream if s.kind == "sql" and wanted in _normalized(s.value)), None
        )
        if culprit is not None:
            return SparkError(
                f"{error}\nthe failing expression `{fragment}` is in the SQL of "
                f"{culprit.describe()}; Spark ran that step's plan lazily in this step, "
                f"so fix it in step '{culprit.name}'",
                failure,
                retryable=error.retryable,
            )
    return error


def _normalized(sql: object) -> str:
    return re.sub(r"\s+", " ", str(sql)).strip().lower()


def _library_roots() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(Path(root).resolve() for root in roots if root) + (_PACKAGE_ROOT,)


_LIBRARY_ROOTS = _library_roots()


def _is_library_file(filename: str) -> bool:
    path = Path(filename).resolve()
    return any(path.is_relative_to(root) for root in _LIBRARY_ROOTS)


def _display_path(filename: str) -> str:
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
