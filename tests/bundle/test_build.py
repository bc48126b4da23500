"""databricks.yml's python: section, loaded the way the Databricks CLI loads it."""

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from odibi_core.bundle.jobs import BundleVariables
from odibi_core.bundle.tasks import RECORD_RUN_TASK, plan_tasks

ROOT = Path(__file__).resolve().parents[2]


def cli_input(target: str, given: dict | None = None) -> dict:
    """What the CLI writes to the build's --input: databricks.yml with the target merged
    in (its variables resolved to values; every one must have one) and the included job
    files' resources. The Databricks CLI cannot be installed here, so this builds it from
    databricks.yml with yaml, the way the CLI's own config loader shapes it."""
    config = yaml.safe_load((ROOT / "databricks.yml").read_text())
    chosen = config.pop("targets")[target]
    overrides = {**chosen.get("variables", {}), **(given or {})}
    variables = {}
    for name, spec in config.get("variables", {}).items():
        value = overrides.get(name, spec.get("default"))
        assert value is not None, f"variable {name} has no value in target {target}"
        variables[name] = {**spec, "value": value}
    config["variables"] = variables
    config["bundle"] = {**config["bundle"], "target": target, "mode": chosen.get("mode")}
    for pattern in config.get("include", []):
        for path in sorted(ROOT.glob(pattern)):
            included = yaml.safe_load(path.read_text()) or {}
            for kind, named in (included.get("resources") or {}).items():
                config.setdefault("resources", {}).setdefault(kind, {}).update(named)
    return config


def run_build(tmp_path: Path, config: dict) -> tuple[int, dict, list[dict], list[dict], str]:
    """``python -m databricks.bundles.build`` as the CLI (0.275.0 or newer) calls it: in
    the bundle root, with the phase and the four files."""
    files = {name: tmp_path / f"{name}.json" for name in ("input", "output", "diag", "loc")}
    files["input"].write_text(json.dumps(config))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "databricks.bundles.build",
            "--phase",
            "load_resources",
            "--input",
            str(files["input"]),
            "--output",
            str(files["output"]),
            "--diagnostics",
            str(files["diag"]),
            "--locations",
            str(files["loc"]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    def lines(path):
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    output = json.loads(files["output"].read_text())
    return done.returncode, output, lines(files["diag"]), lines(files["loc"]), done.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory, example):
    return run_build(tmp_path_factory.mktemp("build"), cli_input("dev"))


def test_the_build_loads_the_example_pipelines_job_without_errors(built, example):
    code, output, diagnostics, _, stderr = built
    assert [d for d in diagnostics if d.get("severity") == "error"] == [], stderr
    assert code == 0, stderr
    job = output["resources"]["jobs"]["customer_pipeline"]
    assert [t["task_key"] for t in job["tasks"]] == [spec.key for spec in plan_tasks(example)] + [
        RECORD_RUN_TASK
    ]
    assert job["tags"] == {
        "odibi_pipeline": "customer_pipeline",
        "odibi_target": "${bundle.target}",
    }
    assert job["tasks"][0]["libraries"] == [{"whl": "dist/*.whl"}]


def test_the_jobs_location_is_databricks_yml_at_the_bundle_root(built):
    _, _, _, locations, _ = built
    job = [loc for loc in locations if loc["path"] == "resources.jobs.customer_pipeline"]
    assert job == [
        {
            "path": "resources.jobs.customer_pipeline",
            "file": "databricks.yml",
            "line": 1,
            "column": 1,
        }
    ]


def test_every_variable_the_job_uses_is_declared_with_a_value(built):
    _, output, _, _, _ = built
    used = set(re.findall(r"\$\{var\.(\w+)\}", json.dumps(output["resources"])))
    assert used == {
        "catalog",
        "schema",
        "spark_version",
        "node_type_id",
        "min_workers",
        "max_workers",
    }
    assert used <= set(output["variables"])


def test_every_variable_a_job_may_use_has_a_default():
    declared = yaml.safe_load((ROOT / "databricks.yml").read_text())["variables"]
    for field in fields(BundleVariables):
        assert declared[field.name].get("default") is not None, field.name


def test_prod_runs_as_the_service_principal_under_a_shared_root():
    prod = yaml.safe_load((ROOT / "databricks.yml").read_text())["targets"]["prod"]
    assert prod["mode"] == "production"
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal}"}
    assert (
        prod["workspace"]["root_path"]
        == "/Workspace/Shared/.bundle/${bundle.name}/${bundle.target}"
    )
    assert {"service_principal_name": "${var.service_principal}", "level": "CAN_MANAGE"} in prod[
        "permissions"
    ]
    with pytest.raises(AssertionError, match="service_principal has no value in target prod"):
        cli_input("prod")  # the CLI too refuses a prod deploy without --var service_principal


def test_the_python_section_and_the_artifact(tmp_path):
    config = yaml.safe_load((ROOT / "databricks.yml").read_text())
    assert config["python"] == {
        "venv_path": ".venv",
        "resources": ["odibi_core.bundle.resources:load_resources"],
    }
    artifact = config["artifacts"]["odibi_core_wheel"]
    assert artifact["dynamic_version"] is True
    assert artifact["build"] == "python -m pip wheel --no-deps --wheel-dir dist ."
    assert config["include"] == ["resources/*.yml"]
