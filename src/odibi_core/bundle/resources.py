"""The bundle's jobs, one per pipeline file: what databricks.yml's ``python:`` section loads.

``databricks.yml`` names ``odibi_core.bundle.resources:load_resources``; the Databricks CLI
(0.275.0 or newer) runs it through ``python -m databricks.bundles.build`` in the bundle
root, so a new file under ``pipelines/`` becomes a job with no YAML. A pipeline file is a
``.yaml``, ``.yml`` or ``.json`` file directly in ``pipelines/`` whose top level has
``pipeline`` or ``steps`` (or that does not parse, so its error is reported); anything
else there (scripts such as ``generate_data.py``, data, files in sub-folders such as
``pipelines/data/``) is not one and is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from databricks.bundles.core import Bundle, Location, Resources
from databricks.bundles.jobs import Job

from odibi_core.bundle.jobs import PYTHON_WHEEL, job_for
from odibi_core.core.config import load_pipeline
from odibi_core.core.errors import OdibiError, PipelineConfigError

__all__ = [
    "PIPELINES_DIR",
    "bundle_jobs",
    "bundle_root",
    "job_file_name",
    "job_key",
    "load_resources",
    "pipeline_files",
]

PIPELINES_DIR = "pipelines"
BUNDLE_FILES = ("databricks.yml", "databricks.yaml")
JOB_FILES_DIR = "resources"  # where `odibi bundle write` puts job files
_SUFFIXES = (".yaml", ".yml", ".json")


def load_resources(bundle: Bundle | None = None) -> Resources:
    """One job per pipeline file, for the Databricks CLI.

    A pipeline that fails to load is an error diagnostic naming its file; the others
    still load, so one deploy reports every broken pipeline. A pipeline whose job file
    ``odibi bundle write`` wrote to resources/ is left to that file (databricks.yml
    includes it; defining the job twice would be an error).
    """
    root = Path.cwd()  # the CLI runs the loader in the bundle root
    resources = Resources()
    where = Location(file=_bundle_file(root), line=1, column=1)
    for path in pipeline_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            key, job = _job_of(path, root, PYTHON_WHEEL)
        except OdibiError as exc:
            resources.add_diagnostic_error(
                f"pipeline {relative} is not a job: {_message(exc)}",
                location=Location(file=relative, line=1, column=1),
            )
            continue
        written = root / JOB_FILES_DIR / job_file_name(key)
        if written.exists():
            resources.add_diagnostic_warning(
                f"job '{key}' of {relative} comes from {written.relative_to(root).as_posix()} "
                "(written by odibi bundle write); delete that file to generate it from the pipeline",
                location=Location(file=relative, line=1, column=1),
            )
            continue
        # The job's location is databricks.yml, so its relative paths (the wheel) resolve
        # from the bundle root whichever location the CLI gives them.
        resources.add_job(key, job, location=where)
    return resources


def bundle_jobs(
    root: Path, paths: Iterable[Path] | None = None, *, wheel: str = PYTHON_WHEEL
) -> dict[str, Job]:
    """Job key -> job of each pipeline file (all of ``pipelines/`` when ``paths`` is None).

    Raises ``PipelineConfigError`` listing every pipeline that cannot become a job.
    """
    chosen = pipeline_files(root) if paths is None else [Path(p) for p in paths]
    jobs: dict[str, Job] = {}
    files: dict[str, Path] = {}
    problems: list[str] = []
    for path in chosen:
        try:
            key, job = _job_of(path, root, wheel)
        except OdibiError as exc:
            problems.append(f"{path}: {_message(exc)}")
            continue
        if key in jobs:
            problems.append(
                f"{path}: pipeline name gives job key '{key}', as {files[key]} does; "
                "give one of them another 'pipeline:' name"
            )
            continue
        jobs[key], files[key] = job, path
    if problems:
        raise PipelineConfigError(problems)
    return jobs


def pipeline_files(root: Path) -> list[Path]:
    """The pipeline files directly under ``<root>/pipelines``, sorted by name."""
    folder = root / PIPELINES_DIR
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in _SUFFIXES and _names_a_pipeline(path)
    )


def bundle_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding databricks.yml (else ``start``)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in BUNDLE_FILES):
            return folder
    return start


def job_key(pipeline_name: str) -> str:
    """The job's resource key: the pipeline name in letters, digits and ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", pipeline_name) or "pipeline"


def job_file_name(key: str) -> str:
    return f"{key}.job.yml"


def _job_of(path: Path, root: Path, wheel: str) -> tuple[str, Job]:
    config = load_pipeline(path)
    relative = _inside(path, root)
    return job_key(config.name), job_for(config, pipeline_path=relative, wheel=wheel)


def _inside(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise PipelineConfigError(
            f"{path} is outside the bundle root {root}: the bundle deploys only the files "
            "under its root; move the pipeline into pipelines/"
        ) from None


def _names_a_pipeline(path: Path) -> bool:
    """A cheap look at the top level: a mapping with ``pipeline`` or ``steps`` is one. A
    file that does not parse counts as one too, so its error is reported, not skipped."""
    try:
        text = path.read_text()
        raw: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError):
        return True
    except OSError:
        return False
    return isinstance(raw, Mapping) and ("pipeline" in raw or "steps" in raw)


def _bundle_file(root: Path) -> str:
    return next((name for name in BUNDLE_FILES if (root / name).is_file()), BUNDLE_FILES[0])


def _message(exc: OdibiError) -> str:
    problems = getattr(exc, "problems", None)
    return "; ".join(problems) if problems else str(exc)
