from importlib import metadata

import pytest

from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.tables import local_table_path, validate_table_name
from odibi_core.engine.delta_jars import delta_coordinate, jar_cache_file
from odibi_core.engine.session import local_spark_conf


def test_delta_coordinate_is_derived_from_installed_versions():
    spark = metadata.version("pyspark")
    delta = metadata.version("delta-spark")
    major_minor = ".".join(spark.split(".")[:2])
    assert delta_coordinate() == f"io.delta:delta-spark_{major_minor}_2.13:{delta}"
    assert delta_coordinate("4.0.1", "4.3.0") == "io.delta:delta-spark_4.0_2.13:4.3.0"


def test_installed_pair_is_compatible():
    spark_major = int(metadata.version("pyspark").split(".")[0])
    delta_major = int(metadata.version("delta-spark").split(".")[0])
    assert (spark_major, delta_major) == (4, 4) or spark_major == delta_major


def test_local_conf_has_delta_utc_and_no_ui(tmp_path, monkeypatch):
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(tmp_path / "cache"))
    conf = local_spark_conf(tmp_path)
    assert conf["spark.jars.packages"] == delta_coordinate()
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "-Duser.timezone=UTC" in conf["spark.driver.extraJavaOptions"]
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.catalogImplementation"] == "in-memory"


def test_table_names_map_to_warehouse_paths(tmp_path):
    assert (
        local_table_path("main.sales.orders", tmp_path)
        == tmp_path.resolve() / "main" / "sales" / "orders"
    )
    assert (
        local_table_path("sales.orders", tmp_path)
        == tmp_path.resolve() / "spark_catalog" / "sales" / "orders"
    )
    assert (
        local_table_path("orders", tmp_path)
        == tmp_path.resolve() / "spark_catalog" / "default" / "orders"
    )


@pytest.mark.parametrize("bad", ["a.b.c.d", "1abc", "x; DROP TABLE y", "a-b", "", "../etc"])
def test_bad_table_names_are_rejected(bad):
    with pytest.raises(PipelineConfigError, match="not a valid table name"):
        validate_table_name(bad)


def test_resolved_jars_are_reused_and_a_stale_list_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("ODIBI_CACHE_DIR", str(tmp_path / "cache"))
    jar = tmp_path / "io.delta_delta-spark.jar"
    jar.write_bytes(b"jar")
    cache = jar_cache_file()
    cache.parent.mkdir(parents=True)
    cache.write_text(f"file://{jar}\n")
    assert local_spark_conf(tmp_path)["spark.jars"] == f"file://{jar}"
    assert "spark.jars.packages" not in local_spark_conf(tmp_path)
    jar.unlink()  # the ivy cache was cleaned: resolve again
    assert local_spark_conf(tmp_path)["spark.jars.packages"] == delta_coordinate()
