"""Log handlers follow sys.stderr as it is when a record is written: a stream swapped out
and closed since (a notebook cell, a capture) never makes logging print a traceback, which
would carry the exception being handled with the values its record had masked."""

from __future__ import annotations

import contextlib
import io
import logging

from odibi_core.engine.log_scrubbing import CurrentStderrHandler, guard_pyspark_loggers

SECRET = "ada@example.com"


def _log_while_handling_an_error(logger: logging.Logger) -> None:
    try:
        raise ValueError(f"The value '{SECRET}' cannot be cast")
    except ValueError:
        logger.error("a cast failed; the value is masked in this message")


def test_pysparks_context_loggers_write_to_the_stderr_of_the_moment(capsys):
    from pyspark.logger import PySparkLogger

    name = "SQLQueryContextLogger"
    logger = PySparkLogger.getLogger(name)
    # PySpark's handler binds the stream of the moment it is made; make it bind one that
    # is then closed, as a test's capture or a notebook cell's redirect is.
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    gone = io.StringIO()
    with contextlib.redirect_stderr(gone):
        logger.addHandler(logging.StreamHandler())
    gone.close()

    guard_pyspark_loggers(starting_spark=True)
    _log_while_handling_an_error(logger)

    err = capsys.readouterr().err
    assert "a cast failed; the value is masked in this message" in err
    assert "Logging error" not in err and SECRET not in err
    assert [type(h) for h in logger.handlers] == [CurrentStderrHandler]
    guard_pyspark_loggers(starting_spark=True)  # idempotent
    assert [type(h) for h in logger.handlers] == [CurrentStderrHandler]


def test_a_record_that_cannot_be_written_is_one_line_without_the_traceback(capfd):
    logger = logging.getLogger("odibi_core.tests.log_streams")
    logger.propagate = False
    handler = CurrentStderrHandler()
    logger.addHandler(handler)
    try:
        closed = io.StringIO()
        closed.close()
        with contextlib.redirect_stderr(closed):
            _log_while_handling_an_error(logger)
    finally:
        logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert err == (
        "odibi: a log record of odibi_core.tests.log_streams could not be written (ValueError)\n"
    )
