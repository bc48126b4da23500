"""The run report opened in headless Chromium: it renders, and the DAG shows its colours."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from odibi_core.report import write_report
from odibi_core.report.svg import STATUS_COLOURS

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1400, 1000


def _step(name, layer, status, inputs, outputs, rows, *, duration_ms=1200, **extra):
    after_schema = ["customer_id: int64", "name: string", "email: string"]
    return {
        "step_name": name,
        "layer": layer,
        "engine": "pandas",
        "engine_reason": "auto: ~1,000 rows, below the 1,000,000-row Spark threshold",
        "status": status,
        "start_time": "2024-05-01T12:00:01+00:00",
        "end_time": "2024-05-01T12:00:05+00:00",
        "duration_ms": duration_ms,
        "attempts": 1,
        "error_message": None,
        "attempt_errors": [],
        "inputs": inputs,
        "outputs": outputs,
        "before_snapshot": {"schema": [], "row_count": 0, "sample": []},
        "after_snapshot": {
            "schema": after_schema if rows is not None else [],
            "row_count": rows,
            "sample": [
                {"customer_id": 1, "name": "Alice", "email": "***"},
                {"customer_id": 2, "name": "Bob", "email": "***"},
            ]
            if rows
            else [],
            "count_source": "exact" if rows is not None else None,
            "sample_source": "in_memory" if rows else None,
        },
        "input_snapshots": {},
        "schema_diff": {
            "added": ["customer_id", "name", "email"] if rows and not inputs else [],
            "removed": [],
            "changed": [],
        },
        "row_delta": rows,
        **extra,
    }


def realistic_lineage() -> dict:
    steps = [
        _step("read_customers", "ingest", "SUCCESS", {}, {"data": "raw_customers"}, 1000),
        _step("read_orders", "ingest", "SUCCESS", {}, {"data": "raw_orders"}, 5000),
        _step(
            "clean_customers",
            "transform",
            "SUCCESS",
            {"bronze": "raw_customers"},
            {"data": "customers"},
            990,
            schema_diff={
                "added": ["is_active"],
                "removed": ["email"],
                "changed": [{"column": "customer_id", "old_type": "int32", "new_type": "int64"}],
            },
            quality=[
                {
                    "name": "has_id",
                    "rule": "customer_id IS NOT NULL",
                    "on_violation": "drop",
                    "passed": 990,
                    "failed": 10,
                },
                {
                    "name": "valid_email",
                    "rule": "email LIKE '%@%'",
                    "on_violation": "warn",
                    "passed": 990,
                    "failed": 0,
                },
                {
                    "name": "one_per_id",
                    "rule": "unique (customer_id)",
                    "on_violation": "fail",
                    "passed": 989,
                    "failed": 1,
                },
            ],
        ),
        _step(
            "join_orders",
            "transform",
            "FAILED",
            {"orders": "raw_orders", "customers": "customers"},
            {"data": "joined"},
            None,
            attempts=3,
            error_message="step 'join_orders' failed: Binder Error: column 'amount' not found",
        ),
        _step("save_joined", "store", "SKIPPED", {"data": "joined"}, {}, None, duration_ms=None),
        _step("publish_customers", "publish", "SUCCESS", {"data": "customers"}, {}, 990),
    ]
    return {
        "pipeline_name": "customer_pipeline",
        "run_id": "20240501T120000_a1b2c3",
        "execution_id": "20240501T120000_a1b2c3.1",
        "start_time": "2024-05-01T12:00:00.123456+00:00",
        "end_time": "2024-05-01T12:05:30.123456+00:00",
        "total_duration_ms": 330000,
        "status": "FAILED",
        "odibi_version": "0.1.0",
        "summary": {
            "total_steps": 6,
            "success_count": 4,
            "failed_count": 1,
            "skipped_count": 1,
            "cached_count": 0,
            "nodes_executed": 5,
        },
        "steps": steps,
    }


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
    if pa <= pb and pa <= pc:
        return left
    return up if pb <= pc else up_left


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, unfiltered rows, bytes per pixel) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    offset, idat, header = 8, b"", None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert (depth, interlace) == (8, 0) and colour_type in (2, 6)
    pixel = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * pixel
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(pixel, stride):
                line[i] = (line[i] + line[i - pixel]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - pixel] if i >= pixel else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - pixel] if i >= pixel else 0
                up_left = previous[i - pixel] if i >= pixel else 0
                line[i] = (line[i] + _paeth(left, previous[i], up_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows, pixel


def _colour_counts(rows: list[bytes], pixel: int) -> dict[tuple[int, int, int], int]:
    counts: dict[tuple[int, int, int], int] = {}
    for row in rows:
        for i in range(0, len(row), pixel):
            rgb = (row[i], row[i + 1], row[i + 2])
            counts[rgb] = counts.get(rgb, 0) + 1
    return counts


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _near(counts: dict, target: tuple[int, int, int], tolerance: int = 3) -> int:
    return sum(
        n for rgb, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(rgb, target))
    )


class _ClassCounter(HTMLParser):
    """Counts elements per class, and the data-step values of step cards and svg nodes."""

    def __init__(self):
        super().__init__()
        self.cards: list[str] = []
        self.nodes: list[str] = []
        self.svg_count = 0
        self.quality_rows: list[str] = []  # each expectation row's class

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "svg":
            self.svg_count += 1
        if tag == "article" and "step-card" in classes:
            self.cards.append(attributes["data-step"])
        if tag == "g" and "node" in classes:
            self.nodes.append(attributes["data-step"])
        if tag == "tr" and self.cards and self.cards[-1] == "clean_customers":
            self.quality_rows.append(" ".join(classes))


@pytest.fixture
def report_file(tmp_path) -> Path:
    if CHROMIUM is None:
        # In CI the test command installs Chromium, so its absence there is a failure.
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is not on PATH in CI; scripts/ensure-chromium.sh should have installed it"
            )
        pytest.skip("chromium is not on PATH; install it with scripts/ensure-chromium.sh")
    return write_report(realistic_lineage(), tmp_path / "out" / "report.html")


def test_screenshot_shows_the_dag_in_status_colours(report_file, tmp_path):
    png = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={png}", report_file.as_uri())

    width, height, rows, pixel = decode_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    counts = _colour_counts(rows, pixel)
    assert len(counts) > 50, f"screenshot looks blank: {len(counts)} distinct colours"
    # Each node is 52px tall and at least 150px wide: thousands of fill pixels per node.
    success_pixels = _near(counts, _rgb(STATUS_COLOURS["SUCCESS"]))
    failed_pixels = _near(counts, _rgb(STATUS_COLOURS["FAILED"]))
    skipped_pixels = _near(counts, _rgb(STATUS_COLOURS["SKIPPED"]))
    assert success_pixels > 3 * 5000
    assert failed_pixels > 5000
    assert skipped_pixels > 5000


def test_rendered_dom_has_a_card_and_a_node_per_step(report_file, tmp_path):
    dom = _chromium(tmp_path, "--dump-dom", report_file.as_uri()).stdout

    parser = _ClassCounter()
    parser.feed(dom)
    names = [step["step_name"] for step in realistic_lineage()["steps"]]
    assert parser.cards == names
    assert sorted(parser.nodes) == sorted(names)
    assert parser.svg_count == 1
    assert "Binder Error: column 'amount' not found" in dom
    # The step's expectations (header, three rules), then its sample (header, two rows):
    # the rules with failing rows are highlighted, in red where they fail the step.
    assert parser.quality_rows[:4] == ["", "violated", "", "violated fail"]
