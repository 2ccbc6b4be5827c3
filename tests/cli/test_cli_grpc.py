"""examples/multihome over gRPC as its README runs it: two `sacsock serve --grpc-...` processes,
each with its own local Ray, meshed peer to peer with TLS and a shared key from a file."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from grpc_certs import PEER_NAME, make_cert
from sacclient import SacClient, free_port
from serve_instance import ServeInstance

pytest.importorskip("grpc")

SECRET = "cli-grpc-shared-key-0123456789abcdef"
BOUND = 180.0  # a cold local Ray start on a busy machine


async def test_two_instances_share_rooms_over_grpc(tmp_path):
    pair = make_cert(tmp_path)
    key_file = tmp_path / "mesh.secret"
    key_file.write_text(SECRET + "\n")
    tls = ["--grpc-cert", pair.cert, "--grpc-key", pair.key, "--grpc-shared-key-file", str(key_file)]
    g1, g2 = free_port(), free_port()
    instances = [ServeInstance("multihome", name, free_port(), "--grpc-listen", f"127.0.0.1:{listen}",
                               "--grpc-peer", f"{PEER_NAME}@127.0.0.1:{peer}", *tls)
                 for name, listen, peer in (("one", g1, g2), ("two", g2, g1))]
    clients: list[SacClient] = []
    try:
        for inst in instances:
            await inst.ready(BOUND)
        for inst in instances:
            clients.append(await SacClient.connect(f"http://127.0.0.1:{inst.port}/socket"))
        a, b = clients
        ha, hb = [(await c.recv_event("hello")).json for c in clients]
        assert (ha["instance"], hb["instance"]) == ("one", "two")
        for c in clients:
            await c.emit("join", "lobby")
            assert (await c.recv_event("joined")).text == "lobby"
        # the peers dial each other in the background: wait until one -> two and two -> one work
        for src, dst, who in ((a, b, "one"), (b, a, "two")):
            deadline = time.monotonic() + BOUND
            while True:
                await src.emit("message", json.dumps({"room": "lobby", "text": "probe"}))
                try:
                    m = (await dst.recv_event("message", timeout=1.0)).json
                    if m["instance"] == who:
                        break
                except asyncio.TimeoutError:
                    pass
                assert time.monotonic() < deadline, f"{who} never reached its peer"
        for c in clients:  # drop the probes still on their way
            try:
                while True:
                    await c.recv_event("message", timeout=1.0)
            except asyncio.TimeoutError:
                pass
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
        assert SECRET not in out and "Bearer" not in out
        assert "TLS + token" in out
