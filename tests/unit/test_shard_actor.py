"""RoomShardActor as a plain class, with fake gateway handles (no Ray)."""

import asyncio

from fake_rt import FakeRt

from sacsock_actors.ops import HolderAdded, HolderRemoved, Holders, Join, Leave, Unwatch, Watch, Watched
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
        assert g1.got[-1] == HolderAdded("r", "g0"), "g1 must know before apply returns"
        await shard.flush()
        assert [(type(op), sorted(op.gateways)) for op in g0.got] == [(Holders, ["g0", "g1"])], \
            "the joiner gets the whole list, the others only the change"
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

    assert asyncio.run(go()) == {
        "rooms": 1, "watches": 0, "pushed": 1, "lost": 0, "unknown_ops": 1,
        "rebuilding": 0, "joins_deferred": 0,
    }


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
        assert w.got[-1] == HolderAdded("r", "g0"), "told before apply returned"
        assert (await shard.stats())["watches"] == 1
        await shard.apply("w", [Unwatch("r")])
        await shard.apply("g1", [Leave("r")])
        await shard.flush()
        assert HolderRemoved("r", "g1") in g0.got
        assert HolderRemoved("r", "g1") not in w.got, "unwatched"
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
        join = asyncio.create_task(shard.apply("g0", [Join("s")]))
        await asyncio.sleep(0.01)
        assert g0.got == [] and g1.got == []  # g2 has not resynced yet
        assert not join.done(), "a join is confirmed only once the table is rebuilt"
        await shard.hello("g2", g2, [], every)
        await asyncio.wait_for(join, 5)
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


def test_a_join_applied_before_its_gateways_hello_waits_and_the_hello_does_not():
    """Apply runs before hello (the gateway has not noticed the restart yet): its join waits
    for the rebuild, and its resync hello (which its ping starts) never waits behind it."""

    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        a, b = FakeGateway(), FakeGateway(delay=0.02)
        every = ("a", "b")
        await shard.hello("a", a, ["r"], every)
        join = asyncio.create_task(shard.apply("b", [Join("r")]))
        await asyncio.sleep(0.02)
        assert not join.done() and a.got == [], "a has not been told: no confirmation yet"
        assert (await shard.stats())["rebuilding"] == 1
        await asyncio.wait_for(shard.hello("b", b, ["r"], every), 1.0)
        await asyncio.wait_for(join, 1.0)
        assert [(type(op), sorted(op.gateways)) for op in a.got] == [(Holders, ["a", "b"])], \
            "a knew b before b's join was confirmed"
        return await shard.stats()

    stats = asyncio.run(go())
    assert stats["rebuilding"] == 0 and stats["joins_deferred"] == 1


def test_a_join_its_gateways_hello_already_listed_still_waits_for_the_rebuild():
    """The resync hello lists the gateway's rooms, one of them joined just now, whose Join
    was still queued behind the hello: the shard already has it, but the others do not
    know yet, so the join is confirmed only once the rebuild told them."""

    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        a, b = FakeGateway(), FakeGateway()
        every = ("a", "b")
        await shard.hello("b", b, ["r"], every)  # new incarnation: a has not said hello yet
        join = asyncio.create_task(shard.apply("b", [Join("r")]))
        await asyncio.sleep(0.02)
        assert not join.done(), "a does not know b holds r: no confirmation yet"
        await asyncio.wait_for(shard.hello("a", a, ["r"], every), 1.0)
        await asyncio.wait_for(join, 1.0)
        assert [(type(op), sorted(op.gateways)) for op in a.got] == [(Holders, ["a", "b"])]

    asyncio.run(go())


def test_a_join_its_late_hello_already_listed_waits_for_the_change_to_reach_the_others():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        a, b = FakeGateway(delay=0.05), FakeGateway()
        await shard.hello("a", a, ["r"], ("a",))  # rebuilt
        await shard.flush()
        a.got.clear()
        await shard.hello("b", b, ["r"], ("a", "b"))  # late hello, listing r; its Join follows
        await shard.apply("b", [Join("r")])
        assert a.got == [HolderAdded("r", "b")], "a must know before b's join is confirmed"

    asyncio.run(go())


def test_a_deferred_join_is_confirmed_by_the_rebuild_bound_even_without_any_hello(monkeypatch):
    from sacsock_actors.rooms import actor

    monkeypatch.setattr(actor, "REBUILD_SECONDS", 0.05)

    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        await asyncio.wait_for(shard.apply("g0", [Join("r")]), 2.0)
        assert shard.deferred is None

    asyncio.run(go())


def test_a_late_hello_gets_whole_lists_and_the_others_only_the_change():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        g0, g1 = FakeGateway(), FakeGateway()
        await shard.hello("g0", g0, ["r", "s"], ("g0",))  # rebuilt: g0 is every gateway it knows
        await shard.flush()
        g0.got.clear()
        await shard.hello("g1", g1, ["r"], ("g0", "g1"))  # late: the shard is rebuilt already
        await shard.flush()
        assert g0.got == [HolderAdded("r", "g1")]
        assert [(op.room, sorted(op.gateways)) for op in g1.got] == [("r", ["g0", "g1"])]
        g0.got.clear()
        await shard.hello("g1", g1, [], ("g0", "g1"))  # resync: holds nothing now
        await shard.flush()
        assert g0.got == [HolderRemoved("r", "g1")]

    asyncio.run(go())


def test_dropping_a_gateway_tells_the_change_and_forgets_its_watches():
    async def go():
        shard = RoomShardActor(0, FakeRt({}))
        g0, g1 = FakeGateway(), FakeGateway()
        for gid, g in (("g0", g0), ("g1", g1)):
            await shard.hello(gid, g, [], ("g0", "g1"), True)
        await shard.apply("g0", [Join("r")])
        await shard.apply("g1", [Join("r"), Watch("x", 1)])
        await shard.flush()
        g0.got.clear()
        assert await shard.drop_gateway("g1") == 1
        await shard.flush()
        assert g0.got == [HolderRemoved("r", "g1")]
        assert (await shard.stats())["watches"] == 0

    asyncio.run(go())


class _Net:
    """Real Hubs and one real shard in one loop; ops delivered in order per destination."""

    def __init__(self, ids: list[str]) -> None:
        from sacsock_actors.gateways.hub import Hub

        self.ids = ids
        self.to_shard: dict[str, list] = {g: [] for g in ids}
        self.shard = RoomShardActor(0, FakeRt({}))
        self.hubs = {g: Hub(_NetLinks(self, g)) for g in ids}

    async def start(self) -> None:
        for gid in self.ids:
            await self.shard.hello(gid, _HubHandle(self.hubs[gid]), [], tuple(self.ids), True)

    async def settle(self) -> None:
        """Each gateway's shard ops in one batch (as an Outbox sends them), then the answers."""
        while any(self.to_shard.values()):
            for gid, ops in self.to_shard.items():
                batch, ops[:] = list(ops), []
                if batch:
                    await self.shard.apply(gid, batch)
                    self.hubs[gid].joins_confirmed(batch)
            await self.shard.flush()


class _NetLinks:
    shard_count = 1
    socket_tag = None

    def __init__(self, net: _Net, gid: str) -> None:
        self.net = net
        self.gateway_id = gid

    def gateway_for_tag(self, tag):
        return None

    def to_shard(self, index, op):
        self.net.to_shard[self.gateway_id].append(op)

    def to_gateway(self, gid, op):
        pass

    def other_gateways(self):
        return [g for g in self.net.ids if g != self.gateway_id]

    def to_bridges(self, op):
        pass


class _HubHandle:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.receive = self

    def remote(self, batch):
        async def call():
            self.hub.receive(batch)

        return call()


def test_hubs_fed_whole_lists_and_changes_agree_with_the_shard_after_random_churn():
    """Joins, leaves (also leave + rejoin in one batch) and casts from outside, at random:
    once settled, every hub's view of every room's holders is the shard's, built from one
    whole list and the changes after it."""
    import random

    from sacsock_actors.gateways.session import Session
    from sacsock_actors.protocol import encode

    rng = random.Random(14)
    ids = [f"g{i}" for i in range(6)]
    rooms = ["r0", "r1", "r2"]

    async def go():
        net = _Net(ids)
        await net.start()
        sessions = {g: [Session(f"{g}-s{i}", None, None) for i in range(3)] for g in ids}
        for g, ss in sessions.items():
            for s in ss:
                net.hubs[g].attach(s)
        for step in range(400):
            g = rng.choice(ids)
            hub, room, s = net.hubs[g], rng.choice(rooms), rng.choice(sessions[g])
            kind = rng.random()
            if kind < 0.45:
                hub.join(s, room)
            elif kind < 0.85:
                hub.leave(s, room)
            else:
                hub.roomcast(room, encode("e", step))  # watches a room not held here
            if rng.random() < 0.3:
                await net.settle()
        await net.settle()
        checked = 0
        for g, hub in net.hubs.items():
            for room in rooms:
                truth = set(net.shard.table.gateways(room)) - {g}
                if room in hub.rooms:
                    assert hub.holders.get(room) == truth, (g, room)
                    checked += 1
                elif room in hub.watched and hub.watched[room][1] is not None:
                    assert hub.watched[room][1] == truth, (g, room)
                    checked += 1
        return checked

    assert asyncio.run(go()) >= 6
