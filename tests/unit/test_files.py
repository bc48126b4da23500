"""The atomic write that lineage, metrics and reports share."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest

from odibi_core.core import files
from odibi_core.core.files import write_atomically, write_json_atomically


def test_a_write_creates_folders_and_a_shared_file(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"

    assert write_atomically(target, "héllo\n") == target

    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert os.listdir(target.parent) == ["out.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o600)

    write_atomically(target, "new")

    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failure_midway_leaves_the_old_file_intact(tmp_path, monkeypatch, failing):
    target = tmp_path / "lineage.json"
    target.write_text("previous run")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "x" * 10_000)

    assert target.read_text() == "previous run"
    assert os.listdir(tmp_path) == ["lineage.json"]


def test_an_interrupt_midway_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))

    with pytest.raises(KeyboardInterrupt):
        write_json_atomically(target, {"a": 1})

    assert os.listdir(tmp_path) == []


def test_json_is_indented_and_ends_with_a_newline(tmp_path):
    target = tmp_path / "m.json"
    write_json_atomically(target, {"when": tmp_path, "n": 1})

    text = target.read_text()
    assert text.endswith("}\n") and '\n  "n": 1' in text
    assert json.loads(text) == {"when": str(tmp_path), "n": 1}


@pytest.mark.parametrize("unsupported", ["fsync", "chmod", "replace"])
def test_a_file_system_without_rename_or_fsync_still_gets_the_file(
    tmp_path, monkeypatch, caplog, unsupported
):
    """Databricks workspace files and Volumes (FUSE) answer 'operation not supported'."""
    target = tmp_path / "lineage.json"
    target.write_text("old")

    def not_supported(*args):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(files.os, unsupported, not_supported)
    with caplog.at_level("WARNING", logger="odibi_core.core.files"):
        files.write_atomically(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["lineage.json"]  # no temp file left
    in_place = "writing it in place" in caplog.text
    assert in_place == (unsupported == "replace")
