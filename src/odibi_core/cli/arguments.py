"""What every command shares: exit codes and ``--param KEY=VALUE`` parsing."""

from __future__ import annotations

from odibi_core.core.errors import PipelineConfigError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PipelineConfigError(
                f"--param {pair!r} must be KEY=VALUE, e.g. --param run_date=2024-05-01"
            )
        params[key.strip()] = value
    return params
