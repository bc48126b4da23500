"""A Spark standalone cluster on 127.0.0.1: one master and two workers, started with
pyspark's own ``spark-class`` launchers, stopped by the process ids started here.

    with StandaloneCluster(tmp_path / "cluster") as cluster:
        ...  # ODIBI_SPARK_MASTER=cluster.url

Each daemon runs in a session (and process group) of its own, with its output in
``<root>/logs/<name>.log``; each worker keeps its executors' folders (and their logs) in
``<root>/work/<name>``. The master's web UI JSON tells when both workers are ALIVE and
which applications ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"
WORKERS = 2
START_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 15.0
_LOG_TAIL_LINES = 25


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def spark_home() -> Path:
    """pyspark's own installation: its ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class StandaloneCluster:
    """The cluster under ``root``; ``start()`` waits for ``WORKERS`` ALIVE workers."""

    root: Path
    workers: int = WORKERS
    worker_cores: int = 1
    worker_memory: str = "1g"
    app_cores: int = 1  # the cores an application gets unless it sets spark.cores.max
    master_port: int = field(default_factory=free_port)
    master_ui_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def work_dir(self, worker: int) -> Path:
        return self.root / "work" / f"worker-{worker}"

    def __enter__(self) -> StandaloneCluster:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start the master, then the workers; wait until the master lists them ALIVE."""
        try:
            self._launch(
                "master",
                MASTER_CLASS,
                "--host",
                HOST,
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.master_ui_port),
            )
            for n in range(1, self.workers + 1):
                self.work_dir(n).mkdir(parents=True, exist_ok=True)
                self._launch(
                    f"worker-{n}",
                    WORKER_CLASS,
                    self.url,
                    "--host",
                    HOST,
                    "--cores",
                    str(self.worker_cores),
                    "--memory",
                    self.worker_memory,
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(self.work_dir(n)),
                )
            self._wait_for_workers(timeout)
        except BaseException:
            self.stop()
            raise

    def _launch(self, name: str, main_class: str, *args: str) -> None:
        log = self.log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        home = spark_home()
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_CONF_DIR": str(self._conf_dir()),
            "SPARK_NO_DAEMONIZE": "1",
            # Read by spark-class for the master: an application takes one core unless it
            # asks for more, so two applications at once each get an executor; no REST
            # submission server (it would bind the fixed port 6066).
            "SPARK_MASTER_OPTS": f"-Dspark.deploy.defaultCores={self.app_cores} "
            "-Dspark.master.rest.enabled=false",
        }
        with log.open("w") as out:
            self.processes[name] = subprocess.Popen(
                [str(home / "bin" / "spark-class"), main_class, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def _conf_dir(self) -> Path:
        """An empty configuration folder: no spark-defaults.conf of the machine applies."""
        conf = self.root / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        return conf

    def state(self) -> dict:
        """The master's web UI JSON: workers, active and completed applications."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        return sum(1 for w in self.state().get("workers", []) if w.get("state") == "ALIVE")

    def _wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        alive = 0
        while time.monotonic() < deadline:
            self._check_running()
            try:
                alive = self.alive_workers()
            except (OSError, urllib.error.URLError, ValueError):
                alive = 0  # the master's UI is not up yet
            if alive >= self.workers:
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"the Spark standalone cluster at {self.url} has {alive} of {self.workers} "
            f"workers ALIVE after {timeout:.0f}s (master UI {self.ui_url}/json/)\n"
            + self.log_tails()
        )

    def _check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"the Spark standalone {name} exited with code {process.returncode} "
                    f"while the cluster at {self.url} was starting\n" + self.log_tails()
                )

    def log_tails(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of every daemon's log, each under its name."""
        parts = []
        for name in self.processes:
            log = self.log(name)
            text = log.read_text(errors="replace") if log.is_file() else "(no log)"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- {name} ({log}), last {lines} lines:\n{tail}")
        return "\n".join(parts)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM each daemon's process group (workers first), SIGKILL what is left after
        ``grace`` seconds. Only the processes started here are signalled."""
        started = list(reversed(self.processes.items()))  # workers before the master
        for _, process in started:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, process in started:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=grace)
        for _, process in started:
            # Executors a worker started share its group; while one lives, the kernel keeps
            # the group's id from being reused, so this reaches only processes started here.
            _signal_group(process, signal.SIGKILL)
        self.processes.clear()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Signal the process group led by ``process`` (its pid: start_new_session=True)."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone
        os.killpg(process.pid, sig)
