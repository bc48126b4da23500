import subprocess
import sys
from pathlib import Path

from tests.unit.test_config import FIVE_MISTAKES, VALID

ODIBI = [sys.executable, "-m", "odibi_core.cli"]


def run(*args, cwd=None):
    return subprocess.run([*ODIBI, *args], capture_output=True, text=True, cwd=cwd)


def test_validate_prints_all_five_mistakes_and_exits_2(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(FIVE_MISTAKES)
    out = run("validate", str(path))
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 6
    assert all("bad.yaml, line" in line for line in lines)
    assert "Traceback" not in out.stderr


def test_validate_a_valid_file_exits_0_with_summary(tmp_path: Path):
    path = tmp_path / "good.yaml"
    path.write_text(VALID)
    out = run("validate", str(path))
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.strip()
        == f"{path}: pipeline 'customers' is valid: 4 steps, 3 levels, default engine auto"
    )


def test_dag_by_level_and_mermaid(tmp_path: Path):
    path = tmp_path / "good.yaml"
    path.write_text(VALID)
    out = run("dag", str(path))
    assert out.returncode == 0
    assert "level 0:\n  read_customers [ingest]" in out.stdout
    assert (
        "level 1:\n  join_all [transform]  reads: raw_orders, raw_customers  writes: joined"
        in out.stdout
    )
    mermaid = run("dag", str(path), "--mermaid")
    assert mermaid.stdout.startswith("flowchart LR") and mermaid.stdout.count("-->") == 3


def test_missing_file_is_one_clear_message(tmp_path: Path):
    out = run("validate", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert "pipeline file not found" in out.stderr and "Traceback" not in out.stderr


def test_an_interrupt_hidden_behind_a_lock_error_still_exits_130_at_once(tmp_path):
    """Ctrl-C landing inside ``Condition.wait`` surfaces as a RuntimeError whose context is
    the KeyboardInterrupt; the CLI must still exit 130 without waiting on step threads."""
    import subprocess
    import sys
    import textwrap
    import time

    script = textwrap.dedent(
        """
        import threading, time
        from odibi_core import cli

        def hidden_interrupt(args):
            threading.Thread(target=time.sleep, args=(60,)).start()  # a step still running
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise RuntimeError("cannot release un-acquired lock")

        cli._cmd_validate = hidden_interrupt
        cli.main(["validate", "pipeline.yaml"])
        """
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 130, proc.stderr
    assert "interrupted: no new step was started" in proc.stderr
    assert time.monotonic() - started < 20


def test_an_error_without_an_interrupt_behind_it_is_not_taken_for_one():
    from odibi_core.cli import _interrupt_in_chain

    try:
        try:
            raise ValueError("first")
        except ValueError:
            raise RuntimeError("second")  # noqa: B904 - an implicit context, as Python makes it
    except RuntimeError as exc:
        assert _interrupt_in_chain(exc) is None
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("cannot release un-acquired lock")  # noqa: B904 - as Python raises it
    except RuntimeError as exc:
        assert isinstance(_interrupt_in_chain(exc), KeyboardInterrupt)
