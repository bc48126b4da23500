"""Functions the secrets tests reference as ``tests.reliability.secret_funcs:<name>``."""

from __future__ import annotations

import json
import os

import pandas as pd


def needs_secrets(data: pd.DataFrame, password: str, token: str) -> pd.DataFrame:
    """Proves the engine got the resolved values, as a JDBC option would need them."""
    if password != "S3cr3t-value":
        raise ValueError("the password param did not reach the step resolved")
    if token != os.environ["ODIBI_SECRET_SCOPE_KEY"]:
        raise ValueError("the {{secrets/scope/key}} param did not reach the step resolved")
    return data.assign(checked=True)


def quote_values(data: pd.DataFrame, password: str) -> pd.DataFrame:
    """Fails quoting redacted values in single and double quotes, and the secret itself."""
    first = data.iloc[0]
    raise ValueError(
        f"cannot load contact {first['contact']!r}; rows {json.dumps(data.head(2).to_dict('records'))}"
        f" with credentials {password}"
    )
