"""The cache: step outputs kept in Delta under a key of everything that decides them.

An entry is one step's result under one cache key (see ``execution.caching`` for how the
key is made): the Delta tables holding its outputs, or for a store the target and the
version it committed. Entries are rows of ``odibi_cache``; the data sits in tables named by
``state_table_name("cache", ...)``, never pickled. A run reads the pipeline's entries once
when it starts, writes the data of each miss as the step finishes, and when it ends commits
its new entries in one append and its hits in another, to ``odibi_cache_hits`` (one row per
hit). A hit is appended rather than counted in its entry's row: an UPDATE scans and
rewrites the entry's file, three times the cost of an append, and a fully cached run would
spend most of its time on it. ``with_hits`` adds the two up for the cache commands.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core.core.config import StateLocation
from odibi_core.state.data_tables import read_frame, save_frame
from odibi_core.state.location import (
    CACHE_TABLE,
    StateTableRef,
    StateTables,
    state_table_name,
)
from odibi_core.state.table import DeltaStateTable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# ``tables`` is the JSON list of the data tables an entry owns (housekeeping drops them);
# ``outputs`` maps each data key (``""`` for a store's target) to where it is held.
CACHE_COLUMNS = (
    ("key", "string"),
    ("pipeline", "string"),
    ("step", "string"),
    ("tables", "string"),
    ("outputs", "string"),
    ("rows", "long"),
    ("bytes", "long"),
    ("created", "timestamp"),
    ("last_hit", "timestamp"),
    ("hits", "long"),
    ("odibi_version", "string"),
)
# One row per hit of an entry. ``hits`` and ``last_hit`` of ``odibi_cache`` keep what
# releases that updated the entry's row recorded.
CACHE_HIT_COLUMNS = (
    ("pipeline", "string"),
    ("key", "string"),
    ("hit_at", "timestamp"),
    ("execution_id", "string"),
)
STORE_OUTPUT = ""  # the data key under which a store's committed target is recorded


@dataclass(frozen=True)
class Held:
    """Where one output of a cache entry is: a table (or a store's target) and its version.

    ``fingerprint`` is set for a store's target: the target's state right after the commit,
    which must still hold for the entry to be used.
    """

    table: str
    version: int | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class CacheEntry:
    key: str
    pipeline: str
    step: str
    outputs: Mapping[str, Held]  # data key (STORE_OUTPUT for a store) -> where it is held
    rows: int | None = None


class CacheManager:
    """One pipeline's cache entries under a state location."""

    def __init__(
        self,
        location: StateLocation,
        *,
        pipeline: str,
        spark_provider: Callable[[], SparkSession],
        warehouse: str | Path | None = None,
    ):
        self.tables = StateTables(location, warehouse=warehouse)
        self.pipeline = pipeline
        self.index = DeltaStateTable(
            self.tables.ref(CACHE_TABLE),
            CACHE_COLUMNS,
            spark_provider=spark_provider,
            stats_columns=("pipeline", "key"),
        )
        self.hit_log = hit_log(self.tables, spark_provider)
        self._lock = threading.Lock()
        self._entries: dict[str, CacheEntry] | None = None
        self._new: list[dict[str, Any]] = []
        self._hits: set[str] = set()

    # ------------------------------------------------------------------ lookups
    def entries(self) -> dict[str, CacheEntry]:
        """The pipeline's entries by key, read once (the first lookup reads the index)."""
        with self._lock:
            if self._entries is None:
                rows = self.index.read({"pipeline": self.pipeline})
                rows.sort(key=lambda row: row["created"])  # a later entry of a key wins
                self._entries = {row["key"]: cache_entry(row) for row in rows}
            return self._entries

    def lookup(self, key: str) -> CacheEntry | None:
        return self.entries().get(key)

    def data_table(self, key: str, data_key: str) -> StateTableRef:
        """The Delta table that holds ``data_key`` under cache key ``key``."""
        return state_table_name("cache", self.pipeline, f"{key}_{data_key}", location=self.tables)

    # ------------------------------------------------------------------ data
    def save(self, frame: Any, key: str, data_key: str, *, spark_engine: Any, step: str) -> Held:
        """Write ``frame`` (pandas or Spark) to its cache table; where it now is."""
        ref = self.data_table(key, data_key)
        return Held(*save_frame(ref, frame, spark_engine=spark_engine, step=step))

    def restore(self, held: Held, *, engine: Any, step: str) -> Any:
        """The frame a cache table holds, as ``engine``'s frame (pandas or Spark)."""
        return read_frame(
            self.tables,
            held.table,
            held.version,
            engine=engine,
            step=step,
            what="its cache entry",
            fix=f"clear it with odibi cache clear --step {step}",
        )

    # ------------------------------------------------------------------ bookkeeping
    def add(self, key: str, step: str, outputs: Mapping[str, Held], rows: int | None) -> None:
        """Remember a new entry; ``flush`` commits it."""
        from odibi_core import __version__

        now = datetime.now(timezone.utc)
        row = {
            "key": key,
            "pipeline": self.pipeline,
            "step": step,
            "tables": json.dumps(
                [h.table for k, h in outputs.items() if k != STORE_OUTPUT], sort_keys=True
            ),
            "outputs": json.dumps(
                {k: [h.table, h.version, h.fingerprint] for k, h in outputs.items()},
                sort_keys=True,
            ),
            "rows": rows,
            "bytes": None,
            "created": now,
            "last_hit": None,
            "hits": 0,
            "odibi_version": __version__,
        }
        with self._lock:
            self._new.append(row)
            if self._entries is not None:
                self._entries[key] = cache_entry(row)

    def hit(self, key: str) -> None:
        with self._lock:
            self._hits.add(key)

    def flush(self, *, execution_id: str) -> None:
        """Commit the run's new entries and its hits: one append each, once per execution."""
        with self._lock:
            new, hits = list(self._new), sorted(self._hits)
            self._new.clear()
            self._hits.clear()
        if new:
            self.index.append(new, txn_app_id=f"odibi:cache:{execution_id}", txn_version=0)
        if hits:
            now = datetime.now(timezone.utc)
            self.hit_log.append(
                [
                    {
                        "pipeline": self.pipeline,
                        "key": key,
                        "hit_at": now,
                        "execution_id": execution_id,
                    }
                    for key in hits
                ],
                txn_app_id=f"odibi:cache-hits:{execution_id}",
                txn_version=0,
            )


def hit_log(tables: StateTables, spark_provider: Callable[[], SparkSession]) -> DeltaStateTable:
    """The ``odibi_cache_hits`` table of a state location."""
    return DeltaStateTable(
        tables.cache_hits,
        CACHE_HIT_COLUMNS,
        spark_provider=spark_provider,
        stats_columns=("pipeline", "key"),
    )


def with_hits(
    entries: Sequence[Mapping[str, Any]], hits: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``entries`` (rows of ``odibi_cache``) with ``hits`` and ``last_hit`` counting the
    rows of ``odibi_cache_hits`` as well as what the entry's own row recorded.

    Only hits since an entry was created count: a cleared entry's hits stay in the log
    (``odibi state vacuum`` removes them), and an entry made again under the same key
    starts from none.
    """
    logged: dict[tuple[Any, Any], list[datetime]] = {}
    for hit in hits:
        if hit["hit_at"] is not None:
            logged.setdefault((hit["pipeline"], hit["key"]), []).append(hit["hit_at"])
    rows = []
    for entry in entries:
        since = entry["created"]
        times = [
            t
            for t in logged.get((entry["pipeline"], entry["key"]), [])
            if since is None or t >= since
        ]
        last = [t for t in (entry["last_hit"], *times) if t is not None]
        rows.append(
            {
                **entry,
                "hits": (entry["hits"] or 0) + len(times),
                "last_hit": max(last) if last else None,
            }
        )
    return rows


def cache_entry(row: Mapping[str, Any]) -> CacheEntry:
    outputs = json.loads(row["outputs"] or "{}")
    return CacheEntry(
        key=row["key"],
        pipeline=row["pipeline"],
        step=row["step"],
        outputs={k: Held(*value) for k, value in outputs.items()},
        rows=row["rows"],
    )
