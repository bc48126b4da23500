"""Log records scrubbed while a run is on: odibi_core's own loggers, the root's handlers,
and PySpark's query-context loggers, which log SQL errors before any caller can catch them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable


class CurrentStderrHandler(logging.StreamHandler):
    """Writes each record to ``sys.stderr`` as it is then, not as it was when the handler
    was made.

    A process may swap stderr (a notebook cell, ``redirect_stderr``, a test capturing
    output). A handler bound to the stream of its creation would write to it after it was
    closed, and logging would then print its own error with the traceback of the exception
    being handled: a value the record itself had masked included. So a record that cannot
    be written costs one line naming why, never a traceback.
    """

    def __init__(self, level: int = logging.NOTSET):
        logging.Handler.__init__(self, level)  # StreamHandler's would bind a stream

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if not logging.raiseExceptions:
            return
        error = sys.exc_info()[1]
        with contextlib.suppress(Exception):
            sys.__stderr__.write(
                f"odibi: a log record of {record.name} could not be written "
                f"({type(error).__name__})\n"
            )


class ScrubbingLogFilter(logging.Filter):
    """Masks log records while a run is on: odibi_core's own, and whatever reaches the root.

    Installed on the root logger's handlers (records of every logger pass them) and on the
    ``odibi_core`` loggers (for Python's last-resort handler when none is configured).
    """

    def __init__(self, scrub: Callable[[str], str]):
        super().__init__()
        self.scrub = scrub
        self._attached: list[logging.Filterer] = []

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem, not ours
            return True
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrub(text)
        return True

    def install(self) -> ScrubbingLogFilter:
        loggers = [
            logger
            for name, logger in list(logging.root.manager.loggerDict.items())
            if name.split(".")[0] == "odibi_core" and isinstance(logger, logging.Logger)
        ]
        for target in [*logging.root.handlers, *loggers]:
            target.addFilter(self)
            self._attached.append(target)
        with _ACTIVE_LOCK:
            _ACTIVE_FILTERS.append(self)
        guard_pyspark_loggers()
        return self

    def remove(self) -> None:
        for target in self._attached:
            target.removeFilter(self)
        self._attached.clear()
        with _ACTIVE_LOCK:
            if self in _ACTIVE_FILTERS:
                _ACTIVE_FILTERS.remove(self)


_ACTIVE_FILTERS: list[ScrubbingLogFilter] = []
_ACTIVE_LOCK = threading.Lock()
# PySpark logs each SQL error with its query context on loggers of their own, which do not
# propagate, from inside the exception's constructor: before any caller can scrub it.
_PYSPARK_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


class _ActiveRunsFilter(logging.Filter):
    """Applies the filters of every run in progress (a no-op when none is)."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _ACTIVE_LOCK:
            active = list(_ACTIVE_FILTERS)
        for run_filter in active:
            run_filter.filter(record)
        if active and record.exc_info:
            # The JSON formatter prints str(exception) unmasked; the message above has it.
            record.exc_info, record.exc_text = None, None
        return True


_PYSPARK_FILTER = _ActiveRunsFilter()


def guard_pyspark_loggers(*, starting_spark: bool = False) -> None:
    """Scrub PySpark's query-context loggers (idempotent).

    Imports pyspark only when ``starting_spark`` says Spark is about to be used anyway: a
    pandas-only run must not pay for it.
    """
    if not starting_spark and "pyspark" not in sys.modules:
        return
    from pyspark.logger import PySparkLogger

    for name in _PYSPARK_CONTEXT_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        if _PYSPARK_FILTER not in logger.filters:
            logger.addFilter(_PYSPARK_FILTER)
        # PySpark's own handler keeps the stderr of the moment the logger was made.
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                follower = CurrentStderrHandler()
                follower.setFormatter(handler.formatter)
                follower.setLevel(handler.level)
                logger.removeHandler(handler)
                logger.addHandler(follower)
