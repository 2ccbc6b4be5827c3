"""BridgeActor as a plain object (no Ray): arrivals go to one gateway, failing over."""

from __future__ import annotations

import asyncio

from fake_rt import FakeRt, Handle

from sacsock_actors.bridges.actor import BridgeActor
from sacsock_actors.bridges.base import Bridge, Cast
from sacsock_actors.ops import Publish, StartBroadcast, StartRoomcast
from sacsock_actors.protocol import encode


class MemoryBridge(Bridge):
    name = "memory"

    def __init__(self) -> None:
        self.published: list[Cast] = []
        self.deliver = None
        self.stopped = False

    async def start(self, deliver):
        self.deliver = deliver

    async def publish(self, casts):
        self.published.extend(casts)

    async def shutdown(self):
        self.stopped = True


class Gateway:
    def __init__(self) -> None:
        self.got: list = []

    async def receive(self, ops):
        self.got.extend(ops)


def make():
    gws = [Gateway(), Gateway()]
    registry = {"gw-0": Handle(gws[0]), "gw-1": Handle(gws[1])}
    bridge = MemoryBridge()
    actor = BridgeActor(bridge, ["gw-0", "gw-1"], "test", FakeRt(registry))
    return actor, bridge, gws, registry


async def test_arrivals_become_start_ops_with_publish_off_and_fail_over():
    actor, bridge, gws, registry = make()
    await actor.start()
    bridge.deliver(Cast("r", "ev", "S", b"hi"))
    await actor.flush()
    assert gws[0].got == [StartRoomcast("r", encode("ev", "hi"), False)]
    registry["gw-0"].dead = True
    bridge.deliver(Cast(None, "ev", "S", b"all"))
    await actor.flush()
    assert gws[1].got == [StartBroadcast(encode("ev", "all"), False)]
    assert (await actor.stats())["to_cluster"] == 2


async def test_a_bad_arrival_is_counted_and_dropped():
    actor, bridge, gws, _ = make()
    await actor.start()
    bridge.deliver(Cast("r", "bad\x01event", "S", b"x"))
    await actor.flush()
    assert gws[0].got == [] and (await actor.stats())["invalid_in"] == 1


async def test_casts_from_the_cluster_are_published_once_and_unknown_ops_counted():
    actor, bridge, _, _ = make()
    await actor.start()
    await actor.publish([Publish("r", encode("e", 1)), Publish(None, encode("e", 2)), ("bogus",)])
    assert [(c.room, c.payload) for c in bridge.published] == [("r", b"1"), (None, b"2")]
    assert (await actor.stats())["unknown_ops"] == 1
    await actor.shutdown()
    assert bridge.stopped


async def test_when_every_gateway_is_down_arrivals_are_counted_lost():
    actor, bridge, _, registry = make()
    await actor.start()
    for h in registry.values():
        h.dead = True
    bridge.deliver(Cast("r", "ev", "S", b"hi"))
    await actor.flush()
    assert (await actor.stats())["lost_in"] == 1


class HungGateway(Gateway):
    """Takes a call and answers it only once released (a SIGSTOPped process)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.release = asyncio.Event()

    async def receive(self, ops):
        self.calls += 1
        await self.release.wait()
        self.got.extend(ops)


async def test_arrivals_past_max_backlog_behind_a_hung_gateway_are_dropped_and_counted():
    gw = HungGateway()
    bridge = MemoryBridge()
    actor = BridgeActor(bridge, ["gw-0"], "test", FakeRt({"gw-0": Handle(gw)}), max_backlog=3)
    await actor.start()
    bridge.deliver(Cast("r", "ev", "S", b"0"))
    while gw.calls == 0:  # the first call is in flight, and hangs
        await asyncio.sleep(0)
    for i in range(1, 10):
        bridge.deliver(Cast("r", "ev", "S", str(i).encode()))
    stats = await actor.stats()
    assert stats["dropped_backlog"] == 6 and stats["to_cluster"] == 10
    gw.release.set()
    await actor.flush()
    bridge.deliver(Cast("r", "ev", "S", b"after"))  # caught up: queued again
    await actor.flush()
    assert [op.frame for op in gw.got] == [encode("ev", p) for p in ("0", "1", "2", "3", "after")]
    assert (await actor.stats())["dropped_backlog"] == 6
