"""A worker node of a ray.cluster_utils.Cluster dies while serving (its own cluster)."""

from __future__ import annotations

import json

import ray
from ray.cluster_utils import Cluster
from sacclient import SacClient, free_port
from test_multinode import build
from waits import holders_known, until

from sacsock_actors.cluster import Placement


async def test_node_kill_other_nodes_keep_serving():
    """A worker node dies: the gateway on the head keeps serving, the dead node's gateway is
    purged (no more casts to it), and every shard answers and is rebuilt."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="sacsock")
    try:
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        head = ray.get_runtime_context().get_node_id()
        other = next(n for n in nodes if n != head)
        ports = [free_port(), free_port()]
        server = build()
        infos = server.start(placements=[Placement(head, ports[0]), Placement(other, ports[1])])
        g_head, g_other = infos[0]["gateway_id"], infos[1]["gateway_id"]
        a = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        a2 = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        b = await SacClient.connect(f"http://127.0.0.1:{ports[1]}/socket")
        for x in (a, a2, b):
            await x.call("join", "n-room", reply="joined")
        await holders_known(server, "n-room", {g_head: {g_other}, g_other: {g_head}})
        c.remove_node(worker)
        assert await b.closed() is not None  # its gateway died with the node
        await holders_known(server, "n-room", {g_head: set()})  # purged

        def shards_answer() -> bool:
            try:
                return all(ray.get([s.ping.remote() for s in server._runtime.shards], timeout=10))
            except Exception:  # noqa: BLE001 - re-created on the head
                return False

        await until(shards_answer, timeout=120, what="every shard answers")
        before = server.stats()[g_head].get("casts_lost", 0)
        for i in range(20):
            await a.emit("cast", json.dumps({"kind": "room", "room": "n-room", "data": i}))
        for x in (a, a2):
            assert [(await x.recv_event("got")).json for _ in range(20)] == list(range(20))
        assert server.stats()[g_head].get("casts_lost", 0) == before
        # a join made after the node died works
        a3 = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        await a3.call("join", "n-room", reply="joined")
        await a.emit("cast", json.dumps({"kind": "room", "room": "n-room", "data": "late"}))
        assert (await a3.recv_event("got")).text == "late"
        for x in (a, a2, a3, b):
            await x.close()
        server.shutdown()
    finally:
        ray.shutdown()
        c.shutdown()
