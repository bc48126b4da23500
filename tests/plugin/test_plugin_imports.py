"""Installing odibi_core without pyspark or pytest still imports it cleanly, and the plugin
that pytest loads in every session imports nothing heavy until a fixture is used."""

from __future__ import annotations

import subprocess
import sys

# A meta-path finder that makes the named top-level packages look uninstalled.
_HIDE = """
import sys
class _Hidden:
    def __init__(self, names): self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError("No module named " + repr(name), name=name)
        return None
sys.meta_path.insert(0, _Hidden(HIDDEN))
"""


def _python(hidden: set[str], code: str) -> subprocess.CompletedProcess:
    script = f"HIDDEN = {sorted(hidden)!r}\n" + _HIDE + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_odibi_core_and_its_cli_import_without_pyspark_or_pytest():
    done = _python(
        {"pyspark", "pytest", "_pytest", "chispa", "delta"},
        "import odibi_core, odibi_core.cli, odibi_core.testing, odibi_core.project\n"
        "from odibi_core.cli import main\n"
        "from odibi_core.project import create_project\n"
        "print('imported')\n"
        "try:\n    import pyspark\nexcept ModuleNotFoundError:\n    print('hidden')\n"
        "print(sorted(m for m in ('pyspark', 'pytest', 'pandas') if m in sys.modules))\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["imported", "hidden", "[]"]


def test_the_plugin_loads_without_pyspark_and_imports_nothing_heavy():
    done = _python(
        {"pyspark", "chispa", "delta"},
        "import odibi_core.testing.plugin as plugin\n"
        "print(sorted(m for m in ('pyspark', 'pandas', 'duckdb', 'odibi_core.orchestrator')"
        " if m in sys.modules))\n"
        "from odibi_core.testing import assert_frames_equal\n"
        "import pandas as pd\n"
        "assert_frames_equal(pd.DataFrame({'a': [2, 1]}), pd.DataFrame({'a': [1, 2]}))\n"
        "print('compared')\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "compared"]
