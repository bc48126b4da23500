"""`odibi run` as a user drives it: exit codes, parameters, rerun hints, live progress."""

import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def odibi(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "odibi_core.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def read_written_csv(path: Path) -> pd.DataFrame:
    """Both engines write a csv target as a folder of part files, as Spark does."""
    return pd.concat(pd.read_csv(part) for part in sorted(path.glob("part-*.csv")))


def write_pipeline(folder: Path, text: str) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


PARAM_PIPELINE = """
pipeline: daily
parameters: {run_date: null}
steps:
  - {layer: ingest, name: read, value: "data/${params.run_date}/events.csv", outputs: {data: raw}}
  - layer: transform
    name: of_day
    value: "SELECT id, day FROM raw WHERE day = '${params.run_date}'"
    inputs: {raw: raw}
    outputs: {data: day_rows}
  - {layer: store, name: save, value: "out/${params.run_date}.csv", inputs: {data: day_rows}}
"""


def test_param_in_path_and_sql(tmp_path):
    day = tmp_path / "data" / "2024-05-01"
    day.mkdir(parents=True)
    pd.DataFrame({"id": [1, 2, 3], "day": ["2024-05-01", "2024-04-30", "2024-05-01"]}).to_csv(
        day / "events.csv", index=False
    )
    path = write_pipeline(tmp_path, PARAM_PIPELINE)
    out = odibi(
        "run",
        str(path),
        "--param",
        "run_date=2024-05-01",
        "--no-state",
        "--quiet",
        "--lineage",
        "lineage.json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    written = read_written_csv(tmp_path / "out" / "2024-05-01.csv")
    assert list(written["id"]) == [1, 3]
    lineage = json.loads((tmp_path / "lineage.json").read_text())
    assert [s["after_snapshot"]["row_count"] for s in lineage["steps"]] == [3, 2, 2]

    missing = odibi("run", str(path), "--no-state", "--quiet", cwd=tmp_path)
    assert missing.returncode == 2
    assert (
        "parameter 'run_date' has no default and was not given; pass --param run_date=VALUE"
        in missing.stderr
    )
    assert "Traceback" not in missing.stderr


FAILING_PIPELINE = """
pipeline: breaks
steps:
  - {layer: ingest, name: read, value: data.csv, outputs: {data: raw}}
  - {layer: transform, name: middle, type: function, value: "tests.funcs:explode", inputs: {data: raw}, outputs: {data: mid}}
  - {layer: store, name: save_mid, value: out/mid.csv, inputs: {data: mid}}
  - {layer: transform, name: other, value: "SELECT COUNT(*) AS n FROM raw", inputs: {raw: raw}, outputs: {data: counted}}
  - {layer: store, name: save_other, value: out/other.csv, inputs: {data: counted}}
"""


def test_failing_middle_step_exit_code_and_rerun_hint(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "data.csv", index=False)
    path = write_pipeline(tmp_path, FAILING_PIPELINE)
    out = odibi("run", str(path), "--no-state", "--quiet", cwd=tmp_path)
    assert out.returncode == 1
    # The user's own line comes first (absolute here: tests/funcs.py is outside the cwd).
    assert re.search(
        r"middle FAILED: /\S*tests/funcs\.py, line \d+, in explode: "
        r"ValueError: the middle step broke on purpose",
        out.stderr,
    )
    assert "save_mid SKIPPED" in out.stderr
    assert read_written_csv(tmp_path / "out" / "other.csv")["n"].tolist() == [2]
    run_id = re.search(r"run (\S+) failed: step 'middle' failed", out.stderr).group(1)
    assert f"rerun what failed with:\n  odibi run {path} --resume {run_id}" in out.stderr
    assert "Traceback" not in out.stderr


def test_config_error_exits_2_without_traceback(tmp_path):
    path = write_pipeline(
        tmp_path,
        "pipeline: p\nsteps:\n  - {layer: ingest, name: a, value: x.csv, outputs: {data: a}}\n  - {layer: store, name: s, value: y.csv, inputs: {data: b}}\n",
    )
    out = odibi("run", str(path), "--no-state", cwd=tmp_path)
    assert (
        out.returncode == 2
        and "reads 'b', which no step produces" in out.stderr
        and "Traceback" not in out.stderr
    )
    debug = odibi("--debug", "run", str(path), "--no-state", cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_live_progress_on_a_terminal_shows_each_final_state(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "data.csv", index=False)
    path = write_pipeline(tmp_path, FAILING_PIPELINE)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS="160", LINES="50")
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "odibi_core.cli", "run", str(path), "--no-state"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=tmp_path,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 1
    assert "\x1b[" in screen  # a live, styled terminal view
    assert "✔" in screen and "✖" in screen and "–" in screen  # the live view's state icons
    final = screen.split("\n")
    for name, state in (
        ("read", "SUCCESS"),
        ("middle", "FAILED"),
        ("save_mid", "SKIPPED"),
        ("other", "SUCCESS"),
        ("save_other", "SUCCESS"),
    ):
        assert any(name in line and state in line for line in final), (name, state)


def test_rerun_hint_keeps_options_and_cancelled_steps(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "data.csv", index=False)
    path = write_pipeline(tmp_path, FAILING_PIPELINE)
    out = odibi(
        "run",
        str(path),
        "--no-state",
        "--quiet",
        "--fail-fast",
        "--max-workers",
        "1",
        "--engine",
        "pandas",
        cwd=tmp_path,
    )
    assert out.returncode == 1
    hint = out.stderr.strip().splitlines()[-1].strip()
    # With one worker, 'other' had not started when 'middle' failed: fail_fast cancelled it.
    # The resume runs it too: it runs every step that did not finish, with the same options.
    assert "other SKIPPED" in out.stderr
    run_id = re.search(r"run (\S+) failed:", out.stderr).group(1)
    assert hint == (
        f"odibi run {path} --resume {run_id} --engine pandas --max-workers 1 --no-state"
    )


def test_unwritable_lineage_path_is_one_message(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "data.csv", index=False)
    path = write_pipeline(
        tmp_path,
        "pipeline: p\nsteps:\n  - {layer: ingest, name: read, value: data.csv, outputs: {data: raw}}\n",
    )
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = odibi(
        "run",
        str(path),
        "--no-state",
        "--quiet",
        "--lineage",
        str(tmp_path / "blocker" / "l.json"),
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert f"error: could not write the lineage to {tmp_path / 'blocker' / 'l.json'}" in out.stderr
    assert "Traceback" not in out.stderr


def test_ctrl_c_stops_the_run_at_once(tmp_path):
    import signal
    import time

    path = write_pipeline(
        tmp_path,
        """
        pipeline: slow
        steps:
          - {layer: transform, name: long, type: function, value: "tests.funcs:sleep_then_rows", params: {seconds: 30}, outputs: {data: a}}
          - {layer: transform, name: after, value: "SELECT * FROM a", inputs: {a: a}, outputs: {data: b}}
    """,
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "odibi_core.cli", "run", str(path), "--no-state", "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    seen = ""
    while "long RUNNING" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert time.monotonic() - interrupted < 5
    assert "interrupted: no new step was started" in err
