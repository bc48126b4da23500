"""Cache layers: a step whose cache key has an entry is restored from Delta, not run.

A step's cache key hashes everything that decides its outputs: its definition (whichever
engine runs it), its code for a function step, the pipeline, and its inputs: for an
ingest, the source's fingerprint (files by path, size and modification time, or content;
Delta tables by version), and for every other input the key of the step that produced it.
So a touched source file misses, and so does everything downstream of it. A store or
publish step is used from the cache only while its target still holds what it committed.

``CacheLayer`` wraps the tracking layer: on a miss it writes the outputs to their cache
tables (the write is the action that settles the tracker's count) and adds the entry.
``CacheLookupLayer`` sits inside the tracking layer: a hit returns the outputs read from
Delta, and the step ends CACHED.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import threading
from pathlib import Path
from typing import Any

from odibi_core.core.fingerprints import files_fingerprint
from odibi_core.core.locations import local_path, locate
from odibi_core.core.step import Step
from odibi_core.execution.plan import RunPlan, step_fingerprint
from odibi_core.execution.runners import Runs, StepCall, StepRun, committed_target
from odibi_core.state.cache import STORE_OUTPUT, CacheEntry, CacheManager, Held

log = logging.getLogger(__name__)

_WRITING_LAYERS = ("store", "publish")
_DELTA_FORMATS = ("delta", "table")


def caches(step: Step, enable_cache: bool) -> bool:
    """Whether ``step`` uses the cache: ``cache: true`` on it, or the run's ``enable_cache``
    unless the step says ``cache: false``."""
    return step.cache if step.cache is not None else enable_cache


class CacheKeys:
    """Each step's cache key, made when the step is called; the keys of the data it
    produced are what its downstream steps' keys are made of."""

    def __init__(self, plan: RunPlan, *, base_dir: Any, engines: Any, content: bool = False):
        self.plan = plan
        self.base_dir = base_dir
        self.engines = engines
        self.content = content
        self._lock = threading.Lock()
        self._data: dict[str, str] = {}  # data key -> key of what produced it
        self._steps: dict[str, str | None] = {}

    def key_of(self, step: Step) -> str | None:
        """``step``'s cache key; None (and the reason logged) when it cannot have one."""
        parts, missing = self._parts(step)
        key = None
        if missing:
            log.info("step '%s' is not cached: %s", step.name, missing)
        else:
            text = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
        with self._lock:
            self._steps[step.name] = key
            for data_key in step.output_keys:
                if key is not None:
                    self._data[data_key] = f"{key}/{data_key}"
                else:
                    self._data.pop(data_key, None)
        return key

    def known(self, name: str) -> str | None:
        with self._lock:
            return self._steps.get(name)

    def _parts(self, step: Step) -> tuple[dict[str, Any], str | None]:
        parts: dict[str, Any] = {
            "pipeline": self.plan.name,
            "definition": step_fingerprint(step, with_engine=False),
        }
        with self._lock:
            inputs = {logical: self._data.get(key) for logical, key in step.inputs.items()}
        absent = [key for logical, key in step.inputs.items() if inputs[logical] is None]
        if absent:
            return parts, f"its input(s) {', '.join(absent)} come from outside the run's cache"
        parts["inputs"] = inputs
        if step.kind == "function":
            parts["code"] = code_version(step)
            if parts["code"] is None:
                return parts, f"the code of {step.value} has no source text or package version"
        if step.layer == "ingest":
            parts["source"] = self.place_fingerprint(step)
            if parts["source"] is None:
                return parts, f"its source {step.value!r} cannot be fingerprinted from here"
        return parts, None

    def place_fingerprint(self, step: Step) -> str | None:
        """The fingerprint of what ``step.value`` names now: files, a Delta table or a table."""
        try:
            location = locate(step, self.base_dir)
            if location.format in _DELTA_FORMATS:
                spark = self.engines.get("spark")
                return spark.delta_fingerprint(location.format, location.target, step=step.name)
            path = local_path(location.target)
            return files_fingerprint(Path(path), content=self.content) if path else None
        except Exception as exc:  # an unreadable place: the step runs and reports it
            log.debug("no fingerprint of step '%s': %s", step.name, exc)
            return None


def code_version(step: Step) -> str | None:
    """The hash of a function step's source text, or its package's installed version."""
    from odibi_core.nodes.transform import load_function

    function = load_function(step)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = None
    if source is not None:
        return "source:" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]
    package = str(step.value).split(":")[0].split(".")[0]
    try:
        from importlib.metadata import version

        return f"package:{package}=={version(package)}"
    except Exception:  # neither source nor distribution: the key cannot follow the code
        return None


class CacheLookupLayer:
    """Inside tracking: a step with a usable entry gets its outputs from Delta."""

    def __init__(self, inner: Runs, cache: CacheManager, keys: CacheKeys, *, enable: bool):
        self.inner = inner
        self.cache = cache
        self.keys = keys
        self.enable = enable

    def __call__(self, call: StepCall) -> StepRun:
        step = call.step
        key = self.keys.known(step.name) if caches(step, self.enable) else None
        entry = self.cache.lookup(key) if key is not None else None
        if entry is None or not self._usable(entry, step):
            return self.inner(call)
        outputs = {
            logical: self.cache.restore(entry.outputs[data_key], engine=call.engine, step=step.name)
            for logical, data_key in step.outputs.items()
        }
        self.cache.hit(entry.key)
        return StepRun(
            outputs=outputs,
            restored_from=f"restored from cache entry {entry.key}",
            kept={(k or None): (held.table, held.version) for k, held in entry.outputs.items()},
        )

    def _usable(self, entry: CacheEntry, step: Step) -> bool:
        """Every output is held; a store's target still holds the commit it made."""
        if step.layer in _WRITING_LAYERS and not step.output_keys:
            target = entry.outputs.get(STORE_OUTPUT)
            return target is not None and target.fingerprint == self.keys.place_fingerprint(step)
        return all(key in entry.outputs for key in step.output_keys)


class CacheLayer:
    """Outside tracking: a cached step that ran keeps its outputs under its key."""

    def __init__(self, inner: Runs, cache: CacheManager, keys: CacheKeys, **context: Any):
        self.inner = inner
        self.cache = cache
        self.keys = keys
        self.engines = context["engines"]
        self.enable = context["enable"]

    def __call__(self, call: StepCall) -> StepRun:
        step = call.step
        key = self.keys.key_of(step)
        run = self.inner(call)
        if key is None or run.restored_from is not None or not caches(step, self.enable):
            return run
        held: dict[str, Held] = {}
        for logical, frame in list(run.outputs.items()):
            data_key = step.outputs[logical]
            held[data_key] = self.cache.save(
                frame, key, data_key, spark_engine=self.engines.get("spark"), step=step.name
            )
            run.kept[data_key] = (held[data_key].table, held[data_key].version)
            if call.engine.name == "spark":  # later steps read the table, not the plan again
                run.outputs[logical] = self.cache.restore(
                    held[data_key], engine=call.engine, step=step.name
                )
        if not step.output_keys and run.write is not None:
            target, version = committed_target(run, step)
            held[STORE_OUTPUT] = Held(target, version, self.keys.place_fingerprint(step))
            run.kept[None] = (target, version)
        self.cache.add(key, step.name, held, rows=run.row_count)
        return run
