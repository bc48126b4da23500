"""Helpers of the reliability tests: run the CLI in process or as a real process, and take
a file listing that shows whether anything was written."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from odibi_core.cli import main

REPO = Path(__file__).resolve().parents[2]
Listing = dict[str, tuple[int, int]]


def listing(root: Path) -> Listing:
    """Every file under ``root`` (relative path -> size, mtime in ns); bytecode caches left out."""
    found: Listing = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = Path(folder, name)
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def delta_versions(table: Path) -> list[str]:
    """The commit files of a path-based Delta table (empty when there is no table)."""
    return sorted(p.name for p in (table / "_delta_log").glob("*.json"))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``odibi ARGV`` in this process: (exit code, stdout, stderr). argparse's exit counts."""
    capsys.readouterr()
    _log_to_current_stderr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects bad arguments by exiting
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _log_to_current_stderr() -> None:
    """Point log handlers still bound to an earlier test's captured (now closed) stderr at
    the current one: the CLI's ``basicConfig`` and PySpark's own loggers bind their stream
    once, and a real process has one stderr for its whole life."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler and getattr(handler.stream, "closed", False):
                handler.stream = sys.stderr


def odibi_process(
    argv: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """``python -m odibi_core.cli ARGV`` as a real process (its own session: signals reach
    only it and its JVM), with this checkout's sources first on the path."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO / "src"), environment.get("PYTHONPATH")])
    )
    if "ODIBI_FAULT" not in (env or {}):
        environment.pop("ODIBI_FAULT", None)  # a fault is only ever armed on purpose
    return subprocess.Popen(
        [sys.executable, "-m", "odibi_core.cli", *argv],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def run_process() -> Callable[..., tuple[int, str, str]]:
    """Run ``odibi`` as a real process to its end: (exit code, stdout, stderr)."""

    def run(argv: list[str], cwd: Path, *, env=None, timeout: float = 600):
        process = odibi_process(argv, cwd, env=env)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            out, err = process.communicate()
            raise AssertionError(f"odibi {argv} did not end in {timeout} s:\n{err}") from None
        return process.returncode, out, err

    return run
