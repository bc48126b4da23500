"""``odibi init``: the files of a new project, and that the framework accepts them.

The CLI runs in this process (``odibi_core.cli.main``); the generated tests run with
pytester in this process too, on pandas only (their Spark half runs in the slow test of
a fresh virtualenv, tests/init/test_fresh_venv.py).
"""

from __future__ import annotations

import pytest
import yaml

from odibi_core.cli import main

# pytester, registered by this module (a conftest below the root may not name plugins).
pytest_plugins = ["pytester"]

FILES = [
    ".gitignore",
    "README.md",
    "databricks.yml",
    "pipelines/daily_sales.yaml",
    "pipelines/generate_data.py",
    "pyproject.toml",
    "src/sales_demo/__init__.py",
    "tests/test_daily_sales.py",
]


@pytest.fixture
def project(tmp_path, capsys):
    target = tmp_path / "sales"
    assert main(["init", "sales-demo", "--dir", str(target)]) == 0
    assert "created sales-demo" in capsys.readouterr().out
    return target


def test_init_writes_the_project_files(project):
    written = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert written == FILES
    bundle = yaml.safe_load((project / "databricks.yml").read_text())
    assert bundle["bundle"]["name"] == "sales-demo"
    assert sorted(bundle["targets"]) == ["dev", "prod"]
    assert bundle["python"]["resources"] == ["odibi_core.bundle.resources:load_resources"]
    assert bundle["artifacts"]["sales_demo_wheel"]["dynamic_version"] is True
    assert {"catalog", "schema", "spark_version", "service_principal"} <= set(bundle["variables"])
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "sales-demo"
    assert pyproject["project"]["dependencies"] == ["odibi_core"]
    assert pyproject["project"]["optional-dependencies"]["dev"] == ["odibi_core[local,bundle]"]
    readme = (project / "README.md").read_text()
    assert "odibi run pipelines/daily_sales.yaml" in readme
    assert "python -m pytest" in readme
    assert "pipelines/data/" in (project / ".gitignore").read_text().splitlines()
    assert "main.sales_demo.daily_sales" in (project / "pipelines/daily_sales.yaml").read_text()


def test_validate_and_bundle_render_accept_the_project(project, monkeypatch, capsys):
    assert main(["validate", str(project / "pipelines" / "daily_sales.yaml")]) == 0
    assert "pipeline 'daily_sales' is valid: 3 steps" in capsys.readouterr().out
    monkeypatch.chdir(project / "pipelines")  # render finds the bundle root above
    assert main(["bundle", "render"]) == 0
    jobs = yaml.safe_load(capsys.readouterr().out)["resources"]["jobs"]
    assert list(jobs) == ["daily_sales"]
    tasks = jobs["daily_sales"]["tasks"]
    assert [t["task_key"] for t in tasks][0] == "read_orders"
    wheel_task = tasks[0]["python_wheel_task"]
    assert wheel_task["package_name"] == "odibi_core"
    assert "${workspace.file_path}/pipelines/daily_sales.yaml" in wheel_task["parameters"]


def test_init_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", "demo", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path}' already exists and is not empty" in err
    assert "never overwrites" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_init_refuses_a_name_that_is_no_project_name(tmp_path, capsys):
    assert main(["init", "1 bad name", "--dir", str(tmp_path / "x")]) == 2
    assert "'1 bad name' is not a project name" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_generated_tests_pass_on_pandas(pytester, run_generated):
    assert main(["init", "demo", "--dir", str(pytester.path / "demo")]) == 0
    result = run_generated(str(pytester.path / "demo" / "tests"), "-m", "not spark", "-v")
    result.stdout.fnmatch_lines(
        [
            "*test_daily_totals_counts_and_sums_each_day?pandas? PASSED*",
            "*test_the_pipeline_up_to_its_table PASSED*",
        ]
    )
    result.assert_outcomes(passed=2, deselected=1)
