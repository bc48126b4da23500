"""The run report: one self-contained HTML file built from a lineage dict.

The page has inline CSS and an inline SVG of the DAG, and fetches nothing (a
Content-Security-Policy forbids it), so it can be attached to a ticket or opened from a
job's artifacts offline. It renders exactly the values it is given: redaction happens
upstream, and every value is escaped because all of it is user data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from odibi_core.core.files import write_atomically
from odibi_core.report.svg import (
    STATUS_COLOURS,
    ReportError,
    check_lineage,
    render_dag_svg,
    status_colour,
    status_ink,
    step_anchor_id,
    xml_text,
)

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:#1f2933;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:20px 24px 40px}
code,.mono,pre,td,th{font-family:ui-monospace,Menlo,Consolas,"Liberation Mono",monospace}
h1{font-size:22px;margin:0}
h2{font-size:16px;margin:0 0 10px}
.run-header{display:flex;align-items:center;gap:12px;flex-wrap:wrap;margin-bottom:14px}
.badge{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12px;
 font-weight:600;letter-spacing:.02em}
.panel{background:#fff;border:1px solid #dde3ea;border-radius:10px;padding:14px 16px;
 margin-bottom:16px}
.summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:10px}
.run-meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:4px 16px;
 margin:12px 0 0;font-size:13px}
.run-meta div{min-width:0;overflow-wrap:anywhere}
.run-meta dt{display:inline;color:#52606d;margin-right:8px}
.run-meta dd{display:inline;margin:0}
.stat{background:#f8fafc;border:1px solid #e4e9ef;border-radius:8px;padding:8px 10px}
.stat .label{color:#52606d;font-size:11.5px;text-transform:uppercase;letter-spacing:.04em}
.stat .value{font-size:17px;font-weight:600;overflow-wrap:anywhere}
.dag-scroll{overflow-x:auto}
.dag-scroll svg{display:block;max-width:100%;height:auto}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:#52606d;margin-top:8px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
 vertical-align:-2px}
.step-card{background:#fff;border:1px solid #dde3ea;border-left-width:6px;border-radius:10px;
 padding:12px 16px;margin-bottom:14px}
.step-card header{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-bottom:8px}
.step-card h3{font-size:15px;margin:0;overflow-wrap:anywhere}
.layer{color:#52606d;font-size:12px;border:1px solid #cbd2d9;border-radius:4px;padding:0 6px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(135px,1fr));gap:6px 14px;
 margin:0 0 8px}
.facts div{min-width:0}
.facts dt{color:#52606d;font-size:11.5px}
.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.line{margin:4px 0;overflow-wrap:anywhere}
.line .key{color:#52606d;display:inline-block;min-width:110px;margin-right:6px}
.muted{color:#7b8794;font-weight:400}
.delta-up{color:#2e7d32}.delta-down{color:#c62828}
.diff .added,.diff .removed,.diff .changed{display:inline-block;border-radius:4px;padding:0 6px;margin:2px 4px 2px 0;
 font-family:ui-monospace,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
.diff .added{background:#e6f4ea;color:#1e6b2a}
.diff .removed{background:#fdecea;color:#b3261e}
.diff .changed{background:#fff4e0;color:#8a5300}
pre.error{background:#fdecea;color:#8c1d18;border:1px solid #f5c2bd;border-radius:6px;
 padding:8px 10px;margin:6px 0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12.5px}
.sample-scroll{overflow-x:auto;margin-top:6px}
table.sample{border-collapse:collapse;font-size:12.5px}
.sample-note{color:#52606d;font-size:12px;margin-top:8px}
table.sample th,table.sample td{border:1px solid #e4e9ef;padding:3px 8px;text-align:left;
 vertical-align:top;max-width:360px;overflow-wrap:anywhere}
table.sample th{background:#f8fafc;font-weight:600}
table.sample th .type{display:block;color:#7b8794;font-weight:400;font-size:11px}
td.null{color:#9aa5b1;font-style:italic}
.quality{margin-top:8px}
table.quality-rules{border-collapse:collapse;font-size:12.5px;margin-top:4px}
table.quality-rules th,table.quality-rules td{border:1px solid #e4e9ef;padding:3px 8px;
 text-align:left;vertical-align:top;max-width:420px;overflow-wrap:anywhere}
table.quality-rules th{background:#f8fafc;font-weight:600}
table.quality-rules td.num{text-align:right}
tr.violated td{background:#fff4e0;color:#8a5300}
tr.violated.fail td{background:#fdecea;color:#8c1d18;font-weight:600}
footer{color:#7b8794;font-size:12px;text-align:center}
"""

# No fetch of any kind: no script, font, image, frame or remote stylesheet.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def load_lineage(path: str | os.PathLike) -> dict:
    """Read a lineage JSON file, as written by ``Tracker.export_lineage``."""
    where = f"lineage file '{path}'"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ReportError(
            f"cannot read {where}: it does not exist; export one with "
            "result['tracker'].export_lineage(path) or pass the path of an existing file"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(
            f"cannot read {where}: {exc}; check the path and its permissions"
        ) from exc
    try:
        lineage = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "re-export it with Tracker.export_lineage"
        ) from exc
    check_lineage(lineage, where)
    return lineage


def write_report(lineage: Mapping, path: str | os.PathLike) -> Path:
    """Write the report for ``lineage`` to ``path`` atomically; create parent folders."""
    target = Path(path)
    page = render_report(lineage)
    try:
        write_atomically(target, page)
    except OSError as exc:
        raise ReportError(
            f"cannot write the run report to '{target}': {exc}; "
            "choose a writable folder or free some space"
        ) from exc
    return target


def render_report(lineage: Mapping) -> str:
    """The whole report as one HTML document."""
    steps = check_lineage(lineage)
    pipeline = lineage.get("pipeline_name") or "pipeline"
    status = lineage.get("status") or "UNKNOWN"
    cards = "".join(_step_card(position, step) for position, step in enumerate(steps))
    version = lineage.get("odibi_version")
    footer = f"odibi_core {xml_text(version)}" if version else "odibi_core"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{xml_text(pipeline)} \u00b7 {xml_text(status)} \u00b7 odibi run report</title>"
        f"<style>{_CSS}</style></head><body><main>"
        f"{_run_header(pipeline, status)}"
        f"{_summary(lineage, steps)}"
        '<section class="panel dag"><h2>DAG</h2>'
        f'<div class="dag-scroll">{render_dag_svg(lineage)}</div>{_legend()}</section>'
        f'<section class="steps"><h2>Steps ({len(steps)})</h2>{cards}</section>'
        f"<footer>Run report generated by {footer}</footer>"
        "</main></body></html>\n"
    )


def _badge(status: object) -> str:
    return (
        f'<span class="badge" style="background:{status_colour(status)};'
        f'color:{status_ink(status)}">{xml_text(status)}</span>'
    )


def _run_header(pipeline: object, status: object) -> str:
    return (
        f'<div class="run-header"><h1>{xml_text(pipeline)}</h1>{_badge(status)}'
        '<span class="muted">run report</span></div>'
    )


def _stat(label: str, value: str) -> str:
    return (
        f'<div class="stat"><div class="label">{label}</div><div class="value">{value}</div></div>'
    )


def _summary(lineage: Mapping, steps: list[Mapping]) -> str:
    counts = lineage.get("summary")
    if not isinstance(counts, Mapping):  # older lineage files carry no summary block
        statuses = [str(step.get("status")) for step in steps]
        counts = {
            "total_steps": len(steps),
            "success_count": statuses.count("SUCCESS"),
            "failed_count": statuses.count("FAILED"),
            "skipped_count": statuses.count("SKIPPED"),
            "cached_count": statuses.count("CACHED"),
        }
    tiles = [
        _stat("Status", _badge(lineage.get("status") or "UNKNOWN")),
        _stat("Duration", _duration(lineage.get("total_duration_ms"))),
        _stat("Steps", _count(counts.get("total_steps"))),
        _stat("Succeeded", _count(counts.get("success_count"))),
        _stat("Failed", _count(counts.get("failed_count"))),
        _stat("Skipped", _count(counts.get("skipped_count"))),
        _stat("Cached", _count(counts.get("cached_count"))),
        _stat("Executed", _count(counts.get("nodes_executed"))),
    ]
    meta = "".join(
        f"<div><dt>{label}</dt><dd>{value}</dd></div>"
        for label, value in (
            ("run id", f"<code>{_text(lineage.get('run_id'))}</code>"),
            ("execution id", f"<code>{_text(lineage.get('execution_id'))}</code>"),
            ("started", _timestamp(lineage.get("start_time"))),
            ("ended", _timestamp(lineage.get("end_time"))),
        )
    )
    return (
        f'<section class="panel"><div class="summary">{"".join(tiles)}</div>'
        f'<dl class="run-meta">{meta}</dl></section>'
    )


def _legend() -> str:
    shown = [*STATUS_COLOURS, "other"]
    items = "".join(f'<span><i style="background:{status_colour(s)}"></i>{s}</span>' for s in shown)
    return f'<div class="legend">{items}</div>'


def _text(value: object) -> str:
    return '<span class="muted">-</span>' if value is None else xml_text(value)


def _count(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _text(value)


def _timestamp(value: object) -> str:
    """An ISO timestamp as ``2024-05-01 12:00:00.123 UTC``; the exact value is the tooltip."""
    if not isinstance(value, str):
        return _text(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return xml_text(value)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        shown += f".{moment.microsecond // 1000:03d}"
    offset = moment.utcoffset()
    if offset is not None:
        zone = moment.strftime("%z")
        shown += " UTC" if not offset else f" {zone[:3]}:{zone[3:]}"
    return f'<span title="{xml_text(value)}">{shown}</span>'


def _duration(ms: object) -> str:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return _text(ms)
    if ms < 1000:
        shown = f"{ms:.0f} ms"
    elif ms < 60_000:
        shown = f"{ms / 1000:.1f} s"
    elif ms < 3_600_000:
        minutes, seconds = divmod(round(ms / 1000), 60)
        shown = f"{minutes} min {seconds:02d} s"
    else:
        hours, minutes = divmod(round(ms / 60_000), 60)
        shown = f"{hours} h {minutes:02d} min"
    return f'<span title="{xml_text(ms)} ms">{shown}</span>'


def _rows(snapshot: object) -> str:
    """A snapshot's row count; ``-`` when unknown. The count's source follows when given."""
    snapshot = snapshot if isinstance(snapshot, Mapping) else {}
    shown = _count(snapshot.get("row_count"))
    source = snapshot.get("count_source")
    return f'{shown} <span class="muted">({xml_text(source)})</span>' if source else shown


def _row_delta(delta: object) -> str:
    if not isinstance(delta, int) or isinstance(delta, bool):
        return _text(delta)
    if delta > 0:
        return f'<span class="delta-up">+{delta:,}</span>'
    if delta < 0:
        return f'<span class="delta-down">\u2212{-delta:,}</span>'
    return "0"


def _fact(label: str, value: str) -> str:
    return f"<div><dt>{label}</dt><dd>{value}</dd></div>"


def _times(step: Mapping) -> str:
    start, end = step.get("start_time"), step.get("end_time")
    if start is None and end is None:
        return ""
    return (
        f'<div class="line"><span class="key">time</span>{_timestamp(start)} '
        f'<span class="muted">to</span> {_timestamp(end)}</div>'
    )


def _data_flow(step: Mapping) -> str:
    inputs, outputs = step.get("inputs"), step.get("outputs")
    input_snapshots = step.get("input_snapshots")
    input_snapshots = input_snapshots if isinstance(input_snapshots, Mapping) else {}
    lines = []
    if isinstance(inputs, Mapping) and inputs:
        shown = []
        for logical, key in inputs.items():
            rows = ""
            snapshot = input_snapshots.get(logical)
            if isinstance(snapshot, Mapping) and snapshot.get("row_count") is not None:
                rows = f' <span class="muted">({_count(snapshot["row_count"])} rows)</span>'
            shown.append(
                f"<code>{xml_text(logical)}</code> \u2190 <code>{xml_text(key)}</code>{rows}"
            )
        lines.append(f'<div class="line"><span class="key">inputs</span>{", ".join(shown)}</div>')
    if isinstance(outputs, Mapping) and outputs:
        shown = [
            f"<code>{xml_text(logical)}</code> \u2192 <code>{xml_text(key)}</code>"
            for logical, key in outputs.items()
        ]
        lines.append(f'<div class="line"><span class="key">outputs</span>{", ".join(shown)}</div>')
    return "".join(lines)


def _schema_diff(diff: object) -> str:
    diff = diff if isinstance(diff, Mapping) else {}
    spans = [f'<span class="added">+ {xml_text(c)}</span>' for c in diff.get("added") or []]
    spans += [
        f'<span class="removed">\u2212 {xml_text(c)}</span>' for c in diff.get("removed") or []
    ]
    for change in diff.get("changed") or []:
        if isinstance(change, Mapping):
            text = (
                f"{xml_text(change.get('column'))}: {xml_text(change.get('old_type'))} "
                f"\u2192 {xml_text(change.get('new_type'))}"
            )
        else:
            text = xml_text(change)
        spans.append(f'<span class="changed">{text}</span>')
    body = "".join(spans) or '<span class="muted">no change</span>'
    return f'<div class="line diff"><span class="key">schema diff</span>{body}</div>'


def _attempt_error(entry: object) -> str:
    if isinstance(entry, Mapping):
        message = next(
            (entry[k] for k in ("error_message", "error", "message") if entry.get(k)), None
        )
        attempt = entry.get("attempt")
        text = json.dumps(entry, default=str) if message is None else str(message)
        return f"attempt {attempt}: {text}" if attempt is not None else text
    return str(entry)


def _errors(step: Mapping) -> str:
    message = step.get("error_message")
    attempts = [_attempt_error(e) for e in step.get("attempt_errors") or []]
    if message is None and not attempts:
        return ""
    parts = [f'<pre class="error">{xml_text(message)}</pre>'] if message is not None else []
    earlier = [a for a in attempts if a != message]
    if earlier:
        listed = "\n".join(earlier)
        parts.append(
            '<div class="line"><span class="key">attempt errors</span></div>'
            f'<pre class="error">{xml_text(listed)}</pre>'
        )
    return "".join(parts)


def _column_types(schema: object) -> dict[str, str]:
    types = {}
    for entry in schema if isinstance(schema, list) else []:
        name, sep, kind = str(entry).partition(": ")
        if sep:
            types[name] = kind
    return types


def _cell(row: Mapping, column: str) -> str:
    if column not in row:
        return "<td></td>"
    value = row[column]
    if value is None:
        return '<td class="null">null</td>'
    if isinstance(value, (Mapping, list)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    return f"<td>{xml_text(value)}</td>"


def _sample_table(snapshot: object) -> str:
    """The after-snapshot sample; its columns are the keys of the sample rows, in order."""
    snapshot = snapshot if isinstance(snapshot, Mapping) else {}
    rows = [r if isinstance(r, Mapping) else {"value": r} for r in snapshot.get("sample") or []]
    source = snapshot.get("sample_source")
    source_note = f" \u00b7 {xml_text(source)}" if source else ""
    if not rows:
        return f'<div class="line muted">no sample rows{source_note}</div>'
    columns: list[str] = []
    for row in rows:
        columns += [str(c) for c in row if str(c) not in columns]
    types = _column_types(snapshot.get("schema"))
    header = "".join(
        f"<th>{xml_text(c)}"
        + (f'<span class="type">{xml_text(types[c])}</span>' if c in types else "")
        + "</th>"
        for c in columns
    )
    body = "".join(
        "<tr>" + "".join(_cell({str(k): v for k, v in row.items()}, c) for c in columns) + "</tr>"
        for row in rows
    )
    return (
        f'<div class="sample-note">sample after the step: {len(rows)} rows{source_note}</div>'
        '<div class="sample-scroll"><table class="sample">'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _quality(step: Mapping) -> str:
    """The step's expectations: a row per rule; one that counted failing rows is
    highlighted, in red when its action fails the step."""
    rules = [r for r in step.get("quality") or [] if isinstance(r, Mapping)]
    if not rules:
        return ""
    violated = sum(1 for rule in rules if _failed_rows(rule))
    header = "".join(
        f"<th>{name}</th>"
        for name in ("expectation", "rule", "on violation", "passed", "failed", "failed %")
    )
    body = "".join(_quality_row(rule) for rule in rules)
    note = f"{len(rules)} expectation(s), {violated} with failing rows"
    return (
        f'<div class="quality"><div class="line"><span class="key">data quality</span>{note}'
        f'</div><table class="quality-rules"><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _quality_row(rule: Mapping) -> str:
    action = rule.get("on_violation")
    classes = ["violated", "fail"] if action == "fail" else ["violated"]
    row_class = f' class="{" ".join(classes)}"' if _failed_rows(rule) else ""
    passed, failed = rule.get("passed"), rule.get("failed")
    known = _is_count(passed) and _is_count(failed)
    share = f"{failed / (passed + failed):.1%}" if known and passed + failed else "-"
    reason = rule.get("reason")
    note = f' <span class="muted">({xml_text(reason)})</span>' if reason and not known else ""
    return (
        f"<tr{row_class}><td>{xml_text(rule.get('name'))}</td>"
        f"<td><code>{xml_text(rule.get('rule'))}</code></td><td>{_text(action)}</td>"
        f'<td class="num">{_count(passed)}</td><td class="num">{_count(failed)}{note}</td>'
        f'<td class="num">{share}</td></tr>'
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _failed_rows(rule: Mapping) -> bool:
    failed = rule.get("failed")
    return _is_count(failed) and failed > 0


def _step_card(position: int, step: Mapping) -> str:
    status = step.get("status") or "UNKNOWN"
    engine_reason = step.get("engine_reason")
    reason = (
        f'<div class="line"><span class="key">engine reason</span>{xml_text(engine_reason)}</div>'
        if engine_reason
        else ""
    )
    facts = "".join(
        [
            _fact("duration", _duration(step.get("duration_ms"))),
            _fact("attempts", _count(step.get("attempts"))),
            _fact("engine", _text(step.get("engine"))),
            _fact("rows before", _rows(step.get("before_snapshot"))),
            _fact("rows after", _rows(step.get("after_snapshot"))),
            _fact("row delta", _row_delta(step.get("row_delta"))),
        ]
    )
    return (
        f'<article class="step-card" id="{step_anchor_id(position)}" '
        f'data-step="{xml_text(step.get("step_name"))}" data-status="{xml_text(status)}" '
        f'style="border-left-color:{status_colour(status)}">'
        f"<header><h3>{xml_text(step.get('step_name'))}</h3>"
        f'<span class="layer">{xml_text(step.get("layer") or "-")}</span>{_badge(status)}</header>'
        f'<dl class="facts">{facts}</dl>{_times(step)}{reason}{_data_flow(step)}'
        f"{_schema_diff(step.get('schema_diff'))}{_quality(step)}{_errors(step)}"
        f"{_sample_table(step.get('after_snapshot'))}</article>"
    )
