"""examples/multihome over MongoDB as its README runs it: two `sacsock serve --mongo` processes,
each with its own local Ray, federating through one MongoDB-wire test server; credentials
in the URL never reach the output."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from sacclient import SacClient, free_port, sacsock_bin
from serve_instance import ServeInstance

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


async def test_two_instances_share_rooms_through_mongodb(mongo_url):
    group = f"cli-{os.getpid()}-{time.monotonic_ns()}"
    flags = ("--mongo", mongo_url, "--mongo-poll", "0.05", "--server-group", group)
    instances = [ServeInstance("multihome", name, free_port(), "--server-name", name, *flags)
                 for name in ("one", "two")]
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
