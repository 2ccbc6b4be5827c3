"""One Ray session for every integration test, and helpers to serve apps in it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from sacclient import free_port

from sacsock_actors import SocketServer


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    if not ray.is_initialized():
        # address="local": always a new Ray, never another one found running on this machine
        ray.init(address="local", namespace="sacsock", include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


class Served:
    """A SocketServer started in the shared Ray session; ``url`` is its websocket URL."""

    def __init__(self, server: SocketServer, port: int, infos: list[dict[str, Any]], path: str) -> None:
        self.server = server
        self.port = port
        self.infos = infos
        self.url = f"http://127.0.0.1:{port}{path}"
        self.http = f"http://127.0.0.1:{port}"


@pytest.fixture
def serve(ray_session: None) -> Iterator[Any]:
    """``serve(server, gateways=1, **start_kwargs) -> Served``; shut down after the test."""
    started: list[SocketServer] = []

    def _serve(server: SocketServer, **kwargs: Any) -> Served:
        port = kwargs.pop("port", None) or free_port()
        path = kwargs.get("path", "/socket")
        infos = server.start(port=port, **kwargs)
        started.append(server)
        return Served(server, port, infos, path)

    yield _serve
    for server in started:
        server.shutdown()


# ---- a real redis-server for the Redis bridge tests ----------------------------------------


class RedisServer:
    """A ``redis-server`` subprocess on 127.0.0.1 that can be stopped and started again on
    the same port (no persistence). ``url`` is its redis:// URL."""

    def __init__(self, binary: str, port: int, workdir: str) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: Any = None

    def start(self, timeout: float = 20.0) -> None:
        import subprocess
        import time

        assert self.proc is None, "already running"
        log = open(f"{self.workdir}/redis-{self.port}.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.workdir}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server not answering on port {self.port}")
            time.sleep(0.02)

    def stop(self, timeout: float = 20.0) -> None:
        import subprocess

        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(tmp_path: Any) -> Iterator[RedisServer]:
    """A fresh redis-server for one test (skipped, saying why, when redis-server is absent)."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server) - Redis bridge tests skipped")
    server = RedisServer(binary, free_port(), str(tmp_path))
    server.start()
    yield server
    server.stop()


# ---- a real MongoDB-wire server for the MongoDB bridge tests (see tests/mongo_wire.py) -------


@pytest.fixture
def mongo_server(tmp_path: Any) -> Iterator[Any]:
    """A fresh MongoDB-wire test server for one test; stoppable and pausable."""
    import os

    from mongo_wire import ENV_URL, MongoWireServer, ensure_built

    if os.environ.get(ENV_URL):
        pytest.skip(f"{ENV_URL} is set: this test stops or pauses the server, which needs the test server")
    ensure_built()
    server = MongoWireServer(free_port(), str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mongo_url(request: Any) -> Iterator[str]:
    """A MongoDB URL: $SACSOCK_TEST_MONGO_URL when set, else a fresh test server."""
    import os

    from mongo_wire import ENV_URL

    url = os.environ.get(ENV_URL)
    if url:
        yield url
    else:
        yield request.getfixturevalue("mongo_server").url
