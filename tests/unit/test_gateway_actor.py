"""GatewayActor and RoomShardActor as plain objects in one event loop (no Ray): two
gateways on their own ports, one shard, real websocket clients."""

from __future__ import annotations

import asyncio
import json

from chat_app import build
from fake_rt import FakeRt, Handle
from sacclient import SacClient, free_port

from sacsock_actors.gateways.actor import GatewayActor, GatewayConfig
from sacsock_actors.ops import StartBroadcast
from sacsock_actors.protocol import encode
from sacsock_actors.rooms.actor import RoomShardActor


class Cluster:
    """Two gateways and one shard wired through fake handles."""

    def __init__(self) -> None:
        self.registry: dict[str, Handle] = {}
        spec = build()._spec
        shard_rt = FakeRt(self.registry)
        self.shard = RoomShardActor(0, shard_rt)
        self.registry["shard:0"] = Handle(self.shard)
        self.gateways: dict[str, GatewayActor] = {}
        self.handles: dict[str, Handle] = {}
        for gid in ("gw-0", "gw-1"):
            rt = FakeRt(self.registry)
            config = GatewayConfig(gid, "127.0.0.1", free_port(), "/socket", ("shard:0",), "test")
            gw = GatewayActor(spec, config, rt)
            rt.handle = self.handles[gid] = self.registry[gid] = Handle(gw)
            self.gateways[gid] = gw

    async def start(self) -> None:
        for gw in self.gateways.values():
            await gw.start(self.handles, [])

    def url(self, gid: str) -> str:
        return f"http://127.0.0.1:{self.gateways[gid].config.port}/socket"

    async def stop(self) -> None:
        for gw in self.gateways.values():
            await gw.close_all()


async def client(url: str) -> tuple[SacClient, str]:
    c = await SacClient.connect(url)
    return c, (await c.recv_event("welcome")).json["id"]


async def test_a_cast_right_after_a_join_reply_reaches_the_new_member_without_ray():
    cluster = Cluster()
    await cluster.start()
    (a, _), (b, b_id) = await client(cluster.url("gw-0")), await client(cluster.url("gw-1"))
    for i in range(30):
        room = f"r{i}"
        await a.call("join", room)
        await b.call("join", room)
        await a.emit("cast_mark", json.dumps({"room": room, "i": i, "to": b_id}))
        assert (await b.recv_event("rc")).json == i
        assert (await b.recv_event("mark")).json == i
    await a.close()
    await b.close()
    await cluster.stop()


async def test_a_room_only_one_gateway_holds_stays_there_and_a_shared_one_crosses():
    cluster = Cluster()
    await cluster.start()
    gw0 = cluster.gateways["gw-0"]
    (a, _), (b, _) = await client(cluster.url("gw-0")), await client(cluster.url("gw-1"))
    await a.call("join", "solo")
    before = (await gw0.stats())["ray_ops_out"]
    await a.emit("roomcast", json.dumps({"room": "solo", "event": "s", "data": 1}))
    assert (await a.recv_event("s")).json == 1
    assert (await gw0.stats())["ray_ops_out"] == before, "nobody else holds solo"
    await b.call("join", "solo")
    await a.emit("roomcast", json.dumps({"room": "solo", "event": "s", "data": 2}))
    assert (await b.recv_event("s")).json == 2
    for c in (a, b):
        await c.close()
    await cluster.stop()


async def test_receive_applies_ops_and_a_dead_peer_counts_lost_casts():
    cluster = Cluster()
    await cluster.start()
    a, _ = await client(cluster.url("gw-0"))
    gw0 = cluster.gateways["gw-0"]
    await gw0.receive([StartBroadcast(encode("hello", "all"), False), ("bogus",)])
    assert (await a.recv_event("hello")).text == "all"
    cluster.handles["gw-1"].dead = True
    await gw0.receive([StartBroadcast(encode("x", 1), False)])
    await gw0.flush()
    stats = await gw0.stats()
    assert stats["casts_lost"] == 1 and stats["unknown_ops"] == 1
    assert stats["sockets"] == 1
    await a.close()
    await cluster.stop()


async def test_a_restarted_shard_is_rebuilt_from_the_gateways():
    cluster = Cluster()
    await cluster.start()
    a, _ = await client(cluster.url("gw-0"))
    await a.call("join", "kept")
    old = cluster.shard
    fresh = RoomShardActor(0, FakeRt(cluster.registry))
    cluster.registry["shard:0"].obj = fresh  # a restart: same handle, empty table, new epoch
    assert old.epoch != fresh.epoch
    gw0 = cluster.gateways["gw-0"]
    gw0.shard_epoch(0, await fresh.ping())
    for _ in range(200):  # bounded wait for the resync task
        if len(fresh.table):
            break
        await asyncio.sleep(0.01)
    assert fresh.table.gateways("kept") == {"gw-0"}
    assert (await gw0.stats())["shard_resyncs"] == 1
    await a.close()
    await cluster.stop()


async def test_a_watch_is_answered_and_a_shard_restart_forgets_it():
    cluster = Cluster()
    await cluster.start()
    (a, _), (b, _) = await client(cluster.url("gw-0")), await client(cluster.url("gw-1"))
    await b.call("join", "far")
    await a.emit("roomcast", json.dumps({"room": "far", "event": "s", "data": 1}))
    assert (await b.recv_event("s")).json == 1
    gw0 = cluster.gateways["gw-0"]
    for _ in range(200):  # bounded wait for the shard's answer
        if gw0.hub.watched.get("far", (0, None))[1] is not None:
            break
        await asyncio.sleep(0.01)
    assert gw0.hub.watched["far"][1] == {"gw-1"}
    assert (await gw0.stats())["watching"] == 1
    assert (await cluster.shard.stats())["watches"] == 1
    gw0.shard_epoch(0, "a-new-epoch")  # the shard restarted: what it told is forgotten
    assert "far" not in gw0.hub.watched
    await a.emit("roomcast", json.dumps({"room": "far", "event": "s", "data": 2}))
    assert (await b.recv_event("s")).json == 2
    await a.close()
    await b.close()
    await cluster.stop()


async def test_socket_id_tags_stay_put_when_a_gateway_is_drained():
    cluster = Cluster()
    await cluster.start()
    gw1 = cluster.gateways["gw-1"]
    assert gw1.links.socket_tag == 1 and gw1.links.gateway_for_tag(0) == "gw-0"
    await gw1.set_gateways({"gw-1": cluster.handles["gw-1"]})  # gw-0 drained
    assert gw1.links.socket_tag == 1, "ids already handed out must keep routing here"
    assert gw1.links.gateway_for_tag(0) == "gw-0" and gw1.links.other_gateways() == []
    assert gw1.links.gateway_for_tag(5) is None
    await cluster.stop()


def test_the_stream_secret_is_not_in_the_config_repr():
    secret = b"\x07" * 32
    config = GatewayConfig("gw-0", "127.0.0.1", 1, "/socket", ("shard:0",), "test", stream_secret=secret)
    assert "stream_secret" not in repr(config) and repr(secret)[2:10] not in repr(config)
