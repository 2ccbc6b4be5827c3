"""Fixtures for mixed-fleet tests against the real upstream Go server (see harness.py).

- ``go_peer_bin`` (session): the Go peer executable, built once and cached.
- ``procs`` (per test) / ``module_procs`` (per module): a :class:`harness.ProcessGroup`:
  ``procs.redis()``, ``procs.go_peer("-mongo", url, backend="mongo")``,
  ``procs.sacsock(PEER_APP, "--redis", url)``, ``procs.start(name, argv, ready=...)``.
  Every process's log is attached to a failing test's report; all are stopped at teardown.
- ``redis_proc`` (per test): a restartable redis-server on its own port.
- ``client``: ``await client(url)`` connects a :class:`harness.PeerClient`, closed after the test.

A missing piece (Go, ../shared/peers, redis-server) skips with a one-line reason, and fails
instead under ``CI=true``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Missing, PeerClient, ProcessGroup, RedisProc, active_groups, go_peer_binary, in_ci


def missing(reason: str) -> None:
    """Skip (fail under CI=true) the current test because ``reason``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing piece fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def go_peer_bin() -> Path:
    """The upstream Go server binary (SACSOCK_GO_PEER, or built from ../shared/peers or
    SACSOCK_GO_PEER_SRC into ~/.cache/sacsock/gopeer-<hash>)."""
    try:
        return go_peer_binary()
    except Missing as exc:
        missing(f"Go peer: {exc}")
        raise


@pytest.fixture(scope="session")
def redis_bin() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server is not on PATH (apt-get install redis-server; scripts/setup.sh does it)")
    return str(binary)


def _group(request: pytest.FixtureRequest, log_dir: Path) -> ProcessGroup:
    def go_bin() -> Path:
        return request.getfixturevalue("go_peer_bin")

    def redis_bin() -> str:
        return request.getfixturevalue("redis_bin")

    return ProcessGroup(log_dir, go_peer_bin=go_bin, redis_bin=redis_bin)


@pytest.fixture
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessGroup]:
    """Real processes for one test; stopped (SIGTERM, then SIGKILL) at its end."""
    group = _group(request, tmp_path / "logs")
    yield group
    group.stop_all()


@pytest.fixture(scope="module")
def module_procs(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessGroup]:
    """Real processes shared by a module's tests (a fleet is slow to start)."""
    group = _group(request, tmp_path_factory.mktemp("interop-logs"))
    yield group
    group.stop_all()


@pytest.fixture
def redis_proc(procs: ProcessGroup) -> RedisProc:
    """A fresh redis-server on its own port for one test; ``.restart()`` keeps the port."""
    return procs.redis()


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    """``await client(url) -> PeerClient``; every client is closed after the test."""
    made: list[PeerClient] = []

    async def connect(url: str, **kwargs: Any) -> PeerClient:
        c = await PeerClient.connect(url, **kwargs)
        made.append(c)
        return c

    yield connect
    for c in made:
        await c.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attach the log of every running process to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for group in active_groups():
            for name, path, tail in group.logs():
                report.sections.append((f"process log: {name} ({path})", tail))
