"""What a run may show: messages with secrets and, with redaction on, data values masked.

One ``RunMessages`` per run, built from the plan: the secrets the run knows, the columns
it redacts (including those SQL steps derive from redacted ones), and the pipeline's own
names (steps, data keys, columns), which a message may always quote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from odibi_core.core.redaction import all_derived, redaction_by_key, sql_identifiers
from odibi_core.core.secrets import SecretRegistry, mask_params, register_secret_params
from odibi_core.core.snapshot import Redactor
from odibi_core.core.step import Step
from odibi_core.execution.plan import RunPlan


class RunMessages:
    """Scrubs messages, events and recorded parameters of one run."""

    def __init__(self, plan: RunPlan):
        tracker = plan.config.tracker
        self.secrets = SecretRegistry()
        register_secret_params(plan.parameters, self.secrets, tracker.secret_params)
        for step in plan.steps:  # a literal password in a step's options is one too
            register_secret_params(step.params, self.secrets, tracker.secret_params)
        self.recorded_parameters = mask_params(plan.parameters, tracker.secret_params, self.secrets)
        self.redactor = _run_redactor(plan, self.secrets)
        self._names = _names_in(plan.steps, plan.config.base_dir) | {
            name for name in tracker.redact_columns if not set(name) & set("*?[")
        }

    def text(self, message: str) -> str:
        """A message as it may be shown."""
        return self.redactor.scrub(message, self._names)

    def error_text(self, error: BaseException, step_name: str) -> str:
        """The error's message without the step prefix, scrubbed."""
        text = str(error) or type(error).__name__  # a bare `assert` has no message
        prefix = f"step '{step_name}' failed: "
        return self.text(text[len(prefix) :] if text.startswith(prefix) else text)

    def mask(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """An event payload with every known secret value masked."""
        return self.secrets.mask_in(payload)

    @property
    def redacted_columns(self) -> tuple[str, ...]:
        """Redacted column patterns and derived columns, for the nodes' own errors."""
        if not self.redactor.active:
            return ()
        return (*self.redactor.patterns, *sorted(self.redactor.columns))


def _run_redactor(plan: RunPlan, secrets: SecretRegistry) -> Redactor:
    """The patterns, plus columns SQL steps derive from redacted ones."""
    redactor = Redactor(plan.config.tracker.redact_columns, secrets=secrets)
    if not redactor.active:
        return redactor
    # The whole pipeline, not only a --select: a selected step may read what an
    # unselected one renamed.
    whole = plan.whole_dag()
    ordered = [whole.step(name) for name in whole.topological_order()]
    return redactor.with_columns(all_derived(redaction_by_key(ordered, redactor.is_redacted)))


def _names_in(steps: Iterable[Step], base_dir: Path | None) -> set[str]:
    """Names a message may quote that are the pipeline's own, not data."""
    names: set[str] = set()
    for step in steps:
        names.add(step.name)
        names.update(step.inputs)
        names.update(step.inputs.values())
        names.update(step.outputs)
        names.update(step.outputs.values())
        if isinstance(step.value, str) and len(step.value) < 500:
            names.add(step.value)
            if step.kind == "config_op":  # a path or table: quoted resolved too
                names.add(str((base_dir or Path.cwd()).joinpath(step.value).resolve()))
        if step.kind == "sql" and isinstance(step.value, str):
            names.update(sql_identifiers(step.value))  # column names, never values
        names.update(rule.name for rule in (*step.expectations, *step.table_expectations))
    return names
