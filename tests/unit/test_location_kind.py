"""Which kind of place a step's path names, and what each engine is given for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from odibi_core.core.location_kind import (
    LocationKind,
    file_uri_path,
    location_kind,
    pandas_cannot_reach,
)
from odibi_core.core.locations import local_disk_path, local_path, resolve_path

LOCAL = LocationKind.LOCAL_PATH
VOLUMES = LocationKind.VOLUMES_PATH
FILE = LocationKind.FILE_URI
DBFS = LocationKind.DBFS_URI
CLOUD = LocationKind.CLOUD_URI
OTHER = LocationKind.OTHER_URI

EXAMPLES = [
    ("data/orders.csv", LOCAL),
    ("./orders.csv", LOCAL),
    ("../shared/orders", LOCAL),
    ("orders", LOCAL),
    ("/tmp/orders.csv", LOCAL),
    ("~/orders.csv", LOCAL),
    ("/dbfs/mnt/raw/orders.csv", LOCAL),  # the DBFS FUSE mount: a path to Python
    ("/Workspace/Users/me/data.csv", LOCAL),
    ("C:\\data\\orders.csv", LOCAL),  # a Windows drive is not a one-letter scheme
    ("C:/data/orders.csv", LOCAL),
    ("c:orders.csv", LOCAL),
    ("\\\\server\\share\\orders.csv", LOCAL),
    ("runs:v2/orders.csv", LOCAL),  # a colon in a relative path, no ":/"
    ("Volumes/main/raw/files/x.csv", LOCAL),  # relative: not a Volume
    ("/volumes/main/raw/files/x.csv", LOCAL),  # Volumes paths are case-sensitive
    ("/VolumesBackup/x.csv", LOCAL),
    ("/Volumes/main/raw/files/orders.csv", VOLUMES),
    ("/Volumes/main/raw/files", VOLUMES),
    ("/Volumes", VOLUMES),
    ("file:///tmp/orders.csv", FILE),
    ("file:/tmp/orders.csv", FILE),
    ("FILE:///C:/data/orders.csv", FILE),
    ("dbfs:/mnt/raw/orders.csv", DBFS),
    ("dbfs:/Volumes/main/raw/files/x.csv", DBFS),
    ("DBFS:/tmp", DBFS),
    ("abfss://raw@account.dfs.core.windows.net/orders", CLOUD),
    ("abfs://raw@account.dfs.core.windows.net/orders", CLOUD),
    ("wasbs://raw@account.blob.core.windows.net/orders", CLOUD),
    ("s3://bucket/orders/", CLOUD),
    ("s3a://bucket/orders/", CLOUD),
    ("S3://bucket/orders/", CLOUD),
    ("gs://bucket/orders.parquet", CLOUD),
    ("hdfs://namenode:8020/orders", OTHER),
    ("https://example.com/orders.csv", OTHER),
]


@pytest.mark.parametrize(("value", "kind"), EXAMPLES)
def test_each_location_is_named_as_a_user_would_name_it(value, kind):
    assert location_kind(value) is kind


def test_what_each_kind_allows():
    reachable = {k for k in LocationKind if k.python_readable}
    on_disk = {k for k in LocationKind if k.on_local_disk}
    uris = {k for k in LocationKind if k.is_uri}
    assert reachable == {LOCAL, VOLUMES, FILE}
    assert on_disk == {LOCAL, FILE}
    assert uris == {FILE, DBFS, CLOUD, OTHER}
    assert [k.value for k in LocationKind] == [
        "local path",
        "Volumes path",
        "file: URI",
        "DBFS URI",
        "cloud URI",
        "URI",
    ]


def test_a_file_uri_names_its_local_path():
    # As Spark reads it: escapes stay as written, a space is a space.
    assert file_uri_path("file:///tmp/a%20b/x.csv") == Path("/tmp/a%20b/x.csv")
    assert file_uri_path("file:///tmp/a b/x.csv") == Path("/tmp/a b/x.csv")
    assert file_uri_path("file:/tmp/x.csv") == Path("/tmp/x.csv")
    assert file_uri_path("file://localhost/tmp/x.csv") == Path("/tmp/x.csv")


def test_the_pandas_engine_is_told_which_kinds_only_spark_reaches():
    assert pandas_cannot_reach("/Volumes/main/raw/files/x.csv") is None
    assert pandas_cannot_reach("file:///tmp/x.csv") is None
    assert pandas_cannot_reach("data/x.csv") is None
    assert pandas_cannot_reach("s3://bucket/x.csv") == (
        "it is a cloud URI, which only the Spark engine reaches; set engine: spark on this "
        "step (engine: auto picks spark for it)"
    )
    assert pandas_cannot_reach("dbfs:/mnt/x.csv", writing=True) == (
        "it is a DBFS URI, which only the Spark engine reaches; set engine: spark on this step"
    )


@pytest.mark.parametrize(
    "value",
    [
        "s3://bucket/x.csv",
        "s3a://bucket/x/",
        "dbfs:/mnt/raw/x.csv",
        "abfss://raw@account.dfs.core.windows.net/a/../b",
        "gs://bucket//double/slash",
        "/Volumes/main/raw/files/../other//x.csv",
        "file:///tmp/x.csv",
    ],
)
def test_uris_and_volumes_paths_reach_the_engine_exactly_as_written(tmp_path, value):
    target, _ = resolve_path(value, tmp_path)
    assert target == value


def test_local_paths_resolve_against_the_base_and_uris_keep_no_local_path(tmp_path):
    assert resolve_path("data/x.csv", tmp_path) == (
        str(tmp_path / "data" / "x.csv"),
        tmp_path / "data" / "x.csv",
    )
    assert resolve_path("s3://bucket/x.csv", tmp_path) == ("s3://bucket/x.csv", None)
    assert resolve_path("dbfs:/x", tmp_path) == ("dbfs:/x", None)
    uri = (tmp_path / "x.csv").as_uri()
    assert resolve_path(uri, None) == (uri, (tmp_path / "x.csv").resolve())
    volume = "/Volumes/main/raw/files/x.csv"
    assert resolve_path(volume, tmp_path) == (volume, Path(volume))


def test_only_this_machines_disk_is_listed_before_spark_reads_it(tmp_path):
    volume = "/Volumes/main/raw/files/x.csv"
    assert local_path(volume) == Path(volume)  # the pandas engine reads it through FUSE
    assert local_disk_path(volume) is None  # Spark reaches it itself
    assert local_disk_path("s3://bucket/x") is None and local_path("s3://bucket/x") is None
    assert local_disk_path("file:///tmp/x.csv") == Path("/tmp/x.csv")
    assert local_disk_path(str(tmp_path)) == tmp_path
