"""RoomShardActor as a plain class, with fake gateway handles (no Ray)."""

import asyncio

from fake_rt import FakeRt

from sacsock_actors.ops import Holders, Join, Leave, Unwatch, Watch, Watched
from sacsock_actors.rooms.actor import RoomShardActor


class FakeGateway:
    """Looks like a Ray actor handle: ``receive.remote(batch)`` returns an awaitable."""

    def __init__(self, delay: float = 0.0):
        self.got: list[tuple] = []
        self.delay = delay
        self.receive = self

    def remote(self, batch):
        async def call():
            await asyncio.sleep(self.delay)
            self.got.extend(batch)

        return call()


def test_apply_of_a_join_returns_after_the_other_holders_were_told():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        g0, g1 = FakeGateway(), FakeGateway(delay=0.05)
        await shard.hello("g0", g0, [])
        await shard.hello("g1", g1, ["r"])
        await shard.apply("g0", [Join("r")])
        told = [op for op in g1.got if type(op) is Holders and op.room == "r"]
        assert told and set(told[-1].gateways) == {"g0", "g1"}, "g1 must know before apply returns"
        return shard

    shard = asyncio.run(go())
    assert shard.pushed >= 3


def test_apply_of_a_room_nobody_else_holds_does_not_wait():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        g0 = FakeGateway(delay=10.0)
        await shard.hello("g0", g0, [])
        await asyncio.wait_for(shard.apply("g0", [Join("r")]), 1.0)
        await asyncio.wait_for(shard.apply("g0", [Leave("r")]), 1.0)

    asyncio.run(go())


def test_an_unknown_op_is_counted_not_fatal():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        await shard.hello("g0", FakeGateway(), [])
        await shard.apply("g0", [("bogus", "r"), Join("r")])
        return await shard.stats()

    assert asyncio.run(go()) == {"rooms": 1, "watches": 0, "pushed": 1, "lost": 0, "unknown_ops": 1}


def test_a_watch_is_answered_and_a_join_waits_until_the_watchers_were_told():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        g0, g1, w = FakeGateway(), FakeGateway(), FakeGateway(delay=0.05)
        for gid, g in (("g0", g0), ("g1", g1), ("w", w)):
            await shard.hello(gid, g, [], ("g0", "g1", "w"), True)
        await shard.apply("g1", [Join("r")])
        await shard.apply("w", [Watch("r", 7)])
        await shard.flush()
        assert w.got == [Watched("r", ("g1",), 7)]
        await shard.apply("g0", [Join("r")])
        last = w.got[-1]
        assert type(last) is Holders and set(last.gateways) == {"g0", "g1"}, "told before apply returned"
        assert (await shard.stats())["watches"] == 1
        await shard.apply("w", [Unwatch("r")])
        await shard.apply("g1", [Leave("r")])
        await shard.flush()
        assert all(type(op) is not Holders or set(op.gateways) != {"g0"} for op in w.got), "unwatched"
        await shard.apply("w", [Watch("x", 8)])
        await shard.hello("w", w, [], (), True)  # a new incarnation of w watches nothing
        return await shard.stats()

    assert asyncio.run(go())["watches"] == 0


def test_a_new_incarnation_tells_nobody_until_every_gateway_resynced():
    """The first gateway to resync must not hear that it alone holds a room: it would stop
    sending casts to the other holders (lost casts while a shard restarts)."""

    async def go():
        shard = RoomShardActor(0)
        g0, g1, g2 = FakeGateway(), FakeGateway(), FakeGateway()
        every = ("g0", "g1", "g2")
        await shard.hello("g0", g0, ["r"], every)
        await shard.hello("g1", g1, ["r"], every)
        await shard.apply("g0", [Join("s")])
        await asyncio.sleep(0.01)
        assert g0.got == [] and g1.got == []  # g2 has not resynced yet
        await shard.hello("g2", g2, [], every)
        for out in shard.outboxes.values():
            await out.flush()
        for g in (g0, g1):
            got = {op.room: set(op.gateways) for op in g.got}
            assert got["r"] == {"g0", "g1"}
        assert {op.room: set(op.gateways) for op in g0.got}["s"] == {"g0"}
        assert g2.got == []  # holds nothing

    asyncio.run(go())


def test_a_gateway_that_never_resyncs_delays_the_rebuild_a_bounded_time(monkeypatch):
    from sacsock_actors.rooms import actor

    monkeypatch.setattr(actor, "REBUILD_SECONDS", 0.05)

    async def go():
        shard = RoomShardActor(0)
        g0 = FakeGateway()
        await shard.hello("g0", g0, ["r"], ("g0", "dead"))
        assert shard.deferred is not None
        deadline = asyncio.get_running_loop().time() + 30  # a generous bound, not a measurement
        while shard.deferred is not None:  # the rebuild REBUILD_SECONDS later
            assert asyncio.get_running_loop().time() < deadline, "the deferred rebuild never ran"
            await asyncio.sleep(0.01)
        await shard.outboxes["g0"].flush()
        assert g0.got == [Holders("r", ("g0",))]

    asyncio.run(go())


def test_dropping_the_missing_gateway_completes_the_rebuild():
    async def go():
        shard = RoomShardActor(0)
        g0 = FakeGateway()
        await shard.hello("g0", g0, ["r"], ("g0", "dead"))
        assert shard.deferred is not None
        await shard.drop_gateway("dead")
        assert shard.deferred is None

    asyncio.run(go())


def test_a_watch_made_while_rebuilding_is_answered_once_rebuilt():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        g0, w = FakeGateway(), FakeGateway()
        every = ("g0", "w", "g2")
        await shard.hello("g0", g0, ["r"], every)
        await shard.hello("w", w, [], every)
        await shard.apply("w", [Watch("r", 3)])
        await shard.flush()
        assert w.got == [], "the table is incomplete: no answer yet (w keeps casting to everyone)"
        await shard.hello("g2", FakeGateway(), ["r"], every)
        await shard.flush()
        answers = [op for op in w.got if type(op) is Watched]
        assert [(a.room, sorted(a.gateways), a.seq) for a in answers] == [("r", ["g0", "g2"], 3)]

    asyncio.run(go())
