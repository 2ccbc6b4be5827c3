"""A worker node of a ray.cluster_utils.Cluster dies while serving (its own cluster)."""

from __future__ import annotations

import json

import ray
from ray.cluster_utils import Cluster
from sacclient import SacClient, free_port
from test_multinode import build
from waits import holders_known, until

from sacsock_actors.cluster import Placement
from sacsock_actors.rooms.table import shard_for


def room_of_shard(index: int, shards: int, prefix: str) -> str:
    """A room name that hashes to shard ``index``."""
    return next(f"{prefix}-{k}" for k in range(1000) if shard_for(f"{prefix}-{k}", shards) == index)


async def test_node_kill_other_nodes_keep_serving():
    """A worker node dies with a gateway and a shard on it (shard_placement="spread"): the
    gateways on the head keep serving, the dead node's gateway is purged (no more casts to
    it), the shard is re-created on the head and rebuilt from the gateways (nobody
    rejoins), and joins and casts to its rooms work."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="sacsock")
    try:
        nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        head = ray.get_runtime_context().get_node_id()
        other = next(n for n in nodes if n != head)
        ports = [free_port(), free_port(), free_port()]
        server = build(shard_placement="spread", room_shards=2)
        infos = server.start(placements=[Placement(head, ports[0]), Placement(head, ports[1]),
                                         Placement(other, ports[2])])
        g0, g1, g_other = (i["gateway_id"] for i in infos)
        shards = server._runtime.shards
        where = ray.get([s.node_id.remote() for s in shards], timeout=60)
        assert sorted(where) == sorted([head, other]), "spread: one shard on each node"
        victim = where.index(other)  # the shard that lives on the node about to die
        shard = shards[victim]
        room = room_of_shard(victim, len(shards), "n-room")
        a = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        a2 = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        c1 = await SacClient.connect(f"http://127.0.0.1:{ports[1]}/socket")
        b = await SacClient.connect(f"http://127.0.0.1:{ports[2]}/socket")
        for x in (a, a2, c1, b):
            await x.call("join", room, reply="joined")
        await holders_known(server, room, {g0: {g1, g_other}, g1: {g0, g_other}, g_other: {g0, g1}})
        epoch = ray.get(shard.ping.remote())
        c.remove_node(worker)
        assert await b.closed() is not None  # its gateway died with the node
        await holders_known(server, room, {g0: {g1}, g1: {g0}})  # purged

        def rebuilt_on_head() -> bool:  # re-created elsewhere, rebuilt from g0 and g1
            try:
                st = ray.get(shard.stats.remote(), timeout=10)
                return (ray.get(shard.ping.remote(), timeout=10) != epoch and st["rebuilding"] == 0
                        and st["rooms"] == 1 and ray.get(shard.node_id.remote(), timeout=10) == head)
            except Exception:  # noqa: BLE001 - being re-created
                return False

        await until(rebuilt_on_head, timeout=120, what="the dead node's shard re-created and rebuilt")
        assert all(ray.get([s.ping.remote() for s in shards], timeout=30))
        before = {g: server.stats()[g].get("casts_lost", 0) for g in (g0, g1)}
        for i in range(20):
            await a.emit("cast", json.dumps({"kind": "room", "room": room, "data": i}))
        for x in (a, a2, c1):
            assert [(await x.recv_event("got")).json for _ in range(20)] == list(range(20))
        assert {g: server.stats()[g].get("casts_lost", 0) for g in (g0, g1)} == before
        # joins through the re-created shard: a new room of it, first held on g0, joined on g1
        late_room = room_of_shard(victim, len(shards), "late-room")
        await a.call("join", late_room, reply="joined")
        c2 = await SacClient.connect(f"http://127.0.0.1:{ports[1]}/socket")
        await c2.call("join", late_room, reply="joined")
        await a.emit("cast", json.dumps({"kind": "room", "room": late_room, "data": "late"}))
        assert (await c2.recv_event("got")).text == "late"
        # and a join on g0 to the rebuilt room (held there already) hears c1's cast
        a3 = await SacClient.connect(f"http://127.0.0.1:{ports[0]}/socket")
        await a3.call("join", room, reply="joined")
        await c1.emit("cast", json.dumps({"kind": "room", "room": room, "data": "from g1"}))
        assert (await a3.recv_event("got")).text == "from g1"
        for x in (a, a2, a3, b, c1, c2):
            await x.close()
        server.shutdown()
    finally:
        ray.shutdown()
        c.shutdown()
