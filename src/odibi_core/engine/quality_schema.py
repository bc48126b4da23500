"""Quality rules checked against the output columns ``odibi validate`` can know.

Nothing runs and no data is read: an ingest of a local CSV file is known by its header
line and a Parquet file by its footer; a SQL transform by its select list, with ``*``
expanded from inputs already known. A rule that names a column missing from a known
output is a config error here; where no output is known the run checks it (a step error).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from odibi_core.core.config import PipelineConfig
from odibi_core.core.dag import DAGBuilder
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.expectations import rule_columns
from odibi_core.core.step import Step
from odibi_core.core.step_params import static_format

Columns = frozenset[str] | None  # lower-case names; None when unknown


def raise_on_rule_columns(config: PipelineConfig) -> None:
    problems = rule_column_problems(config)
    if problems:
        raise PipelineConfigError(problems)


def rule_column_problems(config: PipelineConfig) -> list[str]:
    """Every rule naming a column its step's known output lacks."""
    dag = DAGBuilder(config.steps).build()
    known: dict[str, Columns] = {}  # data key -> its columns
    problems = []
    for name in dag.topological_order():
        step = dag.step(name)
        columns = _output_columns(step, known, config.base_dir)
        for key in step.outputs.values():
            known[key] = columns
        if step.layer in ("store", "publish") and step.inputs:
            columns = known.get(next(iter(step.inputs.values())))
        if columns is not None:
            problems.extend(_missing(step, columns, config.source))
    return problems


def _missing(step: Step, columns: frozenset[str], source: Path | None) -> list[str]:
    where = f"{source or '<pipeline>'}, step '{step.name}'"
    have = ", ".join(sorted(columns))
    problems = []
    for rule in step.expectations:
        missing = sorted(c for c in rule_columns(rule.rule)[0] if c.lower() not in columns)
        if missing:
            problems.append(
                f"{where}: expectation '{rule.name}' ({rule.rule}) names {', '.join(missing)}, "
                f"which the step's output lacks (it has {have})"
            )
    for rule in step.table_expectations:
        keys = rule.value if rule.kind == "unique" else ()
        missing = [c for c in keys if c.lower() not in columns]  # type: ignore[union-attr]
        if missing:
            problems.append(
                f"{where}: table expectation '{rule.name}' ({rule.rule}) names "
                f"{', '.join(missing)}, which the step's output lacks (it has {have})"
            )
    return problems


def _output_columns(step: Step, known: Mapping[str, Columns], base_dir: Path | None) -> Columns:
    if step.layer == "ingest":
        return _file_columns(step, base_dir)
    if step.layer == "transform" and step.kind == "sql" and isinstance(step.value, str):
        inputs = {logical.lower(): known.get(key) for logical, key in step.inputs.items()}
        return _select_columns(step.value, inputs)
    return None


def _file_columns(step: Step, base_dir: Path | None) -> Columns:
    """A local CSV file's header or a Parquet file's schema; None for anything else."""
    if not isinstance(step.value, str) or "://" in step.value or "${" in step.value:
        return None
    path = (base_dir or Path.cwd()) / step.value
    fmt = static_format(step)
    try:
        if fmt == "csv" and path.is_file():
            with path.open(newline="") as handle:
                header = next(csv.reader(handle), None)
            return frozenset(c.strip().lower() for c in header) if header else None
        if fmt == "parquet" and path.is_file():
            import pyarrow.parquet as pq

            return frozenset(n.lower() for n in pq.read_schema(path).names)
    except (OSError, ValueError, csv.Error):
        return None
    return None


def _select_columns(sql: str, inputs: Mapping[str, Columns]) -> Columns:
    """The named columns of a query's select list, ``*`` expanded from known inputs."""
    try:
        tree = sqlglot.parse_one(sql, read="spark")
    except SqlglotError:
        return None
    if not isinstance(tree, exp.Select):
        return None
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table)}
    columns: set[str] = set()
    for projection in tree.expressions:
        star = projection if isinstance(projection, exp.Star) else None
        if star is None and isinstance(projection, exp.Column) and projection.is_star:
            table = projection.table.lower()
            expanded = inputs.get(aliases.get(table, table)) if table else None
            if expanded is None:
                return None
            columns |= expanded
            continue
        if star is not None:
            known = [inputs.get(name) for name in set(aliases.values())]
            if not known or any(c is None for c in known):
                return None
            columns |= set().union(*known)  # type: ignore[arg-type]
            continue
        if not projection.alias_or_name:
            return None
        columns.add(projection.alias_or_name.lower())
    return frozenset(columns)
