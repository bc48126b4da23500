"""The ``odibi`` command.

Exit codes: 0 success, 1 pipeline failure, 2 configuration error. A user's mistake is
one clear message; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from odibi_core.errors import OdibiError, PipelineConfigError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except PipelineConfigError as exc:
        if args.debug:
            raise
        _print_config_error(exc)
        return EXIT_CONFIG
    except OdibiError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _print_config_error(exc: PipelineConfigError) -> None:
    for problem in exc.problems:
        print(f"error: {problem}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odibi", description="Run and inspect odibi_core pipelines."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check a pipeline file and report every problem"
    )
    validate.add_argument("pipeline", help="path to a pipeline .yaml or .json file")
    validate.set_defaults(handler=_cmd_validate)

    dag = commands.add_parser("dag", help="print a pipeline's DAG by level, or as Mermaid")
    dag.add_argument("pipeline")
    dag.add_argument("--mermaid", action="store_true", help="print Mermaid flowchart text")
    dag.set_defaults(handler=_cmd_dag)

    for register in _EXTRA_COMMANDS:
        register(commands)
    for sub in commands.choices.values():
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _cmd_validate(args) -> int:
    from odibi_core.config import load_pipeline
    from odibi_core.dag import DAGBuilder

    config = load_pipeline(args.pipeline)
    dag = DAGBuilder(config.steps).build()
    print(
        f"{args.pipeline}: pipeline '{config.name}' is valid: "
        f"{len(config.steps)} steps, {len(dag.levels())} levels, default engine {config.engine}"
    )
    return EXIT_OK


def _cmd_dag(args) -> int:
    from odibi_core.config import load_pipeline
    from odibi_core.dag import DAGBuilder

    config = load_pipeline(args.pipeline)
    dag = DAGBuilder(config.steps).build()
    if args.mermaid:
        print(dag.to_mermaid(), end="")
        return EXIT_OK
    print(f"pipeline {config.name}: {len(dag)} steps")
    for level, names in enumerate(dag.levels()):
        print(f"level {level}:")
        for name in names:
            step = dag.step(name)
            reads = ", ".join(step.input_keys) or "-"
            writes = ", ".join(step.output_keys) or "-"
            print(f"  {name} [{step.layer}]  reads: {reads}  writes: {writes}")
    return EXIT_OK


# Later commands (run, lineage, report) register themselves here; see _register_* below.
_EXTRA_COMMANDS: list = []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
