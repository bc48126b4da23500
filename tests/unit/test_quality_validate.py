"""`odibi validate` checks quality rules against the output columns it can know."""

from __future__ import annotations

import pandas as pd

from odibi_core.cli import main as odibi

PIPELINE = """
pipeline: checked
steps:
  - {layer: ingest, name: read, value: orders.csv, outputs: {data: raw}}
  - layer: transform
    name: clean
    type: sql
    value: SELECT o.*, amount * 2 AS doubled FROM orders o
    inputs: {orders: raw}
    outputs: {data: clean}
    expectations:
      positive: {rule: "RULE", on_violation: drop}
    table_expectations:
      one: {unique: [KEY]}
"""


def _validate(tmp_path, capsys, rule, key="order_id"):
    pd.DataFrame({"order_id": [1], "amount": [2.0]}).to_csv(tmp_path / "orders.csv", index=False)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.replace("RULE", rule).replace("KEY", key))
    code = odibi(["validate", str(path)])
    return code, capsys.readouterr()


def test_rules_over_known_columns_are_valid(tmp_path, capsys):
    code, out = _validate(tmp_path, capsys, "doubled > amount AND order_id IS NOT NULL")
    assert code == 0, out.err
    assert "is valid" in out.out


def test_a_missing_column_or_an_unparsable_rule_is_a_config_error(tmp_path, capsys):
    code, out = _validate(tmp_path, capsys, "amout > 0", key="id")
    assert code == 2
    assert (
        "step 'clean': expectation 'positive' (amout > 0) names amout, which the step's "
        "output lacks (it has amount, doubled, order_id)" in out.err
    )
    assert "table expectation 'one' (unique (id)) names id" in out.err
    code, out = _validate(tmp_path, capsys, "amount >")
    assert code == 2
    assert "expectation 'positive': rule 'amount >' is no row condition: it does not parse" in (
        out.err
    )
