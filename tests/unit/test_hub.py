"""The gateway hub's routing with fake links and transports (no Ray, no aiohttp)."""

import asyncio

import pytest

from sacsock_actors.gateways.hub import Hub
from sacsock_actors.gateways.session import Session
from sacsock_actors.gateways.wsframe import ws_frame
from sacsock_actors.ops import (
    Deliver,
    DeliverAll,
    Holders,
    Join,
    Leave,
    Publish,
    StartBroadcast,
    StartRoomcast,
)
from sacsock_actors.protocol import encode, socket_room
from sacsock_actors.rooms.table import shard_for


class FakeTransport:
    def __init__(self, buffered: int = 0):
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.aborted = False

    def write(self, data):
        self.writes.append(bytes(data))

    def writelines(self, data):
        self.write(b"".join(data))

    def get_write_buffer_size(self):
        return self.buffered

    def is_closing(self):
        return self.aborted

    def abort(self):
        self.aborted = True


class FakeLinks:
    def __init__(self, others=(), shards=2):
        self.gateway_id = "g0"
        self.shard_count = shards
        self.shard_ops: list[tuple[int, tuple]] = []
        self.gateway_ops: list[tuple[str, tuple]] = []
        self.bridge_ops: list[tuple] = []
        self._others = list(others)

    def to_shard(self, index, op):
        self.shard_ops.append((index, op))

    def to_gateway(self, gid, op):
        self.gateway_ops.append((gid, op))

    def other_gateways(self):
        return self._others

    def to_bridges(self, op):
        self.bridge_ops.append(op)


def make(others=(), limit=1000, grace=0.0):
    slow = []
    links = FakeLinks(others)
    hub = Hub(links, max_outgoing_buffer=limit, slow_consumer_grace=grace, on_slow_consumer=slow.append)
    return hub, links, slow


def session(hub, sid, buffered=0):
    s = Session(sid, None, FakeTransport(buffered))
    hub.attach(s)
    return s


def run(fn):
    async def go():
        fn()
        await asyncio.sleep(0)  # let the flush callback run

    asyncio.run(go())


def confirm(hub, links):
    """What the gateway does once the shard applied the ops sent so far."""
    hub.joins_confirmed([op for _, op in links.shard_ops])
    links.shard_ops.clear()


def test_attach_joins_id_room_without_telling_shards():
    hub, links, _ = make()
    s = session(hub, "A")
    assert s.rooms == {socket_room("A")}
    assert links.shard_ops == []


def test_first_join_and_last_leave_tell_the_shard_once():
    hub, links, _ = make()
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(a, "lobby")
    hub.join(b, "lobby")
    hub.leave(a, "lobby")
    hub.leave(a, "lobby")
    hub.leave(b, "lobby")
    k = shard_for("lobby", 2)
    assert links.shard_ops == [(k, Join("lobby")), (k, Leave("lobby"))]


def test_roomcast_writes_one_prebuilt_frame_per_member_and_asks_all_when_holders_unknown():
    hub, links, _ = make(others=["g1", "g2"])
    a, b, c = session(hub, "A"), session(hub, "B"), session(hub, "C")
    hub.join(a, "r")
    hub.join(b, "r")
    confirm(hub, links)
    frame = encode("ev", "hi")
    run(lambda: hub.roomcast("r", frame))
    wire = ws_frame(frame.data, False)
    assert a.transport.writes == [wire] and b.transport.writes == [wire]
    assert c.transport.writes == []
    assert links.gateway_ops == [("g1", Deliver("r", wire)), ("g2", Deliver("r", wire))]
    assert links.shard_ops == [], "no cast passes through a shard"
    assert links.bridge_ops == [Publish("r", frame)]


def test_roomcast_goes_only_to_the_holders_the_shard_named():
    hub, links, _ = make(others=["g1", "g2"])
    a = session(hub, "A")
    hub.join(a, "r")
    hub.receive([Holders("r", ("g0",))])
    run(lambda: hub.roomcast("r", encode("e", 1)))
    assert links.gateway_ops == [], "nobody else holds r: the cast stays here"
    hub.receive([Holders("r", ("g0", "g2"))])
    run(lambda: hub.roomcast("r", encode("e", 2)))
    assert [g for g, _ in links.gateway_ops] == ["g2"]


def test_holders_forgotten_when_room_leaves_this_gateway():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    hub.join(a, "r")
    hub.receive([Holders("r", ("g0",))])
    hub.leave(a, "r")
    assert "r" not in hub.holders
    hub.join(a, "r")
    run(lambda: hub.roomcast("r", encode("e", 1)))
    assert [g for g, _ in links.gateway_ops] == ["g1"]


def test_a_room_not_held_here_goes_to_every_other_gateway():
    hub, links, _ = make(others=["g1", "g2"])
    session(hub, "A")
    run(lambda: hub.roomcast("elsewhere", encode("e", 1)))
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2"]


def test_a_lone_gateway_never_sends_casts_anywhere():
    hub, links, _ = make(others=[])
    a = session(hub, "A")
    hub.join(a, "r")
    confirm(hub, links)
    run(lambda: hub.roomcast("r", encode("e", 1)))
    run(lambda: hub.roomcast("elsewhere", encode("e", 1)))
    assert links.gateway_ops == [] and len(a.transport.writes) == 1


def test_peers_for_a_room_not_held_are_ignored():
    hub, links, _ = make(others=["g1"])
    hub.receive([Holders("r", ("g0",))])
    assert "r" not in hub.holders


def test_socketcast_local_never_leaves_and_remote_goes_to_every_other_gateway():
    hub, links, _ = make(others=["g1", "g2"])
    a = session(hub, "A")
    run(lambda: hub.roomcast(socket_room("A"), encode("dm", "x")))
    assert len(a.transport.writes) == 1 and links.gateway_ops == [] and links.shard_ops == []
    run(lambda: hub.roomcast(socket_room("elsewhere"), encode("dm", "x")))
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2"]


def test_broadcast_reaches_all_local_and_other_gateways_and_bridges():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    run(lambda: hub.broadcast(encode("all", "x")))
    assert len(a.transport.writes) == len(b.transport.writes) == 1
    assert [g for g, _ in links.gateway_ops] == ["g1"]
    assert links.bridge_ops[0].room is None


def test_casts_from_a_bridge_are_not_published_again():
    hub, links, _ = make()
    session(hub, "A")
    f = encode("x", "y")
    run(lambda: hub.receive([StartBroadcast(f, False), StartRoomcast("r", f, False)]))
    assert links.bridge_ops == []


def test_frames_for_one_socket_in_one_tick_are_written_in_one_call():
    hub, links, _ = make()
    a = session(hub, "A")

    def burst():
        for i in range(10):
            hub.emit(a, encode("n", i))

    run(burst)
    assert len(a.transport.writes) == 1
    assert a.transport.writes[0] == b"".join(ws_frame(encode("n", i).data, False) for i in range(10))


def test_received_ops_deliver_locally_only():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    hub.join(a, "r")
    confirm(hub, links)
    run(lambda: hub.receive([Deliver("r", b"W1"), DeliverAll(b"W2"), Deliver("nope", b"W3")]))
    assert a.transport.writes == [b"W1W2"]
    assert links.shard_ops == [] and links.gateway_ops == []


def test_a_join_new_to_the_gateway_holds_the_sockets_frames_until_the_shard_confirms():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(a, "r")
    run(lambda: hub.emit(a, encode("joined", "r")))
    run(lambda: hub.emit(b, encode("other", 1)))
    assert a.transport.writes == [], "held: the shard has not confirmed the join"
    assert len(b.transport.writes) == 1, "other sockets are not held"
    hub.join(b, "r")  # announced, not confirmed yet: b waits too
    run(lambda: hub.emit(b, encode("joined", "r")))
    assert len(b.transport.writes) == 1
    run(lambda: confirm(hub, links))
    assert a.transport.writes == [ws_frame(encode("joined", "r").data, False)]
    assert len(b.transport.writes) == 2
    assert a.held == b.held == 0


def test_a_join_to_a_confirmed_room_or_an_id_room_holds_nothing():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(a, "r")
    confirm(hub, links)
    hub.join(b, "r")
    hub.join(b, socket_room("A"))
    hub.join(a, "r")  # already a member
    run(lambda: hub.emit(b, encode("x", 1)))
    run(lambda: hub.emit(a, encode("x", 1)))
    assert len(b.transport.writes) == 1 and len(a.transport.writes) == 1
    assert links.shard_ops == []


def test_leaving_releases_a_held_socket_and_a_stale_confirmation_is_ignored():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    hub.join(a, "r")
    first = links.shard_ops[-1][1]
    hub.leave(a, "r")
    run(lambda: hub.emit(a, encode("x", 1)))
    assert len(a.transport.writes) == 1, "left the room: nothing to wait for"
    hub.join(a, "r")  # a new announcement
    hub.joins_confirmed([first])  # the old one's confirmation does not release it
    run(lambda: hub.emit(a, encode("x", 2)))
    assert len(a.transport.writes) == 1
    run(lambda: hub.joins_confirmed([links.shard_ops[-1][1]]))
    assert len(a.transport.writes) == 2


def test_unknown_op_is_counted_not_fatal():
    hub, _, _ = make()
    hub.receive([("bogus",)])  # a plain tuple is no op
    assert hub.stats["unknown_ops"] == 1


def test_slow_consumer_is_reported_and_others_still_written():
    hub, _, slow = make(limit=100, grace=0.0)
    fast = session(hub, "F")
    laggard = session(hub, "L", buffered=10_000)
    run(lambda: hub.broadcast(encode("x", "y")))
    assert slow == [laggard]
    assert len(fast.transport.writes) == 1
    assert hub.stats["slow_consumers_closed"] == 1


@pytest.mark.parametrize("grace", [60.0])
def test_slow_consumer_gets_grace_below_hard_cap(grace):
    hub, _, slow = make(limit=100, grace=grace)
    s = session(hub, "L", buffered=150)
    run(lambda: hub.emit(s, encode("x", "y")))
    assert slow == [] and s.over_since is not None
    s.transport.buffered = 10
    run(lambda: hub.emit(s, encode("x", "y")))
    assert s.over_since is None


def test_detach_leaves_rooms_and_forgets():
    hub, links, _ = make()
    a = session(hub, "A")
    hub.join(a, "r")
    hub.detach(a)
    assert "A" not in hub.sessions and "r" not in hub.rooms and a.rooms == set()
    assert links.shard_ops[-1][1] == Leave("r")


def test_rooms_for_shard_lists_only_that_shards_named_rooms():
    hub, _, _ = make()
    a = session(hub, "A")
    for r in ["a", "b", "c", "d"]:
        hub.join(a, r)
    got = hub.rooms_for_shard(0) + hub.rooms_for_shard(1)
    assert sorted(got) == ["a", "b", "c", "d"]
