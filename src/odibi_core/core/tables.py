"""Table names and where they live.

On Databricks a name such as ``main.sales.orders`` is a Unity Catalog table. Locally no
metastore is used (Derby admits one process only), so the same name maps to a path-based
Delta table under the warehouse: ``<warehouse>/<catalog>/<schema>/<table>``. The local
table then survives the process and can be shared between processes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from odibi_core.core.errors import PipelineConfigError

TABLE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*){0,2}")
LOCAL_DEFAULT_CATALOG = "spark_catalog"
LOCAL_DEFAULT_SCHEMA = "default"
DEFAULT_WAREHOUSE = Path(".odibi") / "warehouse"


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def validate_table_name(name: str, *, step: str | None = None) -> str:
    """Return ``name`` if it is a safe 1-3 part identifier; raise otherwise.

    Only names that pass this check ever enter SQL text.
    """
    if not isinstance(name, str) or not TABLE_NAME.fullmatch(name):
        where = f"step '{step}': " if step else ""
        raise PipelineConfigError(
            f"{where}{name!r} is not a valid table name; use catalog.schema.table, "
            "schema.table or table, with letters, digits and underscores"
        )
    return name


def qualify(name: str) -> tuple[str, str, str]:
    """Split a table name into (catalog, schema, table), filling local defaults."""
    parts = validate_table_name(name).split(".")
    if len(parts) == 1:
        parts.insert(0, LOCAL_DEFAULT_SCHEMA)
    if len(parts) == 2:
        parts.insert(0, LOCAL_DEFAULT_CATALOG)
    catalog, schema, table = parts
    return catalog, schema, table


def local_table_path(name: str, warehouse: str | Path | None = None) -> Path:
    """The path-based Delta location of table ``name`` in a local warehouse."""
    catalog, schema, table = qualify(name)
    root = Path(warehouse) if warehouse is not None else default_warehouse()
    return root.resolve() / catalog / schema / table


def default_warehouse() -> Path:
    return Path(os.environ.get("ODIBI_WAREHOUSE", DEFAULT_WAREHOUSE))
