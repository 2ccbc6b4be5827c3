"""The MongoDB bridge against the real upstream Go server (``gopeer -backend mongo``, the
legacy mgo driver) through the MongoDB-wire test server: both directions, every cast kind
and data type, and a fleet of two Go servers and one cluster where every cast reaches every
member exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from harness import PEER_APP, ProcessGroup, free_port, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: mongo_wire
import mongo_wire  # noqa: E402

POLL = "0.05"
QUIET = 1.5  # how long "nothing more arrives" is watched (several polls of every member)


@pytest.fixture(scope="module")
def mongo(module_procs: ProcessGroup) -> Any:
    """One MongoDB-wire server for the module: (url for pymongo, host:port for mgo)."""
    url = os.environ.get(mongo_wire.ENV_URL)
    if url:  # a real MongoDB: mgo needs one that still speaks the legacy opcodes (<= 5.0)
        from urllib.parse import urlsplit

        return url, urlsplit(url).netloc.rsplit("@", 1)[-1]
    mongo_wire.ensure_built()
    port = free_port()
    module_procs.start("mongo-wire", mongo_wire.server_argv(port), ready=lambda: mongo_wire.ping(port))
    return f"mongodb://127.0.0.1:{port}/?directConnection=true", f"127.0.0.1:{port}"


def go(procs: ProcessGroup, mongo: Any, group: str, name: str) -> Any:
    return procs.go_peer("-mongo", mongo[1], "-poll", "50ms", backend="mongo", group=group, server_name=name,
                         name=f"go-{name}")


def py(procs: ProcessGroup, mongo: Any, group: str, name: str) -> Any:
    return procs.sacsock(PEER_APP, "--mongo", mongo[0], "--mongo-poll", POLL, "--server-group", group,
                         "--server-name", name, name=f"sacsock-{name}")


def wait_fleet(mongo: Any, group: str, names: set[str]) -> None:
    """Every member's presence document is in ss.activeServers (before anyone casts)."""
    import pymongo

    client = pymongo.MongoClient(mongo[0], serverSelectionTimeoutMS=20000)
    coll = client["SSMultihome"]["ss.activeServers"]
    try:
        wait_for(lambda: {d["ServerName"] for d in coll.find({"ServerGroup": group})} >= names,
                 f"presence of {sorted(names)} in group {group}", timeout=120)
    finally:
        client.close()


async def test_go_and_cluster_exchange_every_kind_both_ways(procs: ProcessGroup, mongo, client) -> None:
    group = f"interop-{uuid.uuid4().hex[:8]}"
    g = go(procs, mongo, group, "go1")
    p = py(procs, mongo, group, "py1")
    wait_fleet(mongo, group, {"go1", "py1"})
    gc, pc = await client(g.url), await client(p.url)
    g_id, p_id = await gc.whoami(), await pc.whoami()
    for c in (gc, pc):
        await c.join("lobby")

    for sender, origin in ((gc, "go"), (pc, "py")):
        await sender.roomcast("lobby", f"str from {origin} é")
        await sender.roomcast("lobby", f"bin from {origin}", kind="bin")
        await sender.emit("roomcastjson", {"room": "lobby", "from": origin, "n": [1, None]})
        await sender.emit("broadcast", f"all from {origin}")
        await sender.emit("broadcastbin", f"\x00all bin from {origin}".encode())
        other_id = p_id if sender is gc else g_id
        await sender.emit("socketcast", json.dumps({"socketId": other_id, "data": f"dm from {origin}"}))
        for c in (gc, pc):
            m = await c.next("roomcast")
            assert (m.text, m.type, m.binary) == (f"str from {origin} é", "S", False)
            m = await c.next("roomcastbin")
            assert (m.payload, m.type, m.binary) == (f"bin from {origin}".encode(), "B", True)
            m = await c.next("roomcastjson")
            assert (m.json, m.type) == ({"room": "lobby", "from": origin, "n": [1, None]}, "J")
            m = await c.next("broadcast")
            assert (m.text, m.type) == (f"all from {origin}", "S")
            m = await c.next("broadcastbin")
            assert (m.payload, m.binary) == (f"\x00all bin from {origin}".encode(), True)
        receiver = pc if sender is gc else gc
        assert (await receiver.next("socketcast")).text == f"dm from {origin}"
    for c in (gc, pc):  # exactly once: nothing more of any event
        for event in ("roomcast", "roomcastbin", "roomcastjson", "broadcast", "broadcastbin", "socketcast"):
            assert await c.extra(event, QUIET if event == "roomcast" else 0) == [], event
    assert "panic" not in g.log_text()


async def test_fleet_of_two_go_servers_and_one_cluster_each_cast_once_per_member(
    procs: ProcessGroup, mongo, client
) -> None:
    group = f"fleet-{uuid.uuid4().hex[:8]}"
    members = [go(procs, mongo, group, "goA"), go(procs, mongo, group, "goB"), py(procs, mongo, group, "pyC")]
    wait_fleet(mongo, group, {"goA", "goB", "pyC"})
    clients = [await client(m.url) for m in members]
    for c in clients:
        await c.join("fleet")
    for i, c in enumerate(clients):
        await c.roomcast("fleet", f"room from {i}")
        await c.emit("broadcastbin", f"all from {i}".encode())
    for c in clients:
        rooms = sorted(m.text for m in await c.take("roomcast", len(clients)))
        assert rooms == sorted(f"room from {i}" for i in range(len(clients)))
        alls = sorted(m.payload for m in await c.take("broadcastbin", len(clients)))
        assert alls == sorted(f"all from {i}".encode() for i in range(len(clients)))
    await asyncio.sleep(QUIET)
    for c in clients:
        assert await c.extra("roomcast", 0) == [] and await c.extra("broadcastbin", 0) == []
    for m in members[:2]:
        assert "panic" not in m.log_text()
