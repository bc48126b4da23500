"""A new project on a fresh virtualenv: ``odibi init demo``, then the generated README's two
commands (make the data and run the example; run the tests) pass.

The venv gets this checkout of odibi_core as a wheel (built here, installed without
dependencies); its dependencies (pandas, pyspark, delta-spark, pytest, chispa) are those
of this repository's .venv, made visible through a path file, since installing them
from the network would take most of the test and is not what is tested.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_COMMANDS = re.compile(r"## The two commands\s*```bash\n(?P<block>.*?)```", re.DOTALL)


def _run(args, *, cwd, env, timeout=900) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _fresh_venv(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
        env=os.environ.copy(),
    ).stdout.strip()
    # After the venv's own packages: the dependencies installed in this repository's .venv.
    Path(site, "zz_odibi_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ODIBI_", "SPARK_", "PYTEST"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    return venv, env


@pytest.mark.slow  # a wheel build, a venv, and two processes that each start Spark
def test_a_new_project_runs_its_readme_commands_on_a_fresh_venv(tmp_path):
    venv, env = _fresh_venv(tmp_path)
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        cwd=tmp_path,
        env=env,
    )
    wheel = next(wheels.glob("odibi_core-*.whl"))
    _run(["pip", "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path, env=env)
    where = _run(
        ["python", "-c", "import odibi_core; print(odibi_core.__file__)"], cwd=tmp_path, env=env
    ).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel's odibi_core, not the checkout's

    _run(["odibi", "init", "demo"], cwd=tmp_path, env=env)
    project = tmp_path / "demo"
    block = _COMMANDS.search((project / "README.md").read_text()).group("block")
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    ran = [_run(["bash", "-c", command], cwd=project, env=env) for command in commands]
    assert "daily_sales" in ran[0].stdout + ran[0].stderr
    assert re.search(r"\b3 passed\b", ran[1].stdout), ran[1].stdout
    assert (project / "pipelines" / "data" / "orders.csv").is_file()
    table = project / ".odibi" / "warehouse" / "main" / "demo" / "daily_sales"
    assert (table / "_delta_log").is_dir(), sorted(p.name for p in project.rglob("*"))
