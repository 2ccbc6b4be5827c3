"""examples/multihome over MongoDB as its README runs it: two `sacsock serve --mongo` processes,
each with its own local Ray, federating through one MongoDB-wire test server; credentials
in the URL never reach the output."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sacclient import SacClient, free_port, sacsock_bin

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multihome"


@pytest.fixture
def mongo_url(tmp_path):
    from mongo_wire import ENV_URL, MongoWireServer, ensure_built  # tests/ (pythonpath)

    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    ensure_built()
    server = MongoWireServer(free_port(), str(tmp_path))
    server.start()
    yield server.url
    server.stop()


class Instance:
    """One `sacsock serve` process of the example; its output is collected by a thread."""

    def __init__(self, name: str, port: int, *flags: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", INSTANCE=name)
        env.pop("RAY_ADDRESS", None)
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sacsock_bin(), "serve", "app:server", "--static", "static", "--port", str(port),
             "--server-name", name, *flags],
            cwd=EXAMPLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    async def ready(self, bound: float = 180.0) -> None:
        deadline = time.monotonic() + bound
        while not any(line.startswith("sacsock: serving") for line in list(self.lines)):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"sacsock exited early with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not serving within {bound} s:\n{self.output}")
            await asyncio.sleep(0.2)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, bound: float = 60.0) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        return self.output


async def test_two_instances_share_rooms_through_mongodb(mongo_url):
    group = f"cli-{os.getpid()}-{time.monotonic_ns()}"
    flags = ("--mongo", mongo_url, "--mongo-poll", "0.05", "--server-group", group)
    instances = [Instance("one", free_port(), *flags), Instance("two", free_port(), *flags)]
    clients: list[SacClient] = []
    try:
        for inst in instances:
            await inst.ready()
        for inst in instances:
            clients.append(await SacClient.connect(f"http://127.0.0.1:{inst.port}/socket"))
        a, b = clients
        ha, hb = [(await c.recv_event("hello")).json for c in clients]
        assert (ha["instance"], hb["instance"]) == ("one", "two")
        for c in clients:
            await c.emit("join", "lobby")
            assert (await c.recv_event("joined")).text == "lobby"
        await a.emit("message", json.dumps({"room": "lobby", "text": "hi from one"}))
        for c in clients:
            m = (await c.recv_event("message")).json
            assert (m["instance"], m["text"]) == ("one", "hi from one")
        await b.emit("dm", json.dumps({"to": ha["id"], "text": "psst"}))
        assert (await a.recv_event("dm")).json["text"] == "psst"
        await b.emit("announce", "all hands")
        for c in clients:
            assert (await c.recv_event("announcement")).json["instance"] == "two"
    finally:
        for c in clients:
            await c.close()
        outs = [inst.stop() for inst in instances]
    for inst, out in zip(instances, outs, strict=True):
        assert inst.proc.returncode == 0, out
        assert "mongo bridge" in out


def test_password_is_masked_and_bad_flags_refused(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    bad = subprocess.run(
        [sacsock_bin(), "serve", "app:server", "--mongo-poll", "0.1"],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "--mongo-poll needs --mongo" in bad.stderr
    bad = subprocess.run(
        [sacsock_bin(), "serve", "app:server", "--mongo", "mongodb://u:hunter2-pw@h:notaport"],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "mongodb://u:***@h:notaport" in bad.stderr
    assert "hunter2-pw" not in bad.stdout + bad.stderr
