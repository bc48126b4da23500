"""A cache entry's hits: what its own row recorded plus its rows in the hit log since it
was created."""

from datetime import datetime, timedelta, timezone

from odibi_core.state.cache import with_hits

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _entry(key, created, hits=0, last_hit=None):
    return {"pipeline": "p", "key": key, "step": key, "created": created, "hits": hits,
            "last_hit": last_hit}  # fmt: skip


def _hit(key, at, pipeline="p"):
    return {"pipeline": pipeline, "key": key, "hit_at": at, "execution_id": "e"}


def test_hits_add_the_log_to_the_row_and_ignore_hits_before_the_entry_was_made():
    entries = [
        _entry("legacy", T0, hits=3, last_hit=T0 + timedelta(days=1)),  # an UPDATE-era row
        _entry("again", T0 + timedelta(days=5)),  # cleared, then made again under its key
        _entry("never", T0),
    ]
    hits = [
        _hit("legacy", T0 + timedelta(days=2)),
        _hit("again", T0 + timedelta(days=4)),  # the cleared entry's hit
        _hit("again", T0 + timedelta(days=6)),
        _hit("again", T0 + timedelta(days=7)),
        _hit("never", T0 + timedelta(days=9), pipeline="other"),  # another pipeline's key
    ]
    counted = {row["key"]: (row["hits"], row["last_hit"]) for row in with_hits(entries, hits)}
    assert counted == {
        "legacy": (4, T0 + timedelta(days=2)),
        "again": (2, T0 + timedelta(days=7)),
        "never": (0, None),
    }
    assert with_hits(entries, [])[0] == entries[0]
