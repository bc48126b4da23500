"""Secret references, their lookup, and where secret parameters are masked."""

from __future__ import annotations

import argparse
import logging

import pytest

from odibi_core.cli import rerun_command
from odibi_core.core.secrets import (
    SecretError,
    SecretRegistry,
    SecretResolver,
    looks_secret,
    mask_params,
    secret_env_var,
)
from odibi_core.core.step import Step
from odibi_core.engine.log_scrubbing import ScrubbingLogFilter


def test_env_var_name_is_upper_cased_with_other_characters_as_underscores():
    assert secret_env_var("scope", "key") == "ODIBI_SECRET_SCOPE_KEY"
    assert secret_env_var("prod-jdbc", "db.password") == "ODIBI_SECRET_PROD_JDBC_DB_PASSWORD"
    assert secret_env_var("Ünï", "k 1") == "ODIBI_SECRET__N__K_1"


def test_references_resolve_whole_or_embedded_at_any_depth():
    registry = SecretRegistry()
    resolver = SecretResolver(
        registry, environ={"ODIBI_SECRET_JDBC_USER": "svc", "ODIBI_SECRET_JDBC_PW": "p@ss-w0rd"}
    )
    step = Step(
        layer="ingest",
        name="read_db",
        value="jdbc_table",
        params={
            "options": {
                "password": "{{secrets/jdbc/pw}}",
                "url": "jdbc:pg://h/db?user={{ secrets/jdbc/user }}&x=1",
                "list": ["{{secrets/jdbc/pw}}", 3],
            },
            "format": "delta",
        },
        outputs={"data": "raw"},
    )
    resolved = resolver.resolve_step(step)
    assert resolved.params == {
        "options": {
            "password": "p@ss-w0rd",
            "url": "jdbc:pg://h/db?user=svc&x=1",
            "list": ["p@ss-w0rd", 3],
        },
        "format": "delta",
    }
    assert step.params["options"]["password"] == "{{secrets/jdbc/pw}}"  # the step is unchanged
    assert registry.mask("login p@ss-w0rd as svc") == "login *** as ***"


def test_a_missing_secret_names_the_step_the_reference_and_the_variable():
    resolver = SecretResolver(SecretRegistry(), environ={})
    step = Step(
        layer="transform",
        name="load_orders",
        type="function",
        value="pkg.mod:fn",
        params={"token": "{{secrets/vault/api-token}}"},
        outputs={"data": "x"},
    )
    with pytest.raises(SecretError) as caught:
        resolver.resolve_step(step)
    message = str(caught.value)
    assert "{{secrets/vault/api-token}} in the params of step 'load_orders'" in message
    assert "set the environment variable ODIBI_SECRET_VAULT_API_TOKEN" in message
    assert caught.value.retryable is False


class _FakeSecrets:
    def __init__(self, store):
        self.store = store
        self.calls = []

    def get(self, scope, key):
        self.calls.append((scope, key))
        if (scope, key) not in self.store:
            raise ValueError(f"Secret does not exist with scope: {scope} and key: {key}")
        return self.store[(scope, key)]


class _FakeDbutils:
    def __init__(self, store):
        self.secrets = _FakeSecrets(store)


def test_on_databricks_secrets_come_from_the_sdk_dbutils():
    # A fake dbutils: no Databricks workspace is reachable here, and outside one
    # databricks.sdk.runtime has no working dbutils. The seam is the resolver's dbutils=.
    fake = _FakeDbutils({("jdbc", "pw"): "from-workspace"})
    resolver = SecretResolver(
        SecretRegistry(),
        environ={"DATABRICKS_RUNTIME_VERSION": "15.4", "ODIBI_SECRET_JDBC_PW": "local"},
        dbutils=lambda: fake,
    )
    assert resolver.resolve("{{secrets/jdbc/pw}}", "s") == "from-workspace"
    assert fake.secrets.calls == [("jdbc", "pw")]
    with pytest.raises(SecretError, match=r"could not be read from Databricks: ValueError"):
        resolver.resolve("{{secrets/jdbc/missing}}", "s")


@pytest.mark.parametrize(
    "name", ["password", "db_password", "API_KEY", "auth_token", "client_secret", "passwd"]
)
def test_secret_looking_names(name):
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name", ["merge_keys", "partition_by", "primary_key", "run_date", "keys", "mode"]
)
def test_names_that_are_not_secret(name):
    assert not looks_secret(name)


def test_configured_patterns_add_to_the_defaults():
    assert looks_secret("dsn", ["dsn"]) and looks_secret("password", ["dsn"])
    assert mask_params({"dsn": "x", "day": "2024"}, ["dsn"]) == {"dsn": "***", "day": "2024"}


def test_known_secret_values_are_masked_inside_other_values():
    registry = SecretRegistry(["S3cr3t-value", "S3cr3t"])
    assert registry.mask("a S3cr3t-value b S3cr3t") == "a *** b ***"
    assert registry.mask_in({"url": "x?pw=S3cr3t", "n": 1, "l": ["S3cr3t"]}) == {
        "url": "x?pw=***",
        "n": 1,
        "l": ["***"],
    }
    assert SecretRegistry(["ab"]).mask("abc") == "abc"  # too short to mask safely


def test_rerun_command_masks_secret_params():
    args = argparse.Namespace(
        pipeline="p.yaml",
        engine=None,
        max_workers=None,
        retries=None,
        state_schema=None,
        no_state=False,
        select=None,
        param=["db_password=X", "run_date=2024-05-01", "dsn=Y"],
    )
    command = rerun_command(args, "20240501T000000_abcdef", ["dsn"])
    assert command.startswith("odibi run p.yaml --resume 20240501T000000_abcdef ")
    assert "--param 'db_password=***'" in command
    assert "--param run_date=2024-05-01" in command
    assert "--param 'dsn=***'" in command
    assert "=X" not in command and "=Y" not in command


def test_log_filter_masks_records_while_installed(caplog):
    registry = SecretRegistry(["S3cr3t-value"])
    log = logging.getLogger("odibi_core.test_secret_logs")
    with caplog.at_level(logging.WARNING):
        log_filter = ScrubbingLogFilter(registry.mask).install()
        caplog.handler.addFilter(log_filter)  # pytest's capture handler stands in for root's
        try:
            log.warning("connect with %s failed", "S3cr3t-value")
        finally:
            log_filter.remove()
            caplog.handler.removeFilter(log_filter)
        log.warning("after: %s", "S3cr3t-value")
    assert [r.getMessage() for r in caplog.records] == [
        "connect with *** failed",
        "after: S3cr3t-value",
    ]


def test_pyspark_query_context_logs_are_masked_while_a_run_is_on():
    # PySpark logs a SQL error, with the raw value, on a logger of its own that does not
    # propagate, from inside the exception's constructor (no JVM needed to show it).
    from pyspark.logger import PySparkLogger

    from odibi_core.engine.log_scrubbing import guard_pyspark_loggers

    guard_pyspark_loggers(starting_spark=True)
    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger.addHandler(handler)
    log_filter = ScrubbingLogFilter(SecretRegistry(["ada@example.com"]).mask).install()
    try:
        try:
            raise ValueError("The value 'ada@example.com' of the type")
        except ValueError as exc:
            logger.exception(str(exc), errorClass="CAST_INVALID_INPUT")
    finally:
        log_filter.remove()
        logger.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["The value '***' of the type"]
    assert seen[0].exc_info is None  # its formatter would print str(exception) unmasked
