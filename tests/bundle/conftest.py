"""Shared pieces of the bundle tests: the example pipeline, and the wheel built once per
test session exactly as databricks.yml's artifact builds it."""

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from odibi_core.core.config import load_pipeline

EXAMPLE = "pipelines/customer_pipeline.yaml"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def example():
    return load_pipeline(EXAMPLE)


def artifact_command(wheel_dir: Path) -> list[str]:
    """databricks.yml's build command of the wheel, with its ``--wheel-dir dist`` pointed
    at ``wheel_dir`` (so the test writes nothing into the repository) and ``python`` the
    interpreter of this environment, as the CLI's would be (.venv)."""
    artifact = yaml.safe_load((ROOT / "databricks.yml").read_text())["artifacts"]
    argv = shlex.split(artifact["odibi_core_wheel"]["build"])
    assert argv == ["python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "dist", "."]
    return [sys.executable, *argv[1:6], str(wheel_dir), *argv[7:]]


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The wheel the bundle deploys: ``<tmp bundle root>/dist/odibi_core-*.whl``."""
    wheel_dir = tmp_path_factory.mktemp("bundle_root") / "dist"
    started = time.perf_counter()
    done = subprocess.run(
        artifact_command(wheel_dir), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = wheel_dir.glob("*.whl")
    print(f"built {wheel.name} in {time.perf_counter() - started:.1f}s")
    return wheel
