"""OpenLineage export: turns the EventBus lifecycle events into OpenLineage RunEvents.

A pipeline execution is one OpenLineage run of the job ``<pipeline>``; each step is a
child run of the job ``<pipeline>.<step>`` whose ``parent`` facet points at it. Step runs
report their output data keys as datasets, with the schema and the row count when known.

Run ids are UUIDv5s of the execution id (and step name), so every attempt of a step within
one execution reports to the same run, and a re-sent event is recognisably the same run.

Needs the ``openlineage`` extra (``pip install 'odibi_core[openlineage]'``); the library
is imported only when a hook is built, so this module imports without it.
"""

from __future__ import annotations

import json
import os
import threading
import types
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odibi_core import __version__
from odibi_core.core.errors import OdibiError
from odibi_core.events.bus import EventPriority, events

if TYPE_CHECKING:
    from odibi_core.events.bus import EventBus

DEFAULT_PRODUCER = f"urn:odibi_core:{__version__}"
INSTALL_HINT = "pip install 'odibi_core[openlineage]'"
_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:odibi_core:openlineage")
_CONSOLE = "console"


class LineageExportError(OdibiError):
    """An OpenLineage hook is misconfigured or received an event it cannot map."""


class OpenLineageNotInstalledError(LineageExportError):
    """The optional openlineage-python package is missing or too old."""


def pipeline_run_id(execution_id: str) -> str:
    """The OpenLineage run id of a pipeline execution."""
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, json.dumps(["pipeline", str(execution_id)])))


def step_run_id(execution_id: str, step_name: str) -> str:
    """The OpenLineage run id of one step within a pipeline execution."""
    return str(
        uuid.uuid5(_RUN_ID_NAMESPACE, json.dumps(["step", str(execution_id), str(step_name)]))
    )


def schema_fields(schema: Sequence[str]) -> list[tuple[str, str | None]]:
    """Split ``"col: type"`` strings into (name, type); nested types keep their own colons."""
    fields: list[tuple[str, str | None]] = []
    for entry in schema:
        name, separator, data_type = str(entry).partition(": ")
        fields.append((name.strip(), data_type.strip() if separator else None))
    return fields


class OpenLineageHook:
    """Sends OpenLineage RunEvents for a pipeline's lifecycle events.

    Give at most one of: ``client`` (an ``OpenLineageClient``), ``url`` (an OpenLineage
    HTTP endpoint such as Marquez), or ``transport``: an openlineage ``Transport``, the
    string ``"console"`` (log the events), or a file path (append one JSON event a line).
    With none, the client configures itself from ``openlineage.yml`` or ``OPENLINEAGE_*``
    environment variables.
    """

    def __init__(
        self,
        client: Any = None,
        url: str | None = None,
        namespace: str = "odibi",
        transport: Any = None,
        producer: str = DEFAULT_PRODUCER,
    ):
        self._ol = _load_openlineage()
        self.namespace = namespace
        self.producer = producer
        self.client = _resolve_client(self._ol, client, url, transport)
        # Transports such as the file one are not safe to write from several threads.
        self._send_lock = threading.Lock()

    def register(self, bus: EventBus, priority: EventPriority = EventPriority.LOW) -> None:
        """Subscribe to the six lifecycle events of ``bus``."""
        for event_type, handler in self._handlers().items():
            bus.register_hook(event_type, handler, priority=priority)

    def unregister(self, bus: EventBus) -> None:
        """Stop receiving events from ``bus``."""
        for event_type, handler in self._handlers().items():
            bus.unregister_hook(event_type, handler)

    def close(self, timeout: float = -1.0) -> bool:
        """Wait for the transport to deliver pending events (see OpenLineageClient.close)."""
        return bool(self.client.close(timeout))

    def on_pipeline_start(self, event_data: dict[str, Any]) -> None:
        self._send(self.build_event(events.PIPELINE_START, event_data))

    def on_pipeline_complete(self, event_data: dict[str, Any]) -> None:
        self._send(self.build_event(events.PIPELINE_COMPLETE, event_data))

    def on_pipeline_error(self, event_data: dict[str, Any]) -> None:
        self._send(self.build_event(events.PIPELINE_ERROR, event_data))

    def on_node_start(self, event_data: dict[str, Any]) -> None:
        self._send(self.build_event(events.NODE_START, event_data))

    def on_node_complete(self, event_data: dict[str, Any]) -> None:
        self._send(self.build_event(events.NODE_COMPLETE, event_data))

    def on_node_error(self, event_data: dict[str, Any]) -> None:
        self._send(self.build_event(events.NODE_ERROR, event_data))

    def build_event(self, event_type: str, event_data: Mapping[str, Any]) -> Any | None:
        """The RunEvent for one bus event, or None when the event changes no run state.

        A step's first ``node_start`` is START and a retry's is RUNNING; a ``node_error``
        that will be retried sends nothing, the final one sends FAIL.
        """
        state = self._ol.event.RunState
        if event_type == events.PIPELINE_START:
            return self._pipeline_event(state.START, event_data)
        if event_type == events.PIPELINE_COMPLETE:
            return self._pipeline_event(state.COMPLETE, event_data)
        if event_type == events.PIPELINE_ERROR:
            return self._pipeline_event(state.FAIL, event_data)
        if event_type == events.NODE_START:
            first_attempt = int(event_data.get("attempt") or 1) <= 1
            return self._step_event(state.START if first_attempt else state.RUNNING, event_data)
        if event_type == events.NODE_COMPLETE:
            return self._step_event(state.COMPLETE, event_data)
        if event_type == events.NODE_ERROR:
            if event_data.get("will_retry"):
                return None
            return self._step_event(state.FAIL, event_data)
        raise LineageExportError(
            f"OpenLineageHook cannot map event '{event_type}'; it handles the lifecycle "
            f"events {', '.join(events)}"
        )

    def _handlers(self) -> dict[str, Any]:
        return {
            events.PIPELINE_START: self.on_pipeline_start,
            events.PIPELINE_COMPLETE: self.on_pipeline_complete,
            events.PIPELINE_ERROR: self.on_pipeline_error,
            events.NODE_START: self.on_node_start,
            events.NODE_COMPLETE: self.on_node_complete,
            events.NODE_ERROR: self.on_node_error,
        }

    def _send(self, run_event: Any | None) -> None:
        if run_event is None:
            return
        with self._send_lock:
            self.client.emit(run_event)

    def _pipeline_event(self, state: Any, event_data: Mapping[str, Any]) -> Any:
        ol = self._ol
        pipeline = _pipeline_name(event_data)
        run_facets: dict[str, Any] = {}
        if state == ol.event.RunState.FAIL:
            run_facets["errorMessage"] = self._error_facet(event_data)
        return ol.event.RunEvent(
            eventType=state,
            eventTime=_event_time(event_data),
            run=ol.event.Run(runId=pipeline_run_id(_execution_id(event_data)), facets=run_facets),
            job=self._job(pipeline, "PIPELINE"),
            producer=self.producer,
        )

    def _step_event(self, state: Any, event_data: Mapping[str, Any]) -> Any:
        ol = self._ol
        pipeline = _pipeline_name(event_data)
        step = event_data.get("step_name")
        if not step:
            raise LineageExportError(
                f"OpenLineageHook got a step event without 'step_name' for pipeline "
                f"'{pipeline}'; the orchestrator must send it with every node_* event"
            )
        execution_id = _execution_id(event_data)
        run_facets: dict[str, Any] = {"parent": self._parent_facet(pipeline, execution_id)}
        if state == ol.event.RunState.FAIL:
            run_facets["errorMessage"] = self._error_facet(event_data)
        outputs = self._outputs(event_data) if state == ol.event.RunState.COMPLETE else []
        return ol.event.RunEvent(
            eventType=state,
            eventTime=_event_time(event_data),
            run=ol.event.Run(runId=step_run_id(execution_id, step), facets=run_facets),
            job=self._job(f"{pipeline}.{step}", "STEP"),
            inputs=self._inputs(event_data),
            outputs=outputs,
            producer=self.producer,
        )

    def _job(self, name: str, job_type: str) -> Any:
        facet = self._ol.facets.job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="ODIBI", jobType=job_type, producer=self.producer
        )
        return self._ol.event.Job(namespace=self.namespace, name=name, facets={"jobType": facet})

    def _parent_facet(self, pipeline: str, execution_id: str) -> Any:
        parent_run = self._ol.facets.parent_run
        run_id = pipeline_run_id(execution_id)
        extra: dict[str, Any] = {}
        if hasattr(parent_run, "Root"):  # the root field came with openlineage-python 1.2x
            extra["root"] = parent_run.Root(
                run=parent_run.RootRun(runId=run_id),
                job=parent_run.RootJob(namespace=self.namespace, name=pipeline),
            )
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_id),
            job=parent_run.Job(namespace=self.namespace, name=pipeline),
            producer=self.producer,
            **extra,
        )

    def _error_facet(self, event_data: Mapping[str, Any]) -> Any:
        message = str(event_data.get("error_message") or "unknown error")
        if event_data.get("error_type"):
            message = f"{event_data['error_type']}: {message}"
        return self._ol.facets.error_message_run.ErrorMessageRunFacet(
            message=message,
            programmingLanguage="python",
            stackTrace=event_data.get("traceback"),
            producer=self.producer,
        )

    def _inputs(self, event_data: Mapping[str, Any]) -> list[Any]:
        # Payloads may carry the step's inputs (logical name -> data key); lineage uses them.
        inputs = event_data.get("inputs") or {}
        return [
            self._ol.event.InputDataset(namespace=self.namespace, name=str(data_key))
            for data_key in _data_keys(inputs)
        ]

    def _outputs(self, event_data: Mapping[str, Any]) -> list[Any]:
        ol = self._ol
        schema = event_data.get("schema") or []
        row_count = event_data.get("row_count")
        datasets = []
        for data_key in _data_keys(event_data.get("outputs") or {}):
            facets: dict[str, Any] = {}
            if schema:
                facets["schema"] = ol.facets.schema_dataset.SchemaDatasetFacet(
                    fields=[
                        ol.facets.schema_dataset.SchemaDatasetFacetFields(name=name, type=kind)
                        for name, kind in schema_fields(schema)
                    ],
                    producer=self.producer,
                )
            output_facets: dict[str, Any] = {}
            if row_count is not None:
                statistics = ol.facets.output_statistics_output_dataset
                output_facets["outputStatistics"] = statistics.OutputStatisticsOutputDatasetFacet(
                    rowCount=int(row_count), producer=self.producer
                )
            datasets.append(
                ol.event.OutputDataset(
                    namespace=self.namespace,
                    name=str(data_key),
                    facets=facets,
                    outputFacets=output_facets,
                )
            )
        return datasets


def _load_openlineage() -> types.SimpleNamespace:
    try:
        from openlineage.client import OpenLineageClient, event_v2, facet_v2
        from openlineage.client.transport import Transport
    except ImportError as exc:
        raise OpenLineageNotInstalledError(
            f"OpenLineage export needs openlineage-python>=1.20, which could not be imported "
            f"({exc}); install it with {INSTALL_HINT}"
        ) from exc
    return types.SimpleNamespace(
        client_class=OpenLineageClient,
        event=event_v2,
        facets=facet_v2,
        transport_class=Transport,
    )


def _resolve_client(ol: types.SimpleNamespace, client: Any, url: Any, transport: Any) -> Any:
    options = {"client": client, "url": url, "transport": transport}
    given = [name for name, value in options.items() if value is not None]
    if len(given) > 1:
        raise LineageExportError(
            f"OpenLineageHook takes at most one of client, url or transport, got "
            f"{' and '.join(given)}; configure the transport on the client instead"
        )
    if client is not None:
        return client
    if url is not None:
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        return ol.client_class(transport=HttpTransport(HttpConfig.from_dict({"url": url})))
    if transport is None:
        return ol.client_class()
    if isinstance(transport, ol.transport_class):
        return ol.client_class(transport=transport)
    if transport == _CONSOLE:
        from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport

        return ol.client_class(transport=ConsoleTransport(ConsoleConfig()))
    if isinstance(transport, (str, os.PathLike)):
        from openlineage.client.transport.file import FileConfig, FileTransport

        path = Path(transport)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = FileConfig.from_dict({"log_file_path": str(path), "append": True})
        return ol.client_class(transport=FileTransport(config))
    raise LineageExportError(
        f"OpenLineageHook transport must be an openlineage Transport, 'console' or a file "
        f"path, got {type(transport).__name__} {transport!r}"
    )


def _pipeline_name(event_data: Mapping[str, Any]) -> str:
    name = event_data.get("pipeline_name")
    if not name:
        raise LineageExportError(
            "OpenLineageHook got an event without 'pipeline_name'; the orchestrator must "
            "send it with every event, since it names the OpenLineage job"
        )
    return str(name)


def _execution_id(event_data: Mapping[str, Any]) -> str:
    execution_id = event_data.get("execution_id") or event_data.get("run_id")
    if not execution_id:
        raise LineageExportError(
            f"OpenLineageHook got an event of pipeline '{event_data.get('pipeline_name')}' "
            f"without 'execution_id' or 'run_id'; OpenLineage run ids are derived from it"
        )
    return str(execution_id)


def _event_time(event_data: Mapping[str, Any]) -> str:
    """The payload's ``timestamp`` (datetime, epoch seconds or ISO text) as ISO 8601."""
    value = event_data.get("timestamp")
    if value is None:
        return datetime.now(timezone.utc).isoformat()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, tz=timezone.utc)
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError as exc:
            raise LineageExportError(
                f"OpenLineageHook cannot read the event timestamp {value!r} of pipeline "
                f"'{event_data.get('pipeline_name')}'; send a datetime, epoch seconds or "
                f"ISO 8601 text"
            ) from exc
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is the machine's local time
    return moment.isoformat()


def _data_keys(mapping: Any) -> list[str]:
    if isinstance(mapping, Mapping):
        return [str(key) for key in mapping.values()]
    return [str(key) for key in mapping]


__all__ = [
    "DEFAULT_PRODUCER",
    "LineageExportError",
    "OpenLineageHook",
    "OpenLineageNotInstalledError",
    "pipeline_run_id",
    "schema_fields",
    "step_run_id",
]
