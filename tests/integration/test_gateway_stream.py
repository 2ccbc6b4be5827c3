"""Casts between two gateways over their authenticated stream (gateway_transport="stream"),
with real Ray actors: order, a peer's restart (Ray meanwhile, then a new stream), and a
stranger on the stream port refused and counted."""

from __future__ import annotations

import asyncio
import json

import pytest
import ray
from chat_app import build
from test_gateways import clients_on_two_gateways, close_all, delta, gateway_ids
from waits import holders_known, until

pytestmark = pytest.mark.integration


def streams_of(served, gid: str) -> list[str]:
    return ray.get(served.server._runtime.gateways[gid].streams.remote(), timeout=30)


async def burst_in_order(a, b, room: str, n: int) -> None:
    await a.emit("burst", json.dumps({"room": room, "n": n}))
    got = [(await b.recv_event("burst")).json for _ in range(n)]
    assert got == list(range(n))


async def test_cross_casts_go_over_the_stream_in_order(serve):
    served = serve(build(gateway_transport="stream"), gateways=2)
    assert all(len(i["stream"]) == 2 for i in served.infos)
    groups = await clients_on_two_gateways(served, per_gateway=1)
    ga, gb = gateway_ids(served, groups)
    (a, _), = list(groups.values())[0]
    (b, _), = list(groups.values())[1]
    await b.call("join", "s-room")
    await holders_known(served.server, "s-room", {gb: set()})
    await burst_in_order(a, b, "s-room", 200)  # the first cast starts the connection
    await until(lambda: gb in streams_of(served, ga), what=f"stream {ga} -> {gb}")
    before = served.server.stats()
    await burst_in_order(a, b, "s-room", 500)
    after = served.server.stats()
    assert delta(before, after, "stream_ops_out") >= 500
    assert delta(before, after, "stream_fallback_batches") == 0
    assert after[gb]["stream_batches_in"] >= 1 and after[gb]["stream_accepted"] == 1
    assert after[ga].get("casts_lost", 0) == 0
    await close_all(groups)


async def test_a_restarted_peer_gets_casts_over_ray_then_a_new_stream(serve):
    served = serve(build(room_shards=1, gateway_transport="stream"), gateways=2)
    groups = await clients_on_two_gateways(served, per_gateway=1)
    ga, gb = gateway_ids(served, groups)
    (a, _), = list(groups.values())[0]
    (b, _), = list(groups.values())[1]
    await b.call("join", "r-room")
    await holders_known(served.server, "r-room", {gb: set()})
    await burst_in_order(a, b, "r-room", 50)
    await until(lambda: gb in streams_of(served, ga), what=f"stream {ga} -> {gb}")
    handle = served.server._runtime.gateways[gb]
    old_address = ray.get(handle.stream_address.remote(), timeout=30)
    ray.kill(handle, no_restart=False)
    await until(lambda: gb not in streams_of(served, ga), what="the broken stream noticed")

    def restarted():  # Ray restarted it and the supervisor started it again
        try:
            info = ray.get(handle.info.remote(), timeout=5)
        except Exception:  # noqa: BLE001 - restarting
            return None
        return info if info["started"] else None

    new_pid = (await until(restarted, what=f"{gb} restarted"))["pid"]
    assert ray.get(handle.stream_address.remote(), timeout=30) != old_address
    await b.close()
    groups2 = await clients_on_two_gateways(served, per_gateway=1)
    (b2, _), = groups2[new_pid]
    (a2, _), = next(g for pid, g in groups2.items() if pid != new_pid)
    await b2.call("join", "r-room")
    await holders_known(served.server, "r-room", {gb: set()})
    # every cast arrives in order, over Ray until the new stream is up and over it after
    for _ in range(100):
        await burst_in_order(a2, b2, "r-room", 20)
        if gb in streams_of(served, ga):
            break
    await until(lambda: gb in streams_of(served, ga), what=f"new stream {ga} -> {gb}")
    await burst_in_order(a2, b2, "r-room", 100)
    stats = served.server.stats()[ga]
    assert stats["stream_disconnects"] >= 1 and stats["stream_connects"] >= 2
    await a.close()
    await close_all(groups2)


async def test_an_unauthenticated_client_on_the_stream_port_is_refused_and_counted(serve):
    served = serve(build(gateway_transport="stream"), gateways=2)
    info = served.infos[0]
    host, port = info["stream"]
    reader, writer = await asyncio.open_connection(host, port)
    challenge = await asyncio.wait_for(reader.readexactly(20), 30)
    assert challenge.startswith(b"SSG1")
    writer.write(b"SSG1" + bytes(16) + b"\x04gw-9" + bytes(32))  # a MAC made without the key
    assert await asyncio.wait_for(reader.read(), 30) == b""  # closed
    writer.close()
    stats = served.server.stats()[info["gateway_id"]]
    assert stats["stream_auth_failed"] == 1 and stats.get("stream_accepted", 0) == 0
