"""The HTML run report and its SVG DAG, checked without a browser."""

from __future__ import annotations

import json
import os
import re
import stat
import xml.etree.ElementTree as ET

import pytest

from odibi_core.report import (
    ReportError,
    load_lineage,
    render_dag_svg,
    render_report,
    write_report,
)
from odibi_core.report.svg import DagEdge, dependency_levels, lineage_edges

SVG = "{http://www.w3.org/2000/svg}"


def step(name, *, inputs=None, outputs=None, status="SUCCESS", layer="transform", **extra):
    return {
        "step_name": name,
        "layer": layer,
        "engine": "pandas",
        "engine_reason": "auto: ~10 rows",
        "status": status,
        "start_time": "2024-05-01T12:00:01+00:00",
        "end_time": "2024-05-01T12:00:05+00:00",
        "duration_ms": 4000,
        "attempts": 1,
        "error_message": None,
        "attempt_errors": [],
        "inputs": inputs or {},
        "outputs": outputs or {},
        "before_snapshot": {"schema": [], "row_count": 0, "sample": []},
        "after_snapshot": {"schema": [], "row_count": 10, "sample": []},
        "schema_diff": {"added": [], "removed": [], "changed": []},
        "row_delta": 10,
        **extra,
    }


def lineage(*steps, **fields):
    return {
        "pipeline_name": "customer_pipeline",
        "status": "SUCCESS",
        "steps": list(steps),
        **fields,
    }


# read_a and read_b feed join; save reads join's output and, across a level, read_a's.
DIAMOND = lineage(
    step("read_a", layer="ingest", outputs={"data": "raw_a"}),
    step("read_b", layer="ingest", outputs={"data": "raw_b", "rejects": "bad_b"}),
    step(
        "join",
        inputs={"a": "raw_a", "b": "raw_b", "bad": "bad_b", "dim": "external_table"},
        outputs={"data": "joined"},
    ),
    step("save", layer="store", status="SKIPPED", inputs={"data": "joined", "extra": "raw_a"}),
)


def svg_groups(svg: str, css_class: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if css_class in (g.get("class") or "").split()]


def test_svg_has_one_node_per_step_with_its_dependency_level():
    nodes = svg_groups(render_dag_svg(DIAMOND), "node")

    assert [n.get("data-step") for n in nodes] == ["read_a", "read_b", "join", "save"]
    assert {n.get("data-step"): int(n.get("data-level")) for n in nodes} == {
        "read_a": 0,
        "read_b": 0,
        "join": 1,
        "save": 2,
    }
    texts = ["".join(t.itertext()) for t in nodes[2].iter(f"{SVG}text")]
    assert texts == ["join", "transform \u00b7 SUCCESS"]


def test_svg_has_one_labelled_edge_per_producer_consumer_pair():
    svg = render_dag_svg(DIAMOND)
    edges = svg_groups(svg, "edge")

    labels = {(e.get("data-from"), e.get("data-to")): e.find(f"{SVG}text").text for e in edges}
    assert labels == {
        ("read_a", "join"): "raw_a",
        ("read_b", "join"): "raw_b, bad_b",
        ("join", "save"): "joined",
        ("read_a", "save"): "raw_a",
    }
    assert len(edges) == 4
    markers = {e.find(f"{SVG}path").get("marker-end") for e in edges}
    assert markers == {"url(#odibi-dag-arrow)"}
    assert ET.fromstring(svg).find(f"{SVG}defs/{SVG}marker").get("id") == "odibi-dag-arrow"


def test_edges_into_a_skipped_step_are_dashed():
    classes = {
        (e.get("data-from"), e.get("data-to")): e.get("class")
        for e in svg_groups(render_dag_svg(DIAMOND), "edge")
    }
    assert classes[("join", "save")] == "edge to-skipped"
    assert classes[("read_a", "save")] == "edge to-skipped"
    assert classes[("read_a", "join")] == "edge"


@pytest.mark.parametrize(
    ("status", "fill"),
    [
        ("SUCCESS", "#2e7d32"),
        ("CACHED", "#1565c0"),
        ("FAILED", "#c62828"),
        ("SKIPPED", "#757575"),
        ("RUNNING", "#ffb300"),
        (None, "#ffb300"),
    ],
)
def test_nodes_are_filled_by_status(status, fill):
    (node,) = svg_groups(render_dag_svg(lineage(step("only", status=status))), "node")
    assert node.find(f".//{SVG}rect").get("fill") == fill


def test_nodes_sit_in_columns_by_level_and_never_overlap():
    rects = {
        n.get("data-step"): n.find(f".//{SVG}rect")
        for n in svg_groups(render_dag_svg(DIAMOND), "node")
    }
    x = {name: float(r.get("x")) for name, r in rects.items()}
    assert x["read_a"] == x["read_b"] < x["join"] < x["save"]
    top_a, top_b = float(rects["read_a"].get("y")), float(rects["read_b"].get("y"))
    assert abs(top_a - top_b) >= float(rects["read_a"].get("height"))


def test_labels_in_one_gap_never_overlap():
    fan_in = lineage(
        *[step(f"read_{i}", layer="ingest", outputs={"data": f"key_{i}"}) for i in range(4)],
        step("join", inputs={f"in_{i}": f"key_{i}" for i in range(4)}),
    )
    labels = [e.find(f"{SVG}text") for e in svg_groups(render_dag_svg(fan_in), "edge")]
    baselines = sorted(float(t.get("y")) for t in labels)
    assert len({t.get("x") for t in labels}) == 1
    assert all(b - a >= 14 for a, b in zip(baselines, baselines[1:]))


def test_svg_escapes_user_text_and_stays_well_formed():
    name = 'a<b>&"c\x00'
    svg = render_dag_svg(
        lineage(
            step(name, outputs={"data": "<key>"}),
            step("reader", inputs={"x": "<key>"}),
        )
    )

    assert "<b>" not in svg and "<key>" not in svg
    nodes = svg_groups(svg, "node")
    assert nodes[0].get("data-step") == 'a<b>&"c\ufffd'
    (edge,) = svg_groups(svg, "edge")
    assert edge.find(f"{SVG}text").text == "<key>"


def test_an_empty_run_draws_a_placeholder():
    root = ET.fromstring(render_dag_svg(lineage()))
    assert svg_groups(render_dag_svg(lineage()), "node") == []
    assert [t.text for t in root.iter(f"{SVG}text")] == ["This run has no steps."]


def test_lineage_edges_merge_keys_per_pair_and_ignore_outside_inputs():
    assert lineage_edges(DIAMOND["steps"]) == [
        DagEdge("read_a", "join", ("raw_a",)),
        DagEdge("read_b", "join", ("raw_b", "bad_b")),
        DagEdge("join", "save", ("joined",)),
        DagEdge("read_a", "save", ("raw_a",)),
    ]


def test_levels_of_a_long_chain_need_no_recursion():
    names = [f"s{i}" for i in range(3000)]
    edges = [DagEdge(a, b, (a,)) for a, b in zip(names, names[1:])]
    levels = dependency_levels(list(reversed(names)), edges)
    assert levels["s0"] == 0 and levels["s2999"] == 2999


def test_a_cycle_still_renders():
    cyclic = lineage(
        step("a", inputs={"x": "from_b"}, outputs={"data": "from_a"}),
        step("b", inputs={"x": "from_a"}, outputs={"data": "from_b"}),
    )
    edges = lineage_edges(cyclic["steps"])
    assert dependency_levels(["a", "b"], edges) == {"a": 1, "b": 0}
    assert len(svg_groups(render_dag_svg(cyclic), "edge")) == 2


# ---- the HTML page -------------------------------------------------------------------

NETWORK_REFERENCE = re.compile(
    r"""(?:\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|@import""",
    re.IGNORECASE,
)


def test_report_references_nothing_on_the_network():
    hostile = lineage(
        step(
            'x" src="https://evil.example/a.js',
            outputs={"data": "k"},
            after_snapshot={
                "schema": ["url: string"],
                "row_count": 1,
                "sample": [{"url": "https://evil.example/x.png", "img": '<img src="//e.x/p.gif">'}],
            },
        ),
        step("y", inputs={"in": "k"}),
    )
    page = render_report(hostile)

    assert NETWORK_REFERENCE.findall(page) == []
    assert re.findall(r"<(script|link|img|iframe|object|embed)\b", page, re.IGNORECASE) == []
    assert set(re.findall(r'\bhref="([^"]*)"', page)) == {"#step-0", "#step-1"}
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">"
    ) in page
    assert "<td>https://evil.example/x.png</td>" in page


def test_schema_diff_marks_added_removed_and_changed_columns():
    diff = {
        "added": ["customer_id", "name"],
        "removed": ["email"],
        "changed": [{"column": "amount", "old_type": "int64", "new_type": "double"}],
    }
    page = render_report(lineage(step("s", schema_diff=diff)))

    assert (
        '<span class="added">+ customer_id</span><span class="added">+ name</span>'
        '<span class="removed">\u2212 email</span>'
        '<span class="changed">amount: int64 \u2192 double</span>'
    ) in page


def test_no_schema_change_says_so():
    page = render_report(lineage(step("s")))
    assert '<span class="key">schema diff</span><span class="muted">no change</span>' in page


def sample_step(sample, schema=(), **snapshot):
    after = {"schema": list(schema), "row_count": len(sample), "sample": sample, **snapshot}
    return step("s", after_snapshot=after)


def test_sample_values_are_html_escaped():
    page = render_report(lineage(sample_step([{"note": "<script>alert(1)</script>"}])))
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    assert "<script" not in page


def test_redacted_values_appear_exactly_as_given():
    rows = [{"id": 1, "email": "***"}, {"id": 2, "email": "***"}]
    page = render_report(lineage(sample_step(rows, ["id: int64", "email: string"])))
    assert page.count("<td>***</td>") == 2
    assert "@" not in page


def test_sample_table_takes_its_columns_from_the_rows():
    rows = [{"id": 1, "name": "Alice"}, {"id": 2, "extra": None, "tags": ["a", "b"]}]
    page = render_report(
        lineage(sample_step(rows, ["id: int64", "name: string"], sample_source="in_memory"))
    )

    header = re.search(r"<thead><tr>(.*?)</tr></thead>", page).group(1)
    assert header == (
        '<th>id<span class="type">int64</span></th><th>name<span class="type">string</span></th>'
        "<th>extra</th><th>tags</th>"
    )
    body = re.search(r"<tbody>(.*?)</tbody>", page).group(1)
    assert body == (
        "<tr><td>1</td><td>Alice</td><td></td><td></td></tr>"
        '<tr><td>2</td><td></td><td class="null">null</td><td>[&quot;a&quot;, &quot;b&quot;]</td></tr>'
    )
    assert "sample after the step: 2 rows \u00b7 in_memory" in page


def fact(page: str, label: str) -> str:
    return re.search(rf"<dt>{label}</dt><dd>(.*?)</dd>", page).group(1)


def test_unknown_row_counts_show_a_dash_and_where_the_count_came_from():
    after = {"schema": [], "row_count": None, "sample": [], "count_source": "not_observed"}
    page = render_report(lineage(step("s", after_snapshot=after, row_delta=None)))

    assert fact(page, "rows after") == (
        '<span class="muted">-</span> <span class="muted">(not_observed)</span>'
    )
    assert fact(page, "row delta") == '<span class="muted">-</span>'
    page = render_report(lineage(step("s", before_snapshot=None)))
    assert fact(page, "rows before") == '<span class="muted">-</span>'


def test_step_card_shows_timing_engine_rows_and_errors():
    failed = step(
        "join_all",
        status="FAILED",
        duration_ms=4000,
        attempts=3,
        engine="spark",
        engine_reason="auto: ~2,000,000 rows",
        before_snapshot={"schema": [], "row_count": 10200, "sample": []},
        after_snapshot={"schema": [], "row_count": 10000, "sample": [], "count_source": "exact"},
        row_delta=-200,
        error_message="column 'x' not found <in> join",
        attempt_errors=["timeout on attempt 1", "column 'x' not found <in> join"],
    )
    page = render_report(lineage(failed))

    assert fact(page, "duration") == '<span title="4000 ms">4.0 s</span>'
    assert fact(page, "attempts") == "3"
    assert fact(page, "engine") == "spark"
    assert fact(page, "rows before") == "10,200"
    assert fact(page, "rows after") == '10,000 <span class="muted">(exact)</span>'
    assert fact(page, "row delta") == '<span class="delta-down">\u2212200</span>'
    assert "auto: ~2,000,000 rows" in page
    assert '<pre class="error">column &#x27;x&#x27; not found &lt;in&gt; join</pre>' in page
    assert '<pre class="error">timeout on attempt 1</pre>' in page
    card = re.search(r'<article class="step-card" id="step-0"[^>]*>', page).group(0)
    assert 'data-status="FAILED"' in card and "border-left-color:#c62828" in card


def test_run_summary_shows_ids_times_duration_and_counts():
    run = lineage(
        step("a"),
        run_id="20240501T120000_a1b2c3",
        execution_id="20240501T120000_a1b2c3.1",
        start_time="2024-05-01T12:00:00.123456+00:00",
        end_time="not a timestamp",
        total_duration_ms=330000,
        status="FAILED",
        summary={
            "total_steps": 6,
            "success_count": 4,
            "failed_count": 1,
            "skipped_count": 1,
            "cached_count": 0,
            "nodes_executed": 5,
        },
    )
    page = render_report(run)

    def tile(label):
        return re.search(
            rf'<div class="label">{label}</div><div class="value">(.*?)</div></div>', page
        ).group(1)

    assert "<h1>customer_pipeline</h1>" in page
    assert tile("Duration") == '<span title="330000 ms">5 min 30 s</span>'
    counts = [
        tile(label) for label in ("Steps", "Succeeded", "Failed", "Skipped", "Cached", "Executed")
    ]
    assert counts == ["6", "4", "1", "1", "0", "5"]
    assert "<dt>run id</dt><dd><code>20240501T120000_a1b2c3</code></dd>" in page
    assert "<dt>execution id</dt><dd><code>20240501T120000_a1b2c3.1</code></dd>" in page
    assert (
        '<dt>started</dt><dd><span title="2024-05-01T12:00:00.123456+00:00">'
        "2024-05-01 12:00:00.123 UTC</span></dd>"
    ) in page
    assert "<dt>ended</dt><dd>not a timestamp</dd>" in page


def test_counts_come_from_the_steps_when_the_lineage_has_no_summary():
    page = render_report(
        lineage(step("a"), step("b", status="FAILED"), step("c", status="SKIPPED"))
    )
    tiles = re.findall(r'<div class="label">(\w+)</div><div class="value">([^<]*)</div>', page)
    assert dict(tiles) == {
        "Steps": "3",
        "Succeeded": "1",
        "Failed": "1",
        "Skipped": "1",
        "Cached": "0",
    }


def test_every_node_links_to_its_step_card():
    page = render_report(DIAMOND)
    links = re.findall(r'<g class="node" data-step="([^"]*)"[^>]*>.*?<a href="#([^"]+)">', page)
    cards = re.findall(r'<article class="step-card" id="([^"]+)" data-step="([^"]*)"', page)
    assert dict(links) == {name: anchor for anchor, name in cards}
    assert len(cards) == 4


def test_report_is_rejected_for_a_lineage_of_the_wrong_shape():
    with pytest.raises(ReportError) as not_a_dict:
        render_report([])
    assert str(not_a_dict.value) == (
        "cannot build the run report: the lineage is a list, expected an object with a "
        "'steps' list; pass the dict Tracker.export_lineage writes (or a row of the audit table)"
    )
    with pytest.raises(
        ReportError, match=r"steps\[1\] in the lineage is not an object with a 'step_name'"
    ):
        render_report({"steps": [step("a"), {"layer": "ingest"}]})


# ---- files ---------------------------------------------------------------------------


def test_write_report_creates_folders_and_replaces_atomically(tmp_path):
    target = tmp_path / "reports" / "2024" / "run.html"

    written = write_report(DIAMOND, target)
    write_report(DIAMOND, str(target))  # the second write replaces the first

    assert written == target
    assert target.read_text(encoding="utf-8") == render_report(DIAMOND)
    assert os.listdir(target.parent) == ["run.html"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_previous_report_alone(tmp_path):
    target = tmp_path / "run.html"
    target.write_text("previous report", encoding="utf-8")

    with pytest.raises(ReportError):
        write_report({"steps": "not a list"}, target)

    assert target.read_text(encoding="utf-8") == "previous report"
    assert os.listdir(tmp_path) == ["run.html"]


def test_write_report_says_where_it_could_not_write(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ReportError, match=r"cannot write the run report to '.*a_file/run\.html'"):
        write_report(DIAMOND, blocker / "run.html")


def test_load_lineage_reads_what_export_lineage_writes(tmp_path):
    path = tmp_path / "lineage.json"
    path.write_text(json.dumps(DIAMOND), encoding="utf-8")
    assert load_lineage(path) == DIAMOND


def test_load_lineage_explains_missing_and_broken_files(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ReportError) as error:
        load_lineage(missing)
    assert str(error.value) == (
        f"cannot read lineage file '{missing}': it does not exist; export one with "
        "result['tracker'].export_lineage(path) or pass the path of an existing file"
    )

    broken = tmp_path / "broken.json"
    broken.write_text('{"steps": [\n  {"step_name": }\n]}', encoding="utf-8")
    with pytest.raises(ReportError) as error:
        load_lineage(broken)
    assert str(error.value) == (
        f"lineage file '{broken}' is not valid JSON (line 2, column 17: Expecting value); "
        "re-export it with Tracker.export_lineage"
    )

    listed = tmp_path / "list.json"
    listed.write_text("[]", encoding="utf-8")
    with pytest.raises(ReportError, match=f"lineage file '{re.escape(str(listed))}' is a list"):
        load_lineage(listed)
