"""Faults with real processes: a gateway gone for good is purged everywhere."""

from __future__ import annotations

import json

import pytest
import ray
from chat_app import build
from test_gateways import clients_on_two_gateways, close_all, delta, gateway_ids
from waits import holders_known, until

pytestmark = pytest.mark.integration


async def test_dead_gateway_is_purged_from_shard_and_peer_lists(serve):
    served = serve(build(room_shards=1), gateways=2)
    groups = await clients_on_two_gateways(served, per_gateway=1)
    ga, gb = gateway_ids(served, groups)
    (a, _), = groups[next(iter(groups))]
    (b, _), = list(groups.values())[1]
    await a.call("join", "shared")
    await b.call("join", "shared")
    await holders_known(served.server, "shared", {ga: {gb}, gb: {ga}})
    shard = served.server._runtime.shards[0]
    ray.kill(served.server._runtime.gateways[ga], no_restart=True)
    # the supervisor notices, the shard forgets ga and tells gb, which stops sending to it
    await holders_known(served.server, "shared", {gb: set()})
    before = served.server.stats()
    for i in range(10):
        await b.emit("roomcast", json.dumps({"room": "shared", "event": "after", "data": i}))
        assert (await b.recv_event("after")).json == i
    await b.emit("broadcast", "all")
    assert (await b.recv_event("broadcast")).text == "all"
    after = served.server.stats()
    assert after[gb].get("casts_lost", 0) == before[gb].get("casts_lost", 0) == 0
    assert delta(before, after, "ray_ops_out") == 0  # nothing goes to the dead gateway
    rooms = await until(lambda: ray.get(shard.stats.remote())["rooms"], what="shard rooms")
    assert rooms == 1  # "shared", held by gb only
    await close_all({k: v for k, v in groups.items() if v[0][0] is b})
