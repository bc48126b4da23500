"""Checkpoint, handoff and cache data tables: predictable names, never raw user text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odibi_core.core.config import StateLocation
from odibi_core.core.errors import StateError
from odibi_core.state.location import (
    StateTables,
    data_table_identifier,
    name_part,
    state_table_name,
)

SAFE_NAME = re.compile(r"[a-z][a-z0-9_]*")
PART = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")


@pytest.fixture(autouse=True)
def _not_on_databricks(monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)


def test_clean_parts_are_kept_and_a_checkpoint_is_named_by_pipeline_run_and_key(tmp_path):
    tables = StateTables(StateLocation(schema="ops", catalog="main"), warehouse=tmp_path)
    ref = state_table_name("checkpoint", "sales", "orders", "run_42", location=tables)
    assert ref.name == "main.ops.odibi_ckpt__sales__run_42__orders"
    assert ref.path == tmp_path.resolve() / "main" / "ops" / "odibi_ckpt__sales__run_42__orders"


def test_a_handoff_is_the_checkpoint_table_and_a_cache_table_has_no_run(tmp_path):
    tables = StateTables(StateLocation(schema="ops"), warehouse=tmp_path, catalog_tables=True)
    handoff = state_table_name("handoff", "sales", "orders", "r1", location=tables)
    assert handoff == state_table_name("checkpoint", "sales", "orders", "r1", location=tables)
    assert handoff.path is None
    cache = state_table_name("cache", "sales", "k" * 64, location=tables)
    assert cache.name == "ops.odibi_cachedata__sales__" + "k" * 64


def test_unclean_text_is_cleaned_and_followed_by_a_hash():
    assert name_part("a_b", limit=48) == "a_b"
    dashed = name_part("a-b", limit=48)
    assert re.fullmatch(r"a_b_h[0-9a-f]{12}", dashed)
    assert name_part("Orders", limit=48).startswith("orders_h")
    assert re.fullmatch(r"h[0-9a-f]{12}", name_part("日本", limit=48))
    # Text that merely looks like a hashed part is hashed itself, so it cannot collide.
    assert name_part(dashed, limit=48) != dashed
    # Injection attempts never reach a name.
    assert PART.fullmatch(name_part("x`; DROP TABLE t; --", limit=48))


def test_wrong_kinds_and_missing_run_ids_are_refused():
    with pytest.raises(StateError, match="kind 'checkpoints' is unknown; use one of checkpoint"):
        data_table_identifier("checkpoints", "p", "k", "r")  # type: ignore[arg-type]
    with pytest.raises(StateError, match="a checkpoint table needs the run id"):
        data_table_identifier("checkpoint", "p", "k", None)
    with pytest.raises(StateError, match="a cache table takes no run id"):
        data_table_identifier("cache", "p", "k", "r")
    with pytest.raises(StateError, match="non-empty text"):
        name_part("", limit=10)


# Near misses (a-b, a_b, A_b, a__b, é) are the collisions to avoid; long text must be cut.
texts = st.one_of(
    st.text(alphabet="ab_-A.é", min_size=1, max_size=8),
    st.text(min_size=1, max_size=400),
)


@settings(max_examples=400, deadline=None)
@given(texts, texts)
def test_distinct_parts_never_collide_and_are_safe(a, b):
    left, right = name_part(a, limit=48), name_part(b, limit=48)
    assert PART.fullmatch(left) and len(left) <= 48
    assert (left == right) == (a == b)


@settings(max_examples=300, deadline=None)
@given(st.tuples(texts, texts, texts), st.tuples(texts, texts, texts))
def test_distinct_checkpoints_get_distinct_names_under_the_catalog_limit(x, y):
    left, right = data_table_identifier("checkpoint", *x), data_table_identifier("checkpoint", *y)
    assert SAFE_NAME.fullmatch(left) and len(left) < 255
    assert (left == right) == (x == y)


def test_long_keys_sharing_a_beginning_differ():
    first, second = "k" * 500 + "1", "k" * 500 + "2"
    names = {data_table_identifier("cache", "p", key, None) for key in (first, second)}
    assert len(names) == 2 and all(len(name) < 255 for name in names)


def test_only_this_locations_data_tables_are_recognised(tmp_path):
    tables = StateTables(StateLocation(schema="ops"), warehouse=tmp_path)
    ref = state_table_name("checkpoint", "p", "k", "r", location=tables)
    assert tables.data_table_ref(str(ref.path)) == ref
    assert tables.data_table_ref(ref.name) == ref
    assert tables.data_table_ref("ops.odibi_cache") is None  # the cache index itself
    assert tables.data_table_ref("sales.odibi_ckpt__p__r__k") is None  # another schema
    assert tables.data_table_ref(str(tmp_path / "elsewhere" / ref.path.name)) is None
    assert tables.data_table_ref("main.sales.orders") is None  # a store's target
