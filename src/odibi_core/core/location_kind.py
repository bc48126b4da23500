"""What kind of place a step's path names: a local path, a Volumes path, or a URI.

The engines differ in what they can reach. Spark reads and writes every kind through its
own file systems, and must get the value exactly as written. Python's file functions (the
pandas engine, the framework's own checks before a read or write) reach a local path, a
``file:`` URI and, on Databricks, a ``/Volumes/...`` path through its FUSE mount; a
``dbfs:/`` or cloud URI is Spark's alone. Classifying is string work only: nothing here
touches a file system.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

# A scheme of two or more letters, then ":/": "C:/data" and "C:\\data" are Windows drives,
# and "runs:v2/x.csv" is a relative path, not URIs.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")
_CLOUD_SCHEMES = frozenset(
    {"abfs", "abfss", "adl", "gs", "s3", "s3a", "s3n", "wasb", "wasbs", "oss", "r2"}
)


class LocationKind(str, Enum):
    """A place, named as a user would name it."""

    LOCAL_PATH = "local path"  # data/x.csv, /tmp/x.csv, C:\\data\\x.csv
    VOLUMES_PATH = "Volumes path"  # /Volumes/<catalog>/<schema>/<volume>/...
    FILE_URI = "file: URI"  # file:///tmp/x.csv
    DBFS_URI = "DBFS URI"  # dbfs:/tmp/x.csv
    CLOUD_URI = "cloud URI"  # abfss://, s3://, s3a://, gs://, wasbs://, ...
    OTHER_URI = "URI"  # hdfs://, http://, ...: only Spark may know the scheme

    @property
    def is_uri(self) -> bool:
        return self in (self.FILE_URI, self.DBFS_URI, self.CLOUD_URI, self.OTHER_URI)

    @property
    def python_readable(self) -> bool:
        """Reachable with Python's own file functions (Volumes through the FUSE mount)."""
        return self in (self.LOCAL_PATH, self.VOLUMES_PATH, self.FILE_URI)

    @property
    def on_local_disk(self) -> bool:
        """On this machine's own disk, where listing a folder is cheap and certain."""
        return self in (self.LOCAL_PATH, self.FILE_URI)


def location_kind(value: str) -> LocationKind:
    """The kind of ``value``: a path or URI as written in a step (not yet resolved)."""
    match = _SCHEME.match(value)
    if match is None:
        return LocationKind.VOLUMES_PATH if _is_volumes(value) else LocationKind.LOCAL_PATH
    scheme = match.group(1).lower()
    if scheme == "file":
        return LocationKind.FILE_URI
    if scheme == "dbfs":
        return LocationKind.DBFS_URI
    if scheme in _CLOUD_SCHEMES:
        return LocationKind.CLOUD_URI
    return LocationKind.OTHER_URI


def file_uri_path(value: str) -> Path:
    """The local path of a ``file:`` URI, read as Spark (Hadoop's ``Path``) reads it.

    Escapes are not decoded: Spark reads ``file:///tmp/a%20b`` as the folder ``a%20b``,
    so both engines must; a space is written as a space (``file:///tmp/a b``).
    """
    return Path(urlsplit(value).path or "/")


def pandas_cannot_reach(value: str, *, writing: bool = False) -> str | None:
    """Why the pandas engine cannot read or write ``value``, and the fix; None if it can.

    ``engine: auto`` is offered for a read only: it sizes a step by what it reads.
    """
    kind = location_kind(value)
    if kind.python_readable:
        return None
    auto = "" if writing else " (engine: auto picks spark for it)"
    return (
        f"it is a {kind.value}, which only the Spark engine reaches; set engine: spark "
        f"on this step{auto}"
    )


def _is_volumes(value: str) -> bool:
    return value == "/Volumes" or value.startswith("/Volumes/")
