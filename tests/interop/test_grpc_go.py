"""The gRPC bridge against the real upstream Go server (``ssgrpc``), both as users run them:
``sacsock serve peer_app:server --grpc-...`` and the Go peer with ``-backend grpc`` (TLS +
HS256 token) or ``grpc-insecure``. One client script drives either side (peer_app.py has the
Go peer's handlers). Every wait is a bound, never a measurement.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from grpc_certs import PEER_NAME, make_cert
from harness import PEER_APP, ProcessGroup, free_port

pytestmark = [pytest.mark.integration]

KEY = "interop-grpc-shared-key-32-bytes!!"
WRONG_KEY = "a-different-shared-key-32-bytes!!!"
PROBE_BOUND = 120.0  # a peer's dial can back off for a while after the other side starts late


class Fleet:
    """Certificates and key file for one test, and how each side is started."""

    def __init__(self, procs: ProcessGroup, tmp: Path) -> None:
        self.procs = procs
        self.certs = make_cert(tmp, "mesh")
        self.key_file = tmp / "shared.key"
        self.key_file.write_text(KEY + "\n")  # one trailing newline, as `echo` writes it

    def ours(self, listen: int, peers: list[int], insecure: bool = False) -> Any:
        args = ["--grpc-listen", f"127.0.0.1:{listen}"]
        for p in peers:
            args += ["--grpc-peer", f"{PEER_NAME}@127.0.0.1:{p}"]
        if insecure:
            args += ["--grpc-insecure"]
        else:
            args += ["--grpc-cert", self.certs.cert, "--grpc-key", self.certs.key,
                     "--grpc-shared-key-file", str(self.key_file)]
        return self.procs.sacsock(PEER_APP, *args)

    def go(self, listen: int, peers: list[int], insecure: bool = False, key: str = KEY) -> Any:
        entries = ",".join(f"{PEER_NAME}@127.0.0.1:{p}" for p in peers)
        flags = ["-grpc", f"127.0.0.1:{listen}", "-peers", entries]
        if insecure:
            return self.procs.go_peer(*flags, backend="grpc-insecure")
        flags += ["-cert", self.certs.cert, "-key", self.certs.key, "-sharedkey", key]
        return self.procs.go_peer(*flags, backend="grpc")


async def linked(client: Any, sender_url: str, receiver_url: str, room: str) -> None:
    """Wait until a roomcast made on the sender reaches the receiver (both dialled, both
    accepted): probe with roomcasts to a room only the probe clients are in."""
    rx = await client(receiver_url)
    tx = await client(sender_url)
    await rx.join(room)
    deadline = asyncio.get_running_loop().time() + PROBE_BOUND
    while not rx.of("roomcast"):
        assert asyncio.get_running_loop().time() < deadline, f"no link {sender_url} -> {receiver_url}"
        await tx.roomcast(room, "probe")
        await asyncio.sleep(0.5)
    await rx.leave(room)


async def check_both_directions(client: Any, ours_url: str, go_url: str) -> None:
    """Every kind and type, each way, exactly once."""
    sides = {"ours": ours_url, "go": go_url}
    c = {name: await client(url) for name, url in sides.items()}
    ids = {name: await cl.whoami() for name, cl in c.items()}
    for cl in c.values():
        await cl.join("lobby")
    for src, dst in (("ours", "go"), ("go", "ours")):
        tag = f"{src}->{dst}"
        await c[src].roomcast("lobby", f"s {tag} é")
        await c[src].roomcast("lobby", f"b {tag}", kind="bin")
        await c[src].emit("roomcastjson", {"room": "lobby", "n": [1, "é", None], "tag": tag})
        await c[src].emit("broadcast", f"all {tag}")
        await c[src].emit("broadcastbin", b"\x00\xff" + tag.encode())
        await c[src].emit("socketcast", {"socketId": ids[dst], "data": f"dm {tag}"})
        for cl in c.values():  # the publisher's own server and the peer, each once
            m = await cl.next("roomcast")
            assert (m.type, m.text, m.binary) == ("S", f"s {tag} é", False)
            m = await cl.next("roomcastbin")
            assert (m.type, m.payload, m.binary) == ("B", f"b {tag}".encode(), True)
            m = await cl.next("roomcastjson")
            assert (m.type, m.json) == ("J", {"room": "lobby", "n": [1, "é", None], "tag": tag})
            m = await cl.next("broadcast")
            assert (m.type, m.text) == ("S", f"all {tag}")
            m = await cl.next("broadcastbin")
            assert (m.type, m.payload) == ("B", b"\x00\xff" + tag.encode())
        m = await c[dst].next("socketcast")
        assert (m.type, m.text) == ("S", f"dm {tag}")
    for cl in c.values():
        for event in ("roomcast", "roomcastbin", "roomcastjson", "broadcast", "broadcastbin", "socketcast"):
            assert await cl.extra(event, 0.3) == [], event


@pytest.mark.parametrize("insecure", [False, True], ids=["grpc-tls-token", "grpc-insecure"])
async def test_go_peer_both_directions_all_kinds(procs, client, tmp_path, insecure):
    fleet = Fleet(procs, tmp_path)
    p_ours, p_go = free_port(), free_port()
    ours = fleet.ours(p_ours, [p_go], insecure)
    go = fleet.go(p_go, [p_ours], insecure)
    await linked(client, ours.url, go.url, "probe-a")
    await linked(client, go.url, ours.url, "probe-b")
    await check_both_directions(client, ours.url, go.url)
    if insecure:
        assert "INSECURE" in ours.log_text()
    assert KEY not in ours.log_text()


async def test_mesh_of_two_go_servers_and_one_cluster_each_cast_once(procs, client, tmp_path):
    fleet = Fleet(procs, tmp_path)
    p_ours, p_g1, p_g2 = free_port(), free_port(), free_port()
    ours = fleet.ours(p_ours, [p_g1, p_g2])
    g1 = fleet.go(p_g1, [p_ours, p_g2])
    g2 = fleet.go(p_g2, [p_ours, p_g1])
    urls = {"ours": ours.url, "g1": g1.url, "g2": g2.url}
    for a in urls:
        for b in urls:
            if a != b:
                await linked(client, urls[a], urls[b], f"probe-{a}-{b}")
    c = {name: await client(url) for name, url in urls.items()}
    for cl in c.values():
        await cl.join("mesh")
    for name, cl in c.items():
        await cl.roomcast("mesh", f"from {name}")
        await cl.emit("broadcastbin", f"all from {name}".encode())
    for name, cl in c.items():
        got = sorted(m.text for m in await cl.take("roomcast", 3))
        assert got == sorted(f"from {n}" for n in urls), name
        got = sorted(m.payload for m in await cl.take("broadcastbin", 3))
        assert got == sorted(f"all from {n}".encode() for n in urls), name
    for name, cl in c.items():
        assert await cl.extra("roomcast", 1.0) == [] and await cl.extra("broadcastbin", 0.1) == [], name


async def test_a_go_peer_with_another_shared_key_is_refused_both_ways(procs, client, tmp_path):
    fleet = Fleet(procs, tmp_path)
    p_ours, p_go = free_port(), free_port()
    ours = fleet.ours(p_ours, [p_go])
    go = fleet.go(p_go, [p_ours], key=WRONG_KEY)
    c_ours, c_go = await client(ours.url), await client(go.url)
    await c_ours.join("lobby")
    await c_go.join("lobby")
    deadline = asyncio.get_running_loop().time() + PROBE_BOUND
    n = 0
    # keep casting both ways until each side has refused the other at least once
    while not ("refused an RPC" in ours.log_text() and "failed: UNKNOWN" in ours.log_text()):
        assert asyncio.get_running_loop().time() < deadline, "no refusal seen on either side"
        n += 1
        await c_ours.roomcast("lobby", f"ours {n}")
        await c_go.roomcast("lobby", f"go {n}")
        await asyncio.sleep(0.5)
    assert "bad_signature" in ours.log_text()  # the reason, never the token
    assert "Bearer" not in ours.log_text() and KEY not in ours.log_text()
    # nothing crossed: each side saw its own casts only (all n arrived, then a quiet second)
    for cl in (c_ours, c_go):
        await cl.until(lambda cl=cl: len(cl.of("roomcast")) >= n, "the side's own casts")
    await asyncio.sleep(1.0)  # an absence window: nothing from the other side arrives late
    assert all(m.text.startswith("ours ") for m in c_ours.of("roomcast"))
    assert all(m.text.startswith("go ") for m in c_go.of("roomcast"))
    assert len(c_ours.of("roomcast")) == len(c_go.of("roomcast")) == n
    go_log = go.log_text()
    assert "rpc error" in go_log or "signature" in go_log.lower(), go_log[-2000:]

