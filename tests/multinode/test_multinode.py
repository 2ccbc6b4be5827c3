"""Several Ray nodes on this machine (ray.cluster_utils.Cluster): casts cross nodes.

Runs in its own pytest process (its own Ray cluster), apart from the shared session.
"""

from __future__ import annotations

import json

import pytest
import ray
from ray.cluster_utils import Cluster
from sacclient import SacClient, free_port
from waits import holders_known

from sacsock_actors import SocketServer
from sacsock_actors.cluster import Placement


def build(**options) -> SocketServer:
    server = SocketServer(**options)

    @server.on("whoami")
    async def whoami(sock, data):
        import ray as _ray

        sock.emit("whoami", {"id": sock.id, "node": _ray.get_runtime_context().get_node_id()})

    @server.on("join")
    def join(sock, data):
        sock.join(data.decode())
        sock.emit("joined", data.decode())

    @server.on("cast")
    def cast(sock, data):
        msg = json.loads(data)
        if msg["kind"] == "room":
            sock.roomcast(msg["room"], "got", msg["data"])
        elif msg["kind"] == "all":
            sock.broadcast("got", msg["data"])
        else:
            sock.socketcast(msg["to"], "got", msg["data"])

    return server


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="sacsock")
    yield c
    ray.shutdown()
    c.shutdown()


async def test_casts_cross_nodes(cluster):
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    ports = [free_port(), free_port()]
    server = build()
    infos = server.start(placements=[Placement(nodes[0], ports[0]), Placement(nodes[1], ports[1])])
    try:
        assert [i["node_id"] for i in infos] == nodes
        a = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        b = await SacClient.connect(f"http://127.0.0.1:{ports[1]}/socket")
        wa, wb = (await a.call("whoami")).json, (await b.call("whoami")).json
        assert wa["node"] == nodes[0] and wb["node"] == nodes[1]
        await a.call("join", "lobby", reply="joined")
        await b.call("join", "lobby", reply="joined")
        g0, g1 = infos[0]["gateway_id"], infos[1]["gateway_id"]
        await holders_known(server, "lobby", {g0: {g1}, g1: {g0}})
        await a.emit("cast", json.dumps({"kind": "room", "room": "lobby", "data": "room-x"}))
        for c in (a, b):
            assert (await c.recv_event("got")).text == "room-x"
        await b.emit("cast", json.dumps({"kind": "all", "data": {"n": 1}}))
        for c in (a, b):
            assert (await c.recv_event("got")).json == {"n": 1}
        await a.emit("cast", json.dumps({"kind": "socket", "to": wb["id"], "data": "dm"}))
        assert (await b.recv_event("got")).text == "dm"
        server.roomcast("lobby", "got", b"\x01driver")
        for c in (a, b):
            assert (await c.recv_event("got")).payload == b"\x01driver"
        await a.close()
        await b.close()
    finally:
        server.shutdown()


async def test_gateways_per_node_puts_gateways_everywhere(cluster):
    port = free_port()
    server = build()
    infos = server.start(port=port, gateways_per_node=1)
    try:
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert {i["node_id"] for i in infos} == nodes
        assert {i["port"] for i in infos} == {port}
    finally:
        server.shutdown()
