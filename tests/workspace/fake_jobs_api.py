"""A fake Databricks Jobs API: a real HTTP server on 127.0.0.1 for the real SDK client.

It stands in for a Databricks workspace, which cannot be reached from the tests. It serves
exactly what databricks-sdk 0.162.0 calls for ``odibi jobs``: the host metadata probe
``/.well-known/databricks-config`` that ``Config`` makes, and ``/api/2.2/jobs/list``,
``jobs/get``, ``jobs/run-now``, ``jobs/runs/get``, ``jobs/runs/list`` and
``jobs/runs/repair``. Every request is recorded, so a test can assert what was sent.

It keeps a small model: jobs with tags, parameters and tasks (with ``depends_on``), and
runs whose tasks have one attempt per execution (a repair adds an attempt). A test sets the
task states: a run's ``script`` is the states its next ``runs/get`` answers show, one
snapshot per call, the last one kept. A state is a life-cycle word (``PENDING``,
``RUNNING``…) or a result (``SUCCESS``, ``FAILED``…, which means ``TERMINATED``).
Like the service, a repair of a run repaired before must send the latest repair's id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/2.2/jobs"
LIFE_CYCLES = frozenset(
    {"PENDING", "QUEUED", "BLOCKED", "RUNNING", "TERMINATING", "WAITING_FOR_RETRY"}
)
WORKSPACE_ID = "1234567890123456"
_FIRST_START = 1_764_400_000_000  # epoch ms


@dataclass(frozen=True)
class Request:
    """One request as the server received it (query values are the strings sent)."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    authorization: str | None


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


@dataclass
class FakeRun:
    run_id: int
    job_id: int
    start_time: int
    job_parameters: dict[str, str]
    attempts: list[dict[str, Any]]  # every task attempt, oldest first
    leaves: frozenset[str]  # the tasks no task depends on: they decide the run's result
    script: list[dict[str, str]] = field(default_factory=list)
    # ORIGINAL, then one item per repair; an item's state is kept when the next one starts
    history: list[dict[str, Any]] = field(default_factory=list)

    def latest(self) -> dict[str, dict[str, Any]]:
        return {attempt["task_key"]: attempt for attempt in self.attempts}

    def apply(self, states: Mapping[str, str]) -> None:
        latest = self.latest()
        for key, word in states.items():
            latest[key]["state"] = word

    def state(self) -> dict[str, Any]:
        words = [attempt["state"] for attempt in self.latest().values()]
        if all(word not in LIFE_CYCLES for word in words):
            # As the service decides it: the leaves' results, then whether any task failed.
            ok = {key for key, a in self.latest().items() if a["state"] in ("SUCCESS", "EXCLUDED")}
            if not self.leaves <= ok:
                return _state("FAILED")
            return _state("SUCCESS" if len(ok) == len(words) else "SUCCESS_WITH_FAILURES")
        return _state("PENDING" if all(w == "PENDING" for w in words) else "RUNNING")


class FakeJobsApi:
    """The server and its model. ``start()`` it, point ``DATABRICKS_HOST`` at ``url``."""

    def __init__(self, token: str):
        self.token = token
        self.jobs: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, FakeRun] = {}
        self.requests: list[Request] = []
        self.run_now_script: list[dict[str, str]] = []  # the states of the next run-now's run
        self.repair_script: list[dict[str, str]] = []  # the states of the next repair
        self.max_page = 100  # jobs/list answers at most this many jobs per page
        self._ids = iter(range(1001, 10**6))
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeJobsApi:
        serve = lambda: self._server.serve_forever(poll_interval=0.01)  # noqa: E731 - a quick stop
        threading.Thread(target=serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # The model, as a test sets it up.

    def add_job(
        self,
        pipeline: str | None,
        *,
        target: str | None = "dev",
        name: str | None = None,
        tasks: Mapping[str, Sequence[str]] = {"ingest": ()},  # noqa: B006 - read only
        parameters: Mapping[str, str] = {},  # noqa: B006 - read only
        creator: str = "alice@example.com",
    ) -> int:
        job_id = next(self._ids)
        tags = {"odibi_pipeline": pipeline, "odibi_target": target} if pipeline else {}
        self.jobs[job_id] = {
            "job_id": job_id,
            "creator_user_name": creator,
            "created_time": _FIRST_START,
            "settings": {
                "name": name or f"[dev alice] {pipeline}",
                "tags": {k: v for k, v in tags.items() if v is not None},
                "parameters": [{"name": k, "default": v} for k, v in parameters.items()],
                "tasks": [
                    {"task_key": key, "depends_on": [{"task_key": up} for up in ups]}
                    for key, ups in tasks.items()
                ],
                "max_concurrent_runs": 1,
            },
        }
        return job_id

    def add_run(self, job_id: int, states: Mapping[str, str] | None = None) -> int:
        """A run of ``job_id`` whose tasks are in ``states`` (default: all succeeded)."""
        run = self._new_run(job_id, {})
        run.apply(states or {key: "SUCCESS" for key in run.latest()})
        return run.run_id

    def sent(self, method: str, endpoint: str) -> list[Request]:
        """The requests made to ``endpoint`` (``run-now``, ``runs/get``…), in order."""
        return [r for r in self.requests if r.method == method and r.path == f"{API}/{endpoint}"]

    # The service.

    def answer(self, request: Request) -> dict[str, Any]:
        with self._lock:
            self.requests.append(request)
            if request.path == "/.well-known/databricks-config":
                return {"workspace_id": WORKSPACE_ID, "cloud": "aws"}
            if request.authorization != f"Bearer {self.token}":
                raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")
            route = _ROUTES.get((request.method, request.path))
            if route is None:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.path}'")
            return route(self, request)

    def _list_jobs(self, request: Request) -> dict[str, Any]:
        page = min(int(request.query.get("limit", 20)), self.max_page)
        start = int(request.query.get("page_token", 0))
        jobs = [self.jobs[job_id] for job_id in sorted(self.jobs)]
        answer: dict[str, Any] = {"jobs": [_listed(job) for job in jobs[start : start + page]]}
        if start + page < len(jobs):
            answer["next_page_token"] = str(start + page)
        answer["has_more"] = "next_page_token" in answer
        return answer

    def _get_job(self, request: Request) -> dict[str, Any]:
        return self._job(int(request.query["job_id"]))

    def _run_now(self, request: Request) -> dict[str, Any]:
        body = request.body or {}
        job = self._job(body["job_id"])
        declared = {p["name"]: p["default"] for p in job["settings"]["parameters"]}
        given = body.get("job_parameters") or {}
        for name in given:
            if name not in declared:
                raise ApiError(
                    400, "INVALID_PARAMETER_VALUE", f"Job parameter {name} is not defined"
                )
        run = self._new_run(job["job_id"], {**declared, **given})
        run.script = [dict(s) for s in self.run_now_script] or [
            {key: "SUCCESS" for key in run.latest()}
        ]
        return {"run_id": run.run_id, "number_in_job": run.run_id}

    def _get_run(self, request: Request) -> dict[str, Any]:
        run = self._run(int(request.query["run_id"]))
        if run.script:
            run.apply(run.script.pop(0) if len(run.script) > 1 else run.script[0])
        answer = self._described(run, tasks=True)
        if request.query.get("include_history", "").lower() == "true":
            answer["repair_history"] = self._history(run)
        return answer

    def _list_runs(self, request: Request) -> dict[str, Any]:
        job_id = int(request.query["job_id"])
        runs = sorted(
            (run for run in self.runs.values() if run.job_id == job_id),
            key=lambda run: run.start_time,
            reverse=True,
        )
        start, page = int(request.query.get("page_token", 0)), int(request.query.get("limit", 20))
        tasks = request.query.get("expand_tasks", "").lower() == "true"
        answer: dict[str, Any] = {
            "runs": [self._described(run, tasks=tasks) for run in runs[start : start + page]],
            "has_more": start + page < len(runs),
        }
        if answer["has_more"]:
            answer["next_page_token"] = str(start + page)
        return answer

    def _repair(self, request: Request) -> dict[str, Any]:
        body = request.body or {}
        run = self._run(body["run_id"])
        if run.state()["life_cycle_state"] != "TERMINATED":
            raise ApiError(400, "INVALID_STATE", f"Run {run.run_id} is still active")
        latest = run.history[-1].get("id")  # None until the run was repaired
        if body.get("latest_repair_id") != latest:
            raise ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"latest_repair_id must be {latest} (the run's latest repair), got "
                f"{body.get('latest_repair_id')}",
            )
        rerun = self._reruns(run, body)
        for item in run.history:
            item.setdefault("state", run.state())
        repair_id = next(self._ids)
        run.history.append(
            {"type": "REPAIR", "id": repair_id, "start_time": _FIRST_START + repair_id}
        )
        attempts = run.latest()
        for key in rerun:
            self._add_attempt(run, key, attempts[key]["attempt_number"] + 1)
        run.script = [dict(s) for s in self.repair_script] or [{key: "SUCCESS" for key in rerun}]
        return {"repair_id": repair_id}

    def _reruns(self, run: FakeRun, body: Mapping[str, Any]) -> list[str]:
        tasks = {t["task_key"]: t["depends_on"] for t in self.jobs[run.job_id]["settings"]["tasks"]}
        rerun = list(body.get("rerun_tasks") or ())
        unknown = [key for key in rerun if key not in tasks]
        if unknown:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Tasks {unknown} are not in the run")
        while body.get("rerun_dependent_tasks"):
            more = [
                key
                for key, ups in tasks.items()
                if key not in rerun and any(up["task_key"] in rerun for up in ups)
            ]
            if not more:
                break
            rerun += more
        return rerun

    # Helpers.

    def _job(self, job_id: int) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
        return self.jobs[job_id]

    def _run(self, run_id: int) -> FakeRun:
        if run_id not in self.runs:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        return self.runs[run_id]

    def _new_run(self, job_id: int, parameters: dict[str, str]) -> FakeRun:
        run_id = next(self._ids)
        tasks = self.jobs[job_id]["settings"]["tasks"]
        upstream = {up["task_key"] for task in tasks for up in task["depends_on"]}
        leaves = frozenset(task["task_key"] for task in tasks) - upstream
        start = _FIRST_START + 60_000 * len(self.runs)
        run = FakeRun(run_id, job_id, start, parameters, [], leaves)
        run.history.append({"type": "ORIGINAL", "start_time": start})
        self.runs[run_id] = run
        for task in self.jobs[job_id]["settings"]["tasks"]:
            self._add_attempt(run, task["task_key"], 0)
        return run

    def _add_attempt(self, run: FakeRun, key: str, number: int) -> None:
        run.attempts.append(
            {
                "task_key": key,
                "run_id": next(self._ids),
                "attempt_number": number,
                "state": "PENDING",
            }
        )

    def _described(self, run: FakeRun, *, tasks: bool) -> dict[str, Any]:
        answer = {
            "run_id": run.run_id,
            "job_id": run.job_id,
            "number_in_job": run.run_id,
            "start_time": run.start_time,
            "state": run.state(),
            "run_page_url": f"{self.url}/?o={WORKSPACE_ID}#job/{run.job_id}/run/{run.run_id}",
            "job_parameters": [
                {"name": k, "default": k, "value": v} for k, v in run.job_parameters.items()
            ],
        }
        if tasks:  # every attempt is listed: a repaired task appears once per attempt
            answer["tasks"] = [
                {
                    "task_key": a["task_key"],
                    "run_id": a["run_id"],
                    "attempt_number": a["attempt_number"],
                    "state": _state(a["state"]),
                }
                for a in run.attempts
            ]
        return answer

    def _history(self, run: FakeRun) -> list[dict[str, Any]]:
        return [{"state": run.state(), **item} for item in run.history]


def _state(word: str) -> dict[str, Any]:
    if word in LIFE_CYCLES:
        return {"life_cycle_state": word, "state_message": ""}
    message = "" if word == "SUCCESS" else f"Task ended {word.lower()}"
    return {"life_cycle_state": "TERMINATED", "result_state": word, "state_message": message}


def _listed(job: dict[str, Any]) -> dict[str, Any]:
    """jobs/list leaves out the tasks unless expand_tasks; odibi never asks for them."""
    settings = {k: v for k, v in job["settings"].items() if k != "tasks"}
    return {**job, "settings": settings}


_ROUTES = {
    ("GET", f"{API}/list"): FakeJobsApi._list_jobs,
    ("GET", f"{API}/get"): FakeJobsApi._get_job,
    ("POST", f"{API}/run-now"): FakeJobsApi._run_now,
    ("GET", f"{API}/runs/get"): FakeJobsApi._get_run,
    ("GET", f"{API}/runs/list"): FakeJobsApi._list_runs,
    ("POST", f"{API}/runs/repair"): FakeJobsApi._repair,
}


def _handler(api: FakeJobsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            self._serve()

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                body=json.loads(raw) if raw else None,
                authorization=self.headers.get("Authorization"),
            )
            try:
                status, answer = 200, api.answer(request)
            except ApiError as exc:
                status = exc.status
                answer = {"error_code": exc.error_code, "message": exc.message}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the test asserts on ``api.requests`` instead."""

    return Handler
