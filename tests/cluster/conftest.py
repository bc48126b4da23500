"""Fixtures of the cluster tests: a Spark standalone cluster on 127.0.0.1, and the wheel the
bundle deploys installed into a virtual environment of its own. Each starts only when a
test asks for it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.bundle.conftest import built_wheel  # noqa: F401 - the wheel, built once per session
from tests.cluster.standalone import StandaloneCluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory):
    """One master and two 1-core workers; stopped by their process ids at the end."""
    started = time.perf_counter()
    with StandaloneCluster(tmp_path_factory.mktemp("standalone")) as cluster:
        print(f"standalone cluster {cluster.url} up in {time.perf_counter() - started:.1f}s")
        yield cluster


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory, built_wheel) -> Path:  # noqa: F811 - the imported fixture
    """A fresh virtual environment with the built wheel installed (``--no-deps``) on top of
    this environment's packages; the path of its ``python``.

    ``python -m venv --system-site-packages`` run from this environment's interpreter would
    take the *base* interpreter's site packages (pyenv's), not this environment's. So the
    venv is created without them, and a ``.pth`` file puts this environment's
    site-packages folder on its path as a plain entry: the ``.pth`` files in that folder,
    the editable install's (``/work/main/src``) among them, are not processed, so the
    repository's sources cannot shadow the installed wheel. The venv's own site-packages
    come first on its path, so the wheel's ``odibi_core`` is the one imported.
    """
    venv = tmp_path_factory.mktemp("wheel_env") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]))
    (site / "_odibi_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = ["install", "--no-deps", "--force-reinstall", "--no-index", str(built_wheel)]
    _run([python, "-m", "pip", *install])
    return python


def _run(argv) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}{done.stderr}"
    return done.stdout.strip()
