"""Secrets in step ``params``: ``{{secrets/scope/key}}``, resolved when a step runs.

A reference is resolved at run time, never when a pipeline is loaded or validated, so a
pipeline file holds no secret and ``odibi validate`` needs none:

- on Databricks (``DATABRICKS_RUNTIME_VERSION`` is set) through
  ``databricks.sdk.runtime.dbutils.secrets.get(scope, key)``: a wheel task has no global
  ``dbutils``;
- elsewhere from the environment variable ``ODIBI_SECRET_<SCOPE>_<KEY>`` (upper-cased,
  every character other than A-Z and 0-9 written as ``_``).

Resolved values live only in the step params handed to the engines. Every value resolved,
and every runtime parameter whose name looks secret, goes into the run's
``SecretRegistry``, which masks it in whatever the run shows or stores. Pure apart from the
lazy Databricks import: no pandas or pyspark.
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from odibi_core.core.errors import OdibiError
from odibi_core.core.step import Step

MASK = "***"
SECRET_REF = re.compile(r"\{\{\s*secrets/([^/{}\s]+)/([^/{}\s]+)\s*\}\}")

#: Parameter names masked in every record, whatever their value (``tracker.secret_params``
#: adds more).
DEFAULT_SECRET_PARAMS = (
    "*password*",
    "*passwd*",
    "*secret*",
    "*token*",
    "*credential*",
    "*apikey*",
    "*_key",
)
#: The framework's own keys that match a pattern above but hold no secret.
NEVER_SECRET = frozenset(
    {"merge_keys", "partition_by", "primary_key", "cluster_by", "zorder_by", "sort_key"}
)
# Values this short would mask ordinary words and digits all over a message.
_MIN_MASKED_LENGTH = 3


class SecretError(OdibiError):
    """A ``{{secrets/scope/key}}`` reference could not be resolved."""


def secret_env_var(scope: str, key: str) -> str:
    """``ODIBI_SECRET_<SCOPE>_<KEY>``: upper-cased, other characters than A-Z0-9 as ``_``."""
    return "ODIBI_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{scope}_{key}".upper())


def looks_secret(name: str, patterns: Iterable[str] = ()) -> bool:
    """Whether a parameter named ``name`` holds a secret (case-insensitive globs)."""
    lowered = str(name).lower()
    if lowered in NEVER_SECRET:
        return False
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in (*DEFAULT_SECRET_PARAMS, *patterns))


def has_secret_refs(value: Any) -> bool:
    if isinstance(value, str):
        return SECRET_REF.search(value) is not None
    if isinstance(value, Mapping):
        return any(has_secret_refs(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_secret_refs(v) for v in value)
    return False


class SecretRegistry:
    """The secret values one run knows; masks them in any text or record. Thread-safe."""

    def __init__(self, values: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: Any) -> None:
        text = "" if value is None else str(value)
        if len(text) < _MIN_MASKED_LENGTH:
            return
        with self._lock:
            if text in self._values:
                return
            self._values.add(text)
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def mask(self, text: str) -> str:
        with self._lock:
            pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def mask_in(self, value: Any) -> Any:
        """A copy of a JSON-like value with every known secret masked in its strings."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {k: self.mask_in(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask_in(v) for v in value]
        return value


def mask_params(
    params: Mapping[str, Any], patterns: Iterable[str] = (), registry: SecretRegistry | None = None
) -> dict[str, Any]:
    """Parameters as they may be shown or stored: secret-looking names and known values masked."""
    patterns = tuple(patterns)
    masked = {
        name: MASK if looks_secret(name, patterns) and value is not None else value
        for name, value in params.items()
    }
    return registry.mask_in(masked) if registry is not None else masked


def register_secret_params(
    params: Mapping[str, Any], registry: SecretRegistry, patterns: Iterable[str] = ()
) -> None:
    """Values of secret-looking parameters are secrets wherever else they show up.

    Nested mappings (a step's ``params.options``) are searched too; only text is taken, so
    a ``token_count: 100`` never masks every 100 in a message.
    """
    patterns = tuple(patterns)
    for name, value in params.items():
        if isinstance(value, Mapping):
            register_secret_params(value, registry, patterns)
        elif (
            isinstance(value, str)
            and looks_secret(name, patterns)
            and not SECRET_REF.fullmatch(value.strip())
        ):
            registry.add(value)


# --------------------------------------------------------------------------- resolving


def _databricks_dbutils() -> Any:
    from databricks.sdk.runtime import dbutils  # only on Databricks: needs its credentials

    return dbutils


class SecretResolver:
    """Looks secrets up on Databricks or in the environment, and registers what it finds.

    ``dbutils`` is a seam: a callable returning an object with ``secrets.get(scope, key)``;
    by default ``databricks.sdk.runtime.dbutils``, imported on first use.
    """

    def __init__(
        self,
        registry: SecretRegistry,
        *,
        environ: Mapping[str, str] | None = None,
        dbutils: Callable[[], Any] | None = None,
    ):
        self.registry = registry
        self.environ = os.environ if environ is None else environ
        self._dbutils = dbutils or _databricks_dbutils

    @property
    def on_databricks(self) -> bool:
        return bool(self.environ.get("DATABRICKS_RUNTIME_VERSION"))

    def lookup(self, scope: str, key: str, step_name: str) -> str:
        where = f"{{{{secrets/{scope}/{key}}}}} in the params of step '{step_name}'"
        if self.on_databricks:
            try:
                value = self._dbutils().secrets.get(scope=scope, key=key)
            except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds
                raise SecretError(
                    f"{where} could not be read from Databricks: {type(exc).__name__}: {exc}; "
                    f"check that scope {scope} holds key {key} "
                    f"(databricks secrets list-secrets {scope}) and that the job may read it"
                ) from exc
        else:
            env_var = secret_env_var(scope, key)
            value = self.environ.get(env_var)
            if value is None:
                raise SecretError(
                    f"{where} is not set: set the environment variable {env_var} "
                    f"(export {env_var}=...), or run on Databricks, where key {key} of "
                    f"scope {scope} is read with dbutils.secrets"
                )
        self.registry.add(value)
        return value

    def resolve(self, value: Any, step_name: str) -> Any:
        """``value`` with every reference replaced, in strings nested at any depth."""
        if isinstance(value, str):
            return SECRET_REF.sub(lambda m: self.lookup(m.group(1), m.group(2), step_name), value)
        if isinstance(value, Mapping):
            return {k: self.resolve(v, step_name) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, step_name) for v in value]
        return value

    def resolve_step(self, step: Step) -> Step:
        if not has_secret_refs(step.params):
            return step
        return replace(step, params=self.resolve(step.params, step.name))
