from odibi_core.core.snapshot import Redactor, Snapshot, schema_diff


def test_redaction_by_name_glob_and_nested_path():
    rows = [
        {
            "id": 1,
            "email": "a@example.com",
            "home_phone": "555",
            "contact": {"email": "b@example.com", "city": "Oslo"},
            "history": [{"email": "c@example.com", "n": 1}],
            "billing": {"card": "4111"},
        }
    ]
    redacted = Redactor(["EMAIL", "*_phone", "billing.card"]).apply(rows)
    assert redacted == [
        {
            "id": 1,
            "email": "***",
            "home_phone": "***",
            "contact": {"email": "***", "city": "Oslo"},
            "history": [{"email": "***", "n": 1}],
            "billing": {"card": "***"},
        }
    ]
    assert rows[0]["email"] == "a@example.com"  # the input is not modified


def test_schema_diff_names_added_removed_and_changed_types():
    before = Snapshot(schema=["id: int64", "amount: int64", "gone: string"])
    after = Snapshot(schema=["id: int64", "amount: double", "new_column: int32"])
    assert schema_diff(before, after) == {
        "added": ["new_column"],
        "removed": ["gone"],
        "changed": [{"column": "amount", "old_type": "int64", "new_type": "double"}],
    }
