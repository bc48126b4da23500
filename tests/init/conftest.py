"""Generated projects' tests run in this process, as the plugin's tests run theirs."""

from __future__ import annotations

from tests.plugin.conftest import _keep_imports, run_generated  # noqa: F401 - fixtures
