"""The run's DAG as an inline SVG, laid out in pure Python (no graphviz, no script).

Steps sit in columns by dependency level, left to right, and are stacked within a
column. An edge joins each producer to each consumer and is labelled with the data keys
that flow along it. Each edge reserves a slot for its label in the column after its
producer, and a slot in every column it crosses, so it never runs through a node and no
two labels overlap. Everything shown is user data, so every string is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from odibi_core.core.errors import OdibiError

STATUS_COLOURS: dict[str, str] = {
    "SUCCESS": "#2e7d32",
    "CACHED": "#1565c0",
    "FAILED": "#c62828",
    "SKIPPED": "#757575",
}
OTHER_STATUS_COLOUR = "#ffb300"
_LIGHT_INK = "#ffffff"
_DARK_INK = "#212121"

_PAD = 20
_NODE_HEIGHT = 52
_NODE_GAP = 22  # vertical space next to a node
_SLOT_GAP = 6  # vertical space between two edge slots
_CURVE_GAP = 56  # horizontal room for an edge to bend between columns
_NAME_CHAR_PX = 7.8  # 13px semi-bold sans-serif, generous so names rarely overflow
_LABEL_CHAR_PX = 6.7  # 11px monospace
_ARROW_ID = "odibi-dag-arrow"

# Characters XML 1.0 forbids, and lone surrogates that cannot be written as UTF-8.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_STYLE = (
    ".odibi-dag text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}"
    ".odibi-dag .node-name{font-size:13px;font-weight:600}"
    ".odibi-dag .node-meta{font-size:11px}"
    ".odibi-dag .edge path{fill:none;stroke:#78909c;stroke-width:1.6}"
    ".odibi-dag .edge text{font-family:ui-monospace,Menlo,Consolas,'Liberation Mono',"
    "monospace;font-size:11px;fill:#37474f;paint-order:stroke;stroke:#ffffff;"
    "stroke-width:4px;stroke-linejoin:round}"
    ".odibi-dag .edge.to-skipped path{stroke-dasharray:5 4}"
    ".odibi-dag .node rect{stroke:rgba(0,0,0,.25);stroke-width:1}"
    ".odibi-dag .node a:hover rect{stroke:#000;stroke-width:2}"
)


class ReportError(OdibiError):
    """A run report could not be built from a lineage, or its files read or written."""


def check_lineage(lineage: object, where: str = "the lineage") -> list[Mapping]:
    """Return ``lineage["steps"]`` after checking the shape the report relies on."""
    fix = "pass the dict Tracker.export_lineage writes (or a row of the audit table)"
    if not isinstance(lineage, Mapping):
        raise ReportError(
            f"cannot build the run report: {where} is a {type(lineage).__name__}, "
            f"expected an object with a 'steps' list; {fix}"
        )
    steps = lineage.get("steps")
    if steps is None:
        return []
    if not isinstance(steps, list):
        raise ReportError(
            f"cannot build the run report: 'steps' in {where} is a {type(steps).__name__}, "
            f"expected a list of step objects; {fix}"
        )
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or step.get("step_name") in (None, ""):
            raise ReportError(
                f"cannot build the run report: steps[{index}] in {where} is not an object "
                f"with a 'step_name'; {fix}"
            )
    return steps


def xml_text(value: object) -> str:
    """``value`` as text safe inside XML or HTML, in element content and quoted attributes."""
    return escape(_UNWRITABLE.sub("\ufffd", str(value)), quote=True)


def status_colour(status: object) -> str:
    """Fill colour for a step status; amber for any status outside the known four."""
    return STATUS_COLOURS.get(str(status).upper(), OTHER_STATUS_COLOUR)


def status_ink(status: object) -> str:
    """Text colour that reads well on ``status_colour(status)``."""
    return _DARK_INK if status_colour(status) == OTHER_STATUS_COLOUR else _LIGHT_INK


def step_anchor_id(position: int) -> str:
    """Element id of the report card for the step at ``position`` in ``lineage["steps"]``."""
    return f"step-{position}"


@dataclass(frozen=True)
class DagEdge:
    """Data flowing from ``producer`` to ``consumer`` under the data ``keys``."""

    producer: str
    consumer: str
    keys: tuple[str, ...]


def _data_keys(mapping: object) -> list[str]:
    if isinstance(mapping, Mapping):
        return [str(key) for key in mapping.values()]
    if isinstance(mapping, (list, tuple)):
        return [str(key) for key in mapping]
    return []


def unique_steps(lineage: Mapping) -> list[tuple[int, Mapping]]:
    """``(position, step)`` for the first step of each name, in lineage order."""
    seen: set[str] = set()
    result = []
    for position, step in enumerate(check_lineage(lineage)):
        name = str(step.get("step_name"))
        if name not in seen:
            seen.add(name)
            result.append((position, step))
    return result


def lineage_edges(steps: Sequence[Mapping]) -> list[DagEdge]:
    """One edge per (producer, consumer) pair, from the steps' ``outputs`` and ``inputs``."""
    producers: dict[str, str] = {}
    for step in steps:
        for key in _data_keys(step.get("outputs")):
            producers.setdefault(key, str(step.get("step_name")))
    keys_by_pair: dict[tuple[str, str], list[str]] = {}
    for step in steps:
        consumer = str(step.get("step_name"))
        for key in _data_keys(step.get("inputs")):
            producer = producers.get(key)
            if producer is None or producer == consumer:
                continue
            keys = keys_by_pair.setdefault((producer, consumer), [])
            if key not in keys:
                keys.append(key)
    return [DagEdge(p, c, tuple(keys)) for (p, c), keys in keys_by_pair.items()]


def dependency_levels(names: Sequence[str], edges: Sequence[DagEdge]) -> dict[str, int]:
    """0 for a step no step in the run feeds, else 1 + the highest level of its producers.

    Iterative, so long chains need no deep recursion; a producer met again while its own
    level is still being worked out (only possible in a cycle) is ignored.
    """
    producers_of: dict[str, list[str]] = {name: [] for name in names}
    for edge in edges:
        producers_of[edge.consumer].append(edge.producer)
    levels: dict[str, int] = {}
    visiting: set[str] = set()
    for root in names:
        if root in levels:
            continue
        visiting.add(root)
        stack = [(root, iter(producers_of[root]))]
        while stack:
            name, pending = stack[-1]
            for producer in pending:
                if producer not in levels and producer not in visiting:
                    visiting.add(producer)
                    stack.append((producer, iter(producers_of[producer])))
                    break
            else:
                stack.pop()
                visiting.discard(name)
                known = [levels[p] for p in producers_of[name] if p in levels]
                levels[name] = 1 + max(known, default=-1)
    return levels


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    height: float
    line_offset: float  # where an edge runs through this box, from its top

    @property
    def line_y(self) -> float:
        return self.y + self.line_offset


# kind -> (height, line offset). A "label" slot holds an edge's label above its line; a
# "via" slot is where an edge crosses a column without stopping.
_SLOT_SIZES = {"node": (_NODE_HEIGHT, _NODE_HEIGHT / 2), "label": (24, 18), "via": (8, 4)}


def _fit(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max(max_chars - 1, 1)] + "\u2026"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _fmt(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")


class _Layout:
    """Columns, row order and coordinates of nodes and of the slots edges pass through.

    Level ``n`` is column ``2n``; the odd columns between them hold edge labels, so every
    label gets its own slot and labels never overlap (the approach of layered layouts
    such as dagre, which treat labels as nodes).
    """

    def __init__(self, names: list[str], edges: list[DagEdge], levels: dict[str, int]):
        longest_name = max((len(n) for n in names), default=0)
        longest_label = max((len(", ".join(e.keys)) for e in edges), default=0)
        self.node_width = _clamp(longest_name * _NAME_CHAR_PX + 28, 150, 260)
        self.label_width = _clamp(longest_label * _LABEL_CHAR_PX + 16, 40, 210)
        self.label_px = {
            i: len(", ".join(e.keys)) * _LABEL_CHAR_PX + 10 for i, e in enumerate(edges)
        }
        columns: dict[int, list[tuple]] = {2 * level: [] for level in levels.values()}
        columns.update({column - 1: [] for column in columns if column})
        for name in names:
            columns[2 * levels[name]].append(("node", name))
        self.chains: list[list[tuple]] = []
        predecessors: dict[tuple, list[tuple]] = {}
        successors: dict[tuple, list[tuple]] = {}  # item -> consumers it leads to
        for index, edge in enumerate(edges):
            first, last = 2 * levels[edge.producer], 2 * levels[edge.consumer]
            chain = [("node", edge.producer)]
            if last > first:  # edges against the flow exist only in cycles; they do not shape it
                chain.append(("label", index))
                columns[first + 1].append(("label", index))
                for column in range(first + 2, last):
                    chain.append(("via", index, column))
                    columns[column].append(("via", index, column))
            chain.append(("node", edge.consumer))
            if last > first:
                for before, after in zip(chain, chain[1:]):
                    predecessors.setdefault(after, []).append(before)
                    successors.setdefault(before, []).append(chain[-1])
            self.chains.append(chain)
        self.column_xs: list[float] = []
        x = _PAD
        for column in range(len(columns)):
            self.column_xs.append(x)
            x += self._column_width(column) + _CURVE_GAP
        self.width = max(x - _CURVE_GAP, _PAD + self.node_width) + _PAD
        # A second pass breaks ties (sources; edges leaving one producer) by where the
        # first pass put the consumers each item leads to, which uncrosses sibling edges.
        self.boxes: dict[tuple, _Box] = {}
        hints: dict[tuple, float] = {}
        for _ in range(2):
            placed, self.boxes = self.boxes, {}
            for item, after in successors.items():
                hints[item] = sum(placed[a].line_y for a in after) / len(after) if placed else 0
            for column in sorted(columns):
                self._place_column(column, columns[column], predecessors, hints)
        bottoms = [box.y + box.height for box in self.boxes.values()]
        self.height = max(bottoms, default=_PAD + 24) + _PAD

    def _column_width(self, column: int) -> float:
        return self.node_width if column % 2 == 0 else self.label_width

    def _place_column(self, column: int, items: list[tuple], predecessors: dict, hints) -> None:
        """Order by where the predecessors' lines are (fewer crossings), then stack greedily
        so that each item's line lines up with them where it can: straight edges."""

        def wanted_line(item: tuple) -> float | None:
            placed = [self.boxes[p].line_y for p in predecessors.get(item, [])]
            return sum(placed) / len(placed) if placed else None

        wanted = {item: wanted_line(item) for item in items}
        order = sorted(
            range(len(items)),
            key=lambda i: (
                wanted[items[i]] is None,
                wanted[items[i]] or 0.0,
                hints.get(items[i], 0.0),
                i,
            ),
        )
        bottom, previous = None, None
        for i in order:
            item = items[i]
            height, offset = _SLOT_SIZES[item[0]]
            gap = _NODE_GAP if "node" in (item[0], previous) else _SLOT_GAP
            lowest = _PAD if bottom is None else bottom + gap
            line = wanted[item]
            y = lowest if line is None else max(lowest, line - offset)
            x, width = self.column_xs[column], self._column_width(column)
            if item[0] == "label":  # only as wide as its text: the edge bends either side
                text_width = min(self.label_px[item[1]], width)
                x, width = x + (width - text_width) / 2, text_width
            self.boxes[item] = _Box(x, y, width, height, offset)
            bottom, previous = y + height, item[0]


def _ports(layout: _Layout) -> tuple[dict, dict]:
    """Where each edge leaves its producer and enters its consumer, spread along the sides."""
    leaving: dict[str, list[tuple[float, int]]] = {}
    entering: dict[str, list[tuple[float, int]]] = {}
    for index, chain in enumerate(layout.chains):
        leaving.setdefault(chain[0][1], []).append((layout.boxes[chain[1]].line_y, index))
        entering.setdefault(chain[-1][1], []).append((layout.boxes[chain[-2]].line_y, index))
    out_y: dict[int, float] = {}
    in_y: dict[int, float] = {}
    for ports, side in ((out_y, leaving), (in_y, entering)):
        for name, edges in side.items():
            box = layout.boxes[("node", name)]
            for rank, (_, index) in enumerate(sorted(edges)):
                ports[index] = box.y + box.height * (rank + 1) / (len(edges) + 1)
    return out_y, in_y


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    bend = (x2 - x1) / 2 if x2 > x1 else 60  # only an edge in a cycle runs backwards
    return f"C{_fmt(x1 + bend)},{_fmt(y1)} {_fmt(x2 - bend)},{_fmt(y2)} {_fmt(x2)},{_fmt(y2)}"


def _edge_svg(edge: DagEdge, chain: list[tuple], layout: _Layout, start_y, end_y, status) -> str:
    producer, consumer = layout.boxes[chain[0]], layout.boxes[chain[-1]]
    x, y = producer.x + producer.width, start_y
    path = [f"M{_fmt(x)},{_fmt(y)}"]
    for slot in chain[1:-1]:
        box = layout.boxes[slot]
        path.append(_curve(x, y, box.x, box.line_y))
        x, y = box.x + box.width, box.line_y
        path.append(f"L{_fmt(x)},{_fmt(y)}")
    path.append(_curve(x, y, consumer.x, end_y))
    label = ", ".join(edge.keys)
    if len(chain) > 2:
        slot = layout.boxes[chain[1]]
        label_x, label_y, room = slot.x + slot.width / 2, slot.y + 13, layout.label_width
    else:  # an edge in a cycle: no slot of its own, so the label sits mid-curve
        label_x = (producer.x + producer.width + consumer.x) / 2
        label_y, room = (start_y + end_y) / 2 - 5, layout.label_width
    shown = _fit(label, int(room // _LABEL_CHAR_PX))
    css_class = "edge to-skipped" if str(status).upper() == "SKIPPED" else "edge"
    return (
        f'<g class="{css_class}" data-from="{xml_text(edge.producer)}" '
        f'data-to="{xml_text(edge.consumer)}">'
        f"<title>{xml_text(edge.producer)} \u2192 {xml_text(edge.consumer)}: "
        f"{xml_text(label)}</title>"
        f'<path d="{" ".join(path)}" marker-end="url(#{_ARROW_ID})"/>'
        f'<text x="{_fmt(label_x)}" y="{_fmt(label_y)}" text-anchor="middle">'
        f"{xml_text(shown)}</text></g>"
    )


def _node_svg(position: int, step: Mapping, box: _Box, level: int) -> str:
    name = str(step.get("step_name"))
    layer = str(step.get("layer") or "-")
    status = str(step.get("status") or "UNKNOWN")
    max_chars = int((box.width - 24) // _NAME_CHAR_PX)
    meta = _fit(f"{layer} \u00b7 {status}", max_chars + 4)  # smaller font, more room
    ink = status_ink(status)
    return (
        f'<g class="node" data-step="{xml_text(name)}" data-status="{xml_text(status)}" '
        f'data-level="{level}">'
        f"<title>{xml_text(name)} ({xml_text(layer)}): {xml_text(status)}</title>"
        f'<a href="#{step_anchor_id(position)}">'
        f'<rect x="{_fmt(box.x)}" y="{_fmt(box.y)}" width="{_fmt(box.width)}" '
        f'height="{_fmt(box.height)}" rx="8" fill="{status_colour(status)}"/>'
        f'<text class="node-name" x="{_fmt(box.x + 12)}" y="{_fmt(box.y + 22)}" '
        f'fill="{ink}">{xml_text(_fit(name, max_chars))}</text>'
        f'<text class="node-meta" x="{_fmt(box.x + 12)}" y="{_fmt(box.y + 40)}" '
        f'fill="{ink}">{xml_text(meta)}</text>'
        f"</a></g>"
    )


def render_dag_svg(lineage: Mapping) -> str:
    """The run's DAG as a standalone ``<svg>`` element (also valid inline in HTML)."""
    steps = unique_steps(lineage)
    names = [str(step.get("step_name")) for _, step in steps]
    edges = lineage_edges([step for _, step in steps])
    levels = dependency_levels(names, edges)
    layout = _Layout(names, edges, levels)
    status_of = {str(step.get("step_name")): step.get("status") for _, step in steps}
    out_y, in_y = _ports(layout)
    width, height = _fmt(layout.width), _fmt(layout.height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="odibi-dag" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        # Inline in a page it may shrink to fit, but no further than stays legible.
        f'style="min-width:{_fmt(layout.width * 0.7)}px" '
        f'aria-label="DAG of {len(names)} steps">',
        f"<style>{_STYLE}</style>",
        f'<defs><marker id="{_ARROW_ID}" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#78909c"/></marker></defs>',
    ]
    for index, (edge, chain) in enumerate(zip(edges, layout.chains)):
        status = status_of[edge.consumer]
        parts.append(_edge_svg(edge, chain, layout, out_y[index], in_y[index], status))
    for position, step in steps:
        name = str(step.get("step_name"))
        parts.append(_node_svg(position, step, layout.boxes[("node", name)], levels[name]))
    if not names:
        parts.append(f'<text x="{_PAD}" y="{_PAD + 14}">This run has no steps.</text>')
    parts.append("</svg>")
    return "".join(parts)
