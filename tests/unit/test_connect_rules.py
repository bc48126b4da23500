"""Spark Connect without a JVM: telling a Connect object apart, reading limits from the
plan text, and no JVM handle touched outside code kept for classic sessions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from odibi_core.engine.connect import deliver_flows, is_connect, wait_for_flow
from odibi_core.engine.observed import ObservedCount, under_limits_in_plan_text

SRC = Path(__file__).resolve().parents[2] / "src" / "odibi_core"
JVM_HANDLES = {"_jvm", "_jsc", "_jdf", "_jo", "sparkContext"}
# The functions allowed to touch them: each runs only for a classic session. A new one is
# added here after checking that a Spark Connect session can never reach it.
CLASSIC_ONLY = {
    # called by ObservedCount / observations_under_limits after is_connect said no
    ("engine/observed.py", "_classic_under_limits"),
    ("engine/observed.py", "_classic_fired"),
    ("engine/observed.py", "_classic_completed"),
    ("engine/observed.py", "_drain_listener_bus"),
    # the local classic session's own start-up, after the framework built it
    ("engine/session.py", "_local_session"),
    # asks a Connect session's own is_stopped first
    ("engine/session.py", "_is_stopped"),
}


def _handles_outside_classic_functions(path: Path) -> list[str]:
    """``module:function:line handle`` for each JVM handle used outside CLASSIC_ONLY."""
    module = path.relative_to(SRC).as_posix()
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        names = []
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.append(node.value)  # getattr(x, "_jo")
        for name in names:
            if name in JVM_HANDLES and (module, function) not in CLASSIC_ONLY:
                found.append(f"{module}:{function}:{node.lineno} {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text()), None)
    return found


def test_jvm_handles_are_used_only_in_functions_kept_for_classic_sessions():
    found = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        for hit in _handles_outside_classic_functions(path)
    ]
    assert found == []


class _ConnectLike:
    """Stands in for pyspark.sql.connect classes: is_connect reads only the class's module
    (a real Connect session needs a server: tests/connect has those)."""


_ConnectLike.__module__ = "pyspark.sql.connect.dataframe"


def test_is_connect_reads_the_class_only():
    assert is_connect(_ConnectLike())
    assert not is_connect(None) and not is_connect(object()) and not is_connect("x")


PLAN = """== Parsed Logical Plan ==
'GlobalLimit 3
+- 'CollectMetrics parsed_rows, [count(1) AS rows#1], 1

== Analyzed Logical Plan ==
customer: string, total: double
Join Inner, (a#1 = b#2)
:- GlobalLimit 3
:  +- LocalLimit 3
:     +- CollectMetrics odibi_limited_1a2b3c4d_rows, [count(1) AS rows#508L], 1
:        +- Range (0, 10, step=1, splits=Some(4))
+- CollectMetrics odibi_whole_5e6f7a8b_rows, [count(1) AS rows#509L], 2
   +- Sample 0.0, 0.5, false, 1
      +- CollectMetrics odibi_sampled_9c0d1e2f_rows, [count(1) AS rows#510L], 3
         +- Range (0, 10, step=1, splits=Some(4))

== Optimized Logical Plan ==
CollectMetrics optimized_rows, [count(1) AS rows#1], 1
"""


def test_limits_are_read_from_the_analysed_plan_text():
    assert under_limits_in_plan_text(PLAN) == {
        "odibi_limited_1a2b3c4d_rows",
        "odibi_sampled_9c0d1e2f_rows",
    }
    assert under_limits_in_plan_text("== Analyzed Logical Plan ==\nRange (0, 1)\n") == set()


class _ConnectObservation:
    """A Connect Observation's public surface: ``get`` returns at once, ``{}`` until an
    action has returned (pyspark.sql.connect.observation)."""

    def __init__(self, result):
        self.get = result


@pytest.mark.parametrize(
    ("filled", "delivered", "expected"),
    [({"rows": 7}, None, 7), ({}, {"rows": 4}, 4), ({}, None, None)],
)
def test_a_connect_count_is_read_without_waiting(filled, delivered, expected):
    count = ObservedCount(_ConnectObservation(filled), f"n_{expected}_{id(filled)}", connect=True)
    if delivered is not None:
        frame = _ConnectLike()
        frame.executionInfo = type("Info", (), {"flows": [(count.name, delivered)]})()
        deliver_flows(frame)
    assert count.fired() is (expected is not None)
    assert count.get(timeout=0.01) == expected
    if expected is None:
        assert count.reason.startswith("no action over this output returned its metrics")


def test_flows_reach_only_the_count_they_name():
    waiting = ObservedCount(_ConnectObservation({}), "odibi_a_rows", connect=True)
    other = ObservedCount(_ConnectObservation({}), "odibi_b_rows", connect=True)
    wait_for_flow("odibi_a_rows", waiting)
    frame = _ConnectLike()
    frame.executionInfo = type("Info", (), {"flows": [("odibi_a_rows", {"rows": 2})]})()
    deliver_flows(frame)
    assert (waiting.get(0.01), other.get(0.01)) == (2, None)
