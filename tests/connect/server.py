"""A local Spark Connect server for the Connect suite: pyspark's own launcher, one process.

The server is ``SparkConnectServer`` started through pyspark's ``spark-submit``, bound to
127.0.0.1 on a free port, with the Delta jars, the Delta SQL extension and catalog, and the
same light settings a local session of the framework gets, so counts match the classic run.
It runs in its own process group and is stopped by that group's id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark

from odibi_core.engine.session import local_spark_conf

_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


@dataclass
class ConnectServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server's process group: spark-submit and the JVM it started."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


def start_server(work: Path, *, timeout: float = 120.0) -> ConnectServer:
    """Start a server whose warehouse and log live under ``work``; wait until it listens."""
    home = Path(pyspark.__file__).parent
    port = _free_port()
    log = work / "connect-server.log"
    command = [str(home / "bin" / "spark-submit"), "--class", _SERVER_CLASS]
    command += ["--master", "local[2]", *_conf_arguments(work / "warehouse", port)]
    command += ["spark-internal"]
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("SPARK_REMOTE", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = ConnectServer(process, port, log)
    _wait_until_started(server, timeout)
    return server


def _conf_arguments(warehouse: Path, port: int) -> list[str]:
    conf = local_spark_conf(warehouse)
    conf.update(
        {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(port),
            "spark.driver.memory": os.environ.get("ODIBI_SPARK_DRIVER_MEMORY", "2g"),
        }
    )
    # A test server lives a minute or two: the quick JIT compiler alone and the serial
    # collector leave more of two shared cores to the queries while it warms up.
    conf["spark.driver.extraJavaOptions"] += " -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    arguments: list[str] = []
    jars = conf.pop("spark.jars", None)
    if jars:
        arguments += ["--jars", jars]
    for key, value in conf.items():
        arguments += ["--conf", f"{key}={value}"]
    return arguments


def _wait_until_started(server: ConnectServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(server.port):
            return
        if server.process.poll() is not None:
            break
        time.sleep(0.2)
    server.stop()
    tail = "\n".join(server.log.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"the Spark Connect server did not start within {timeout:g}s:\n{tail}")


def _listening(port: int) -> bool:
    """The framework's log4j settings keep the server's "started" line out of its log, so
    readiness is the gRPC port accepting connections."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
