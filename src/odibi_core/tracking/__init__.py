"""Tracking: the tracker's step records, snapshots and lineage."""
