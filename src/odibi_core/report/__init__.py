"""Run reports: a self-contained HTML page with an SVG of the DAG, built from a lineage.

Only the standard library is imported here; the OpenLineage export lives in
``odibi_core.events.openlineage`` and is imported from there.
"""

from __future__ import annotations

from odibi_core.report.html import load_lineage, render_report, write_report
from odibi_core.report.svg import ReportError, render_dag_svg

__all__ = [
    "ReportError",
    "load_lineage",
    "render_dag_svg",
    "render_report",
    "write_report",
]
