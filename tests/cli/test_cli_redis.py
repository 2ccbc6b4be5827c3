"""examples/multihome as its README runs it: two `sacsock serve --redis` processes, each
with its own local Ray, federating through one real redis-server (with a password)."""

from __future__ import annotations

import json
import shutil
import socket

import aiohttp
import pytest
from sacclient import SacClient, free_port
from serve_instance import ServeInstance

PASSWORD = "cli-s3cret"


@pytest.fixture
def redis_url(tmp_path):
    from conftest import RedisServer  # tests/integration/conftest.py (pythonpath)

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server) - CLI Redis test skipped")
    server = RedisServer(binary, free_port(), str(tmp_path))
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(f"CONFIG SET requirepass {PASSWORD}\r\n".encode())
        assert s.recv(16).startswith(b"+OK")
    yield f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    server.stop()


async def test_two_instances_share_rooms_through_redis(redis_url):
    instances = [ServeInstance("multihome", name, free_port(), "--redis", redis_url, "--server-name", name)
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
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{instances[0].port}/app.js") as r:
            assert r.status == 200
    finally:
        for c in clients:
            await c.close()
        outs = [inst.stop() for inst in instances]
    for inst, out in zip(instances, outs, strict=True):
        assert inst.proc.returncode == 0, out
        assert PASSWORD not in out
    assert "redis://:***@127.0.0.1" in outs[0] + outs[1]
