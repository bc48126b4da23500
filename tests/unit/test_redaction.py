"""Redacted columns followed through SQL, and values masked in messages whatever the quotes."""

from __future__ import annotations

import pytest

from odibi_core.core.config import TrackerSettings, parse_pipeline
from odibi_core.core.errors import PipelineConfigError
from odibi_core.core.redaction import derived_redacted_columns, redaction_by_key
from odibi_core.core.secrets import SecretRegistry
from odibi_core.core.snapshot import Redactor
from odibi_core.core.step import Step

EMAIL = Redactor(["email"]).is_redacted


@pytest.mark.parametrize(
    ("sql", "derived"),
    [
        ("SELECT email AS contact FROM t", {"contact"}),
        ("SELECT id, upper(email) AS shout, email FROM t", {"shout", "email"}),
        ("SELECT c.email AS contact, o.id FROM o JOIN c USING (id)", {"contact"}),
        ("SELECT concat(name, ' <', email, '>') AS label FROM t", {"label"}),
        # an alias of an alias, through a CTE and a subquery
        (
            "WITH a AS (SELECT email AS e FROM t) SELECT q AS final FROM (SELECT e AS q FROM a)",
            {"e", "q", "final"},
        ),
        ("SELECT id, count(email) AS n, name FROM t GROUP BY id, name", set()),
        ("SELECT * FROM t", set()),
        ("SELECT nonsense FROM (", set()),  # unparseable: the engine reports it
    ],
)
def test_sql_columns_derived_from_redacted_ones(sql, derived):
    assert derived_redacted_columns(sql, EMAIL) == derived


def test_derived_names_propagate_per_data_key_through_sql_and_function_steps():
    steps = [
        Step(layer="ingest", name="read", value="c.csv", outputs={"data": "raw"}),
        Step(
            layer="transform",
            name="rename",
            type="sql",
            value="SELECT email AS contact FROM raw",
            inputs={"raw": "raw"},
            outputs={"data": "renamed"},
        ),
        Step(
            layer="transform",
            name="again",
            type="sql",
            value="SELECT contact AS who, id FROM renamed",
            inputs={"renamed": "renamed"},
            outputs={"data": "again"},
        ),
        Step(
            layer="transform",
            name="fn",
            type="function",
            value="pkg.mod:fn",
            inputs={"data": "again"},
            outputs={"data": "after_fn"},
        ),
        Step(layer="ingest", name="other", value="o.csv", outputs={"data": "other"}),
    ]
    assert redaction_by_key(steps, EMAIL) == {
        "raw": frozenset(),
        "renamed": frozenset({"contact"}),
        "again": frozenset({"contact", "who"}),
        "after_fn": frozenset({"contact", "who"}),
        "other": frozenset(),
    }


def test_samples_mask_derived_and_expression_named_columns():
    redactor = Redactor(["email"], columns=["contact"])
    rows = [{"id": 1, "Contact": "a@b.c", "upper(email)": "A@B.C", "emailer": "x", "n": 2}]
    assert redactor.apply(rows) == [
        {"id": 1, "Contact": "***", "upper(email)": "***", "emailer": "x", "n": 2}
    ]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Could not convert string 'ada@example.com' to INT32",
            "Could not convert string '***' to INT32",
        ),
        ('bad value "O\'Brien <ob@x.io>" in row', 'bad value "***" in row'),
        ("cannot parse `ada@example.com` here", "cannot parse `***` here"),
        (
            "[CAST_INVALID_INPUT] The value 'ada@example.com' of the type \"STRING\" cannot be "
            'cast to "INT" because it is malformed. Use `try_cast` to tolerate it.',
            "[CAST_INVALID_INPUT] The value '***' of the type \"STRING\" cannot be "
            'cast to "INT" because it is malformed. Use `try_cast` to tolerate it.',
        ),
        (
            '[CAST_OVERFLOW] The value 1.5E10D of the type "DOUBLE" cannot be cast to "INT"',
            '[CAST_OVERFLOW] The value *** of the type "DOUBLE" cannot be cast to "INT"',
        ),
        (
            "column `emial` cannot be resolved; did you mean `c`.`email` in step 'rename'?",
            "column `emial` cannot be resolved; did you mean `c`.`email` in step 'rename'?",
        ),
        ('set "spark.sql.ansi.enabled" to false', 'set "spark.sql.ansi.enabled" to false'),
    ],
)
def test_scrub_masks_values_in_every_kind_of_quote(message, expected):
    assert Redactor(["email"]).scrub(message, keep={"rename"}) == expected


def test_scrub_keeps_apostrophes_and_the_pipelines_sql_readable():
    sql = "SELECT CAST(email AS INT) AS n FROM raw"
    message = (
        "the failing expression `CAST(email AS INT)` is in the SQL of step 'cast'; "
        "Spark ran that step's plan lazily in 'save', on value 'a@b.c'"
    )
    assert Redactor(["email"]).scrub(message, keep={"cast", "save", sql}) == (
        "the failing expression `CAST(email AS INT)` is in the SQL of step 'cast'; "
        "Spark ran that step's plan lazily in 'save', on value '***'"
    )


def test_scrub_masks_secrets_even_without_redacted_columns():
    redactor = Redactor((), secrets=SecretRegistry(["S3cr3t-value"]))
    assert redactor.scrub("login failed for 'S3cr3t-value'") == "login failed for '***'"
    assert redactor.scrub("'kept' as is") == "'kept' as is"


def test_redact_columns_as_a_string_is_a_config_error():
    raw = {
        "pipeline": "p",
        "tracker": {"redact_columns": "email"},
        "steps": [{"layer": "ingest", "name": "a", "value": "x.csv", "outputs": {"data": "k"}}],
    }
    with pytest.raises(PipelineConfigError) as caught:
        parse_pipeline(raw)
    assert caught.value.problems == [
        "<pipeline>: tracker.redact_columns must be a list, got the string 'email'; "
        "write redact_columns: [email] (a string would be read letter by letter)"
    ]
    with pytest.raises(PipelineConfigError, match="tracker.secret_params must be a list"):
        TrackerSettings(secret_params="dsn")


def test_redact_columns_list_and_empty_value_parse():
    steps = [{"layer": "ingest", "name": "a", "value": "x.csv", "outputs": {"data": "k"}}]
    config = parse_pipeline(
        {
            "pipeline": "p",
            "tracker": {"redact_columns": ["email"], "secret_params": None},
            "steps": steps,
        }
    )
    assert config.tracker.redact_columns == ("email",)
    assert config.tracker.secret_params == ()
