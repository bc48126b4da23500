"""Fixtures of the tests that resolve the Delta jars as a fresh machine would."""

from __future__ import annotations

from pathlib import Path

import pytest

from odibi_core.engine.delta_jars import ensure_delta_jars, ivy_dir


def _maven_repository_from(ivy_cache: Path, repo: Path) -> None:
    """Lay the Ivy cache out as a Maven repository: POMs copied, jars linked."""
    for module_dir in (d for org in ivy_cache.iterdir() if org.is_dir() for d in org.iterdir()):
        organisation, module = module_dir.parent.name, module_dir.name
        for original in module_dir.glob("ivy-*.xml.original"):
            revision = original.name.removeprefix("ivy-").removesuffix(".xml.original")
            target = repo.joinpath(*organisation.split("."), module, revision)
            target.mkdir(parents=True, exist_ok=True)
            (target / f"{module}-{revision}.pom").write_bytes(original.read_bytes())
            for jar in module_dir.glob(f"*s/{module}-{revision}*.jar"):
                if jar.name == f"{module}-{revision}.jar" or jar.stem.startswith(
                    f"{module}-{revision}-"
                ):
                    (target / jar.name).symlink_to(jar)


@pytest.fixture(scope="module")
def known_jars() -> list[str]:
    """The jars local Spark uses today (resolved once, from the network on a new machine)."""
    return ensure_delta_jars()["spark.jars"].split(",")


@pytest.fixture(scope="module")
def maven_repository(known_jars, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("maven")
    _maven_repository_from(ivy_dir() / "cache", repo)
    return repo


def fresh_machine(tmp_path: Path, monkeypatch, repository: str) -> None:
    """An empty odibi_core cache, an empty Ivy home, no ~/.m2, and the given repository."""
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ODIBI_IVY_DIR", str(tmp_path / "ivy"))
    monkeypatch.setenv("ODIBI_CLASS_ARCHIVE", "off")  # no background build into a temp cache
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEFAULT_ARTIFACT_REPOSITORY", repository)
