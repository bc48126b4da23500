"""``odibi init``: a new project from the templates shipped in the package.

The templates under ``template/`` are package data: ``NAME.tmpl`` becomes ``NAME``,
``gitignore`` becomes ``.gitignore``, the folder ``src/package`` becomes ``src/<package>``.
They are rendered with ``string.Template`` and the delimiter ``@@`` (``@@name``,
``@@package``), so ``${var.x}`` in databricks.yml is left for the Databricks CLI. Nothing
is fetched: init works offline.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from odibi_core.core.errors import OdibiError

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SUFFIX = ".tmpl"
_RENAMED = {"gitignore": ".gitignore"}


class ProjectExistsError(OdibiError):
    """The target folder exists and is not empty: init never overwrites anything."""


class _Template(string.Template):
    delimiter = "@@"


@dataclass(frozen=True)
class ProjectSpec:
    """What the templates are filled with."""

    name: str  # the project (and bundle) name, as given
    package: str  # its Python package: lower case, ``_`` for ``-``

    @classmethod
    def of(cls, name: str) -> ProjectSpec:
        if not _NAME.fullmatch(name or ""):
            raise OdibiError(
                f"'{name}' is not a project name; use letters, digits, '-' and '_', "
                "starting with a letter, e.g. odibi init sales_pipelines"
            )
        return cls(name=name, package=name.lower().replace("-", "_"))


def create_project(name: str, directory: str | Path | None = None) -> list[Path]:
    """Write the new project into ``directory`` (default ``./NAME``); its files, sorted.

    Raises ``ProjectExistsError`` when the folder exists with anything in it.
    """
    spec = ProjectSpec.of(name)
    target = Path(directory) if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectExistsError(
            f"'{target}' already exists and is not empty; odibi init never overwrites files: "
            "give a new folder with --dir, or empty this one"
        )
    rendered = {  # every template rendered before the first file is written
        target / _target_path(relative, spec): _Template(
            source.read_text(encoding="utf-8")
        ).substitute(name=spec.name, package=spec.package)
        for relative, source in _templates(resources.files(__package__) / "template")
    }
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(rendered)


def _templates(folder: Any, prefix: tuple[str, ...] = ()):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _templates(entry, (*prefix, entry.name))
        elif entry.name.endswith(_SUFFIX):
            yield (*prefix, entry.name), entry


def _target_path(relative: tuple[str, ...], spec: ProjectSpec) -> Path:
    *folders, file = relative
    folders = [
        spec.package if (i and folders[i - 1] == "src" and f == "package") else f
        for i, f in enumerate(folders)
    ]
    file = file[: -len(_SUFFIX)]
    return Path(*folders, _RENAMED.get(file, file))
