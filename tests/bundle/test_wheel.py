"""The wheel is what runs: built as the artifact builds it, it declares the entry point
every generated task calls, under the package name the tasks use, and it never caps the
runtime's pandas or pyarrow."""

import subprocess
import sys
import zipfile
from configparser import ConfigParser
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from odibi_core.bundle.jobs import ENTRY_POINT, PACKAGE_NAME, PYTHON_WHEEL


def dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [m for m in archive.namelist() if m.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


@pytest.fixture(scope="module")
def metadata(built_wheel):
    return Parser().parsestr(dist_info(built_wheel, "METADATA"))


def test_the_wheel_is_the_package_the_tasks_name(metadata, built_wheel):
    assert metadata["Name"] == PACKAGE_NAME == "odibi_core"
    assert built_wheel.name.startswith("odibi_core-")


def test_the_wheel_declares_the_entry_point_every_task_calls(built_wheel):
    entry_points = ConfigParser()
    entry_points.read_string(dist_info(built_wheel, "entry_points.txt"))
    assert ENTRY_POINT == "odibi-task"
    target = entry_points["console_scripts"][ENTRY_POINT]
    module, _, function = target.partition(":")
    assert (module, function) == ("odibi_core.cli", "task_main")
    # Imported from the wheel itself (zipimport), not from the source tree.
    probe = (
        f"import sys; sys.path.insert(0, {str(built_wheel)!r}); import {module} as m; "
        f"assert callable(m.{function}); print(m.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(built_wheel))


def test_runtime_dependencies_put_no_upper_bound_on_pandas_or_pyarrow(metadata):
    runtime = [Requirement(text) for text in metadata.get_all("Requires-Dist")]
    runtime = [r for r in runtime if r.marker is None or "extra" not in str(r.marker)]
    by_name = {r.name.lower(): r for r in runtime}
    for name in ("pandas", "pyarrow"):
        operators = {spec.operator for spec in by_name[name].specifier}
        assert operators and operators <= {">=", ">"}, f"{name}: {by_name[name].specifier}"


def test_the_job_wheel_paths_find_the_built_wheel(built_wheel):
    root = built_wheel.parent.parent  # the artifact builds into <bundle root>/dist
    # Python-defined jobs resolve from the bundle root; job files under resources/
    # (odibi bundle write) from their own folder.
    assert list(root.glob(PYTHON_WHEEL)) == [built_wheel]
    (root / "resources").mkdir(exist_ok=True)
    assert [p.resolve() for p in (root / "resources").glob("../dist/*.whl")] == [built_wheel]


def test_the_wheel_ships_the_pytest_plugin_and_the_init_templates(built_wheel):
    entry_points = ConfigParser()
    entry_points.read_string(dist_info(built_wheel, "entry_points.txt"))
    assert entry_points["pytest11"]["odibi_core"] == "odibi_core.testing.plugin"
    names = set(zipfile.ZipFile(built_wheel).namelist())
    assert "odibi_core/testing/plugin.py" in names
    assert "odibi_core/project/template/databricks.yml.tmpl" in names
