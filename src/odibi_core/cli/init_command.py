"""``odibi init NAME [--dir PATH]``: start a new project (bundle, pipelines, tests).

Writes databricks.yml, pyproject.toml, pipelines/ with an example pipeline and its data
generator, tests/ using odibi_core's pytest plugin, a README and .gitignore. A folder that
exists and is not empty is refused (exit 2): nothing is ever overwritten.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_EXIT_OK, _EXIT_CONFIG = 0, 2


def add_init_parser(subparsers: Any) -> None:
    """Register ``odibi init`` on the ``odibi`` subparsers."""
    init = subparsers.add_parser(
        "init", help="create a new project: bundle, example pipeline and its tests"
    )
    init.add_argument("name", help="the project's name (letters, digits, '-', '_')")
    init.add_argument("--dir", help="where to create it (default: ./NAME); must be new or empty")
    init.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from odibi_core.core.errors import OdibiError
    from odibi_core.project import create_project

    try:
        files = create_project(args.name, args.dir)
    except OdibiError as exc:
        print(f"odibi init: {exc}", file=sys.stderr)
        return _EXIT_CONFIG
    folder = args.dir or args.name
    print(f"created {args.name} in {folder}/ ({len(files)} files)")
    print(
        f"next: cd {folder} && python -m venv .venv && . .venv/bin/activate && "
        'pip install -e ".[dev]"\n'
        "then: python pipelines/generate_data.py && odibi run pipelines/daily_sales.yaml "
        "--no-state\n"
        "and:  python -m pytest"
    )
    return _EXIT_OK
