"""One Ray session for every integration test, and helpers to serve apps in it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from sacsock_actors import SocketServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    if not ray.is_initialized():
        ray.init(namespace="sacsock", include_dashboard=False, logging_level=logging.WARNING)
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
