"""A real MongoDB-wire server for tests: tests/mongo_server (mongo-java-server 1.47.0, in memory,
reporting MongoDB 4.4, with what the Go peer's mgo driver needs), run as a subprocess.

``scripts/setup.sh`` builds it (Maven); :func:`ensure_built` builds it when it is missing.
``SACSOCK_TEST_MONGO_URL`` points the tests at a real MongoDB (4.4 or newer) instead; tests
that stop or pause the server are skipped then.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SERVER_DIR = Path(__file__).resolve().parent / "mongo_server"
JAR = SERVER_DIR / "target" / "testmongo-1.jar"
LIB = SERVER_DIR / "target" / "lib"
ENV_URL = "SACSOCK_TEST_MONGO_URL"


def ensure_built() -> None:
    """Build the server with Maven if its jar is missing (skips the test without java/mvn)."""
    if JAR.exists() and LIB.is_dir():
        return
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("java and mvn are needed for the MongoDB-wire test server (bash scripts/setup.sh)")
    subprocess.run(["mvn", "-q", "-B", "package"], cwd=SERVER_DIR, check=True, timeout=900)


def server_argv(port: int) -> list[str]:
    """The command line of the test server on 127.0.0.1:``port``."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("java is needed for the MongoDB-wire test server (bash scripts/setup.sh)")
    return [java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{JAR}{os.pathsep}{LIB}/*",
            "sacsock.testmongo.Main", "--port", str(port)]


class MongoWireServer:
    """The test server on 127.0.0.1:``port``; stop/start keep the port (state is lost)."""

    def __init__(self, port: int, workdir: str) -> None:
        self.port = port
        self.workdir = workdir
        self.url = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        self.host_port = f"127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        assert self.proc is None, "already running"
        with open(f"{self.workdir}/mongo-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen(server_argv(self.port), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the MongoDB-wire server exited with {self.proc.returncode}; "
                                   f"see {self.workdir}/mongo-{self.port}.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the MongoDB-wire server is not answering on port {self.port}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # in case it is paused
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def pause(self) -> None:
        """SIGSTOP: the server holds every connection open and answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def ping(self) -> bool:
        return ping(self.port)


def ping(port: int) -> bool:
    """True when an OP_MSG ``ping`` to 127.0.0.1:``port`` gets an ``ok`` reply."""
    # OP_MSG: header (len, id, 0, 2013), flags 0, section kind 0, {ping: 1, $db: "admin"}
    body = b"\x10ping\x00\x01\x00\x00\x00" + b"\x02$db\x00\x06\x00\x00\x00admin\x00"
    doc = (len(body) + 5).to_bytes(4, "little") + body + b"\x00"
    msg = (0).to_bytes(4, "little") + b"\x00" + doc
    header = (16 + len(msg)).to_bytes(4, "little") + (1).to_bytes(4, "little") + bytes(4) + \
        (2013).to_bytes(4, "little")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(header + msg)
            reply = s.recv(4096)
            return len(reply) > 16 and b"ok" in reply
    except OSError:
        return False
