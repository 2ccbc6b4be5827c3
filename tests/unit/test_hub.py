"""The gateway hub's routing with fake links and transports: no Ray, no aiohttp, no event loop."""

import pytest

from sacsock_actors.gateways.hub import Hub
from sacsock_actors.gateways.session import Session
from sacsock_actors.gateways.wsframe import ws_frame
from sacsock_actors.ops import (
    Deliver,
    DeliverAll,
    HolderAdded,
    HolderRemoved,
    Holders,
    Join,
    Leave,
    Publish,
    StartBroadcast,
    StartRoomcast,
    Unwatch,
    Watch,
    Watched,
)
from sacsock_actors.protocol import encode, new_socket_id, socket_id_tag, socket_room
from sacsock_actors.rooms.table import shard_for


class FakeTransport:
    def __init__(self, buffered: int = 0):
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.aborted = False

    def write(self, data):
        self.writes.append(bytes(data))

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
        self.all = ["g0", *self._others]
        self.socket_tag = 0

    def gateway_for_tag(self, tag):
        return self.all[tag] if tag < len(self.all) else None

    def to_shard(self, index, op):
        self.shard_ops.append((index, op))

    def to_gateway(self, gid, op):
        self.gateway_ops.append((gid, op))

    def other_gateways(self):
        return self._others

    def to_bridges(self, op):
        self.bridge_ops.append(op)


def make(others=(), watch_limit=10_000):
    links = FakeLinks(others)
    wakes = []
    hub = Hub(links, wake=lambda: wakes.append(1), watch_limit=watch_limit)
    return hub, links, wakes


def session(hub, sid, buffered=0):
    s = Session(sid, None, FakeTransport(buffered))
    hub.attach(s)
    return s


def flush(hub):
    """What the endpoint does when woken: write each socket's ready bytes."""
    for s in hub.sessions_to_write():
        pending, s.pending = s.pending, []
        if not s.closed:
            s.transport.write(b"".join(pending))


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
    hub.roomcast("r", frame)
    flush(hub)
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
    hub.roomcast("r", encode("e", 1))
    flush(hub)
    assert links.gateway_ops == [], "nobody else holds r: the cast stays here"
    hub.receive([Holders("r", ("g0", "g2"))])
    hub.roomcast("r", encode("e", 2))
    flush(hub)
    assert [g for g, _ in links.gateway_ops] == ["g2"]


def test_holder_changes_apply_to_the_list_the_shard_sent_and_are_ignored_without_one():
    hub, links, _ = make(others=["g1", "g2", "g3"])
    a = session(hub, "A")
    hub.join(a, "r")
    hub.receive([HolderAdded("r", "g2")])  # no list yet (join not answered): ignored
    assert "r" not in hub.holders and hub.stats["holder_changes_ignored"] == 1
    hub.roomcast("r", encode("e", 1))
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2", "g3"], "no list: every gateway"
    hub.receive([Holders("r", ("g0", "g1"))])
    hub.receive([HolderAdded("r", "g3"), HolderRemoved("r", "g1"), HolderAdded("r", "g0")])
    assert hub.holders["r"] == {"g3"}, "changes on the list; this gateway never lists itself"
    links.gateway_ops.clear()
    hub.roomcast("r", encode("e", 2))
    assert [g for g, _ in links.gateway_ops] == ["g3"]


def test_holder_changes_to_a_watched_room_count_only_after_the_watch_was_answered():
    hub, links, _ = make(others=["g1", "g2"])
    hub.roomcast("far", encode("e", 1))  # Watch(far, 1)
    hub.receive([HolderAdded("far", "g1")])  # before the answer: ignored
    assert hub.watched["far"] == (1, None)
    hub.receive([Watched("far", ("g1",), 1), HolderAdded("far", "g2"), HolderRemoved("far", "g1")])
    assert hub.watched["far"] == (1, frozenset({"g2"}))
    hub.receive([HolderAdded("gone", "g1")])  # neither held nor watched: ignored
    assert "gone" not in hub.watched and "gone" not in hub.holders


def test_holders_forgotten_when_room_leaves_this_gateway():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    hub.join(a, "r")
    hub.receive([Holders("r", ("g0",))])
    hub.leave(a, "r")
    assert "r" not in hub.holders
    hub.join(a, "r")
    hub.roomcast("r", encode("e", 1))
    flush(hub)
    assert [g for g, _ in links.gateway_ops] == ["g1"]


def test_a_room_not_held_here_goes_to_every_other_gateway():
    hub, links, _ = make(others=["g1", "g2"])
    session(hub, "A")
    hub.roomcast("elsewhere", encode("e", 1))
    flush(hub)
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2"]


def test_a_lone_gateway_never_sends_casts_anywhere():
    hub, links, _ = make(others=[])
    a = session(hub, "A")
    hub.join(a, "r")
    confirm(hub, links)
    hub.roomcast("r", encode("e", 1))
    flush(hub)
    hub.roomcast("elsewhere", encode("e", 1))
    flush(hub)
    assert links.gateway_ops == [] and len(a.transport.writes) == 1


def test_peers_for_a_room_not_held_are_ignored():
    hub, links, _ = make(others=["g1"])
    hub.receive([Holders("r", ("g0",))])
    assert "r" not in hub.holders


def test_socketcast_local_never_leaves_and_a_foreign_id_goes_to_every_other_gateway():
    hub, links, _ = make(others=["g1", "g2"])
    a = session(hub, "A")
    hub.roomcast(socket_room("A"), encode("dm", "x"))
    flush(hub)
    assert len(a.transport.writes) == 1 and links.gateway_ops == [] and links.shard_ops == []
    hub.roomcast(socket_room("not-an-id-of-ours"), encode("dm", "x"))
    flush(hub)
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2"]
    assert links.shard_ops == [], "socket ids are never watched"


def test_socketcast_goes_only_to_the_gateway_whose_index_the_id_carries():
    hub, links, _ = make(others=["g1", "g2", "g3"])
    frame = encode("dm", "x")
    hub.roomcast(socket_room(new_socket_id(2)), frame)
    assert [g for g, _ in links.gateway_ops] == ["g2"]
    links.gateway_ops.clear()
    hub.roomcast(socket_room(new_socket_id(0)), frame)  # ours, and gone: nowhere
    hub.roomcast(socket_room(new_socket_id(9)), frame)  # no such gateway: every other one
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2", "g3"]
    assert hub.stats["casts_to_all"] == 1 and links.shard_ops == []


def test_new_sockets_carry_this_gateways_index_and_stay_random():
    hub, links, _ = make(others=["g1"])
    links.socket_tag = 1
    ids = {hub.new_socket_id() for _ in range(500)}
    assert len(ids) == 500 and {socket_id_tag(i) for i in ids} == {1}
    assert all(len(i) == 32 for i in ids)


def test_a_room_not_held_is_watched_and_then_cast_only_to_its_holders():
    hub, links, _ = make(others=["g1", "g2", "g3"])
    k = shard_for("far", 2)
    hub.roomcast("far", encode("e", 1))
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2", "g3"], "not answered yet: everyone"
    assert links.shard_ops == [(k, Watch("far", 1))]
    hub.roomcast("far", encode("e", 2))  # still unanswered: everyone again, no second Watch
    assert len(links.gateway_ops) == 6 and len(links.shard_ops) == 1
    links.gateway_ops.clear()
    hub.receive([Holders("far", ("g2",))])  # before the answer: ignored (maybe stale)
    hub.receive([Watched("far", ("g1",), 1)])
    hub.roomcast("far", encode("e", 3))
    assert [g for g, _ in links.gateway_ops] == ["g1"]
    hub.receive([Holders("far", ("g1", "g3"))])  # a change the shard tells its watchers
    links.gateway_ops.clear()
    hub.roomcast("far", encode("e", 4))
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g3"]
    hub.receive([Holders("far", ())])
    links.gateway_ops.clear()
    hub.roomcast("far", encode("e", 5))
    assert links.gateway_ops == [], "nobody holds it: the cast goes nowhere"
    assert hub.stats["casts_to_all"] == 2


def test_only_the_answer_to_the_latest_watch_counts():
    hub, links, _ = make(others=["g1", "g2"], watch_limit=1)
    hub.roomcast("a", encode("e", 1))  # Watch(a, 1)
    hub.roomcast("b", encode("e", 1))  # Watch(b, 2), evicts a: Unwatch(a)
    hub.roomcast("a", encode("e", 1))  # Watch(a, 3), evicts b
    ka, kb = shard_for("a", 2), shard_for("b", 2)
    assert links.shard_ops == [
        (ka, Watch("a", 1)), (kb, Watch("b", 2)), (ka, Unwatch("a")), (ka, Watch("a", 3)), (kb, Unwatch("b")),
    ]
    assert hub.stats["watches_evicted"] == 2
    hub.receive([Watched("a", ("g1",), 1), Watched("b", ("g1",), 2)])  # stale answers
    links.gateway_ops.clear()
    hub.roomcast("a", encode("e", 2))
    assert sorted(g for g, _ in links.gateway_ops) == ["g1", "g2"]
    hub.receive([Watched("a", ("g2",), 3)])
    links.gateway_ops.clear()
    hub.roomcast("a", encode("e", 3))
    assert [g for g, _ in links.gateway_ops] == ["g2"]


def test_joining_a_watched_room_unwatches_it_and_a_shard_restart_forgets_watches():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    k = shard_for("w", 2)
    hub.roomcast("w", encode("e", 1))
    hub.receive([Watched("w", (), 1)])
    hub.join(a, "w")
    assert links.shard_ops[-2:] == [(k, Unwatch("w")), (k, Join("w"))]
    assert "w" not in hub.watched
    hub.roomcast("v", encode("e", 1))
    hub.receive([Watched("v", (), 2)])
    hub.forget_watches(shard_for("v", 2))
    assert "v" not in hub.watched
    links.gateway_ops.clear()
    hub.roomcast("v", encode("e", 2))
    assert [g for g, _ in links.gateway_ops] == ["g1"]
    assert links.shard_ops[-1] == (shard_for("v", 2), Watch("v", 3))


def test_watch_limit_must_be_positive():
    with pytest.raises(ValueError, match="watch_limit"):
        Hub(FakeLinks(), watch_limit=0)


def test_broadcast_reaches_all_local_and_other_gateways_and_bridges():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    hub.broadcast(encode("all", "x"))
    flush(hub)
    assert len(a.transport.writes) == len(b.transport.writes) == 1
    assert [g for g, _ in links.gateway_ops] == ["g1"]
    assert links.bridge_ops[0].room is None


def test_casts_from_a_bridge_are_not_published_again():
    hub, links, _ = make()
    session(hub, "A")
    f = encode("x", "y")
    hub.receive([StartBroadcast(f, False), StartRoomcast("r", f, False)])
    flush(hub)
    assert links.bridge_ops == []


def test_frames_for_one_socket_in_one_tick_are_written_in_one_call():
    hub, links, _ = make()
    a = session(hub, "A")

    def burst():
        for i in range(10):
            hub.emit(a, encode("n", i))

    burst()
    flush(hub)
    assert len(a.transport.writes) == 1
    assert a.transport.writes[0] == b"".join(ws_frame(encode("n", i).data, False) for i in range(10))


def test_received_ops_deliver_locally_only():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    hub.join(a, "r")
    confirm(hub, links)
    hub.receive([Deliver("r", b"W1"), DeliverAll(b"W2"), Deliver("nope", b"W3")])
    flush(hub)
    assert a.transport.writes == [b"W1W2"]
    assert links.shard_ops == [] and links.gateway_ops == []


def test_a_join_new_to_the_gateway_holds_the_sockets_frames_until_the_shard_confirms():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(a, "r")
    hub.emit(a, encode("joined", "r"))
    flush(hub)
    hub.emit(b, encode("other", 1))
    flush(hub)
    assert a.transport.writes == [], "held: the shard has not confirmed the join"
    assert len(b.transport.writes) == 1, "other sockets are not held"
    hub.join(b, "r")  # announced, not confirmed yet: b waits too
    hub.emit(b, encode("joined", "r"))
    flush(hub)
    assert len(b.transport.writes) == 1
    confirm(hub, links)
    flush(hub)
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
    hub.emit(b, encode("x", 1))
    flush(hub)
    hub.emit(a, encode("x", 1))
    flush(hub)
    assert len(b.transport.writes) == 1 and len(a.transport.writes) == 1
    assert links.shard_ops == []


def test_leaving_releases_a_held_socket_and_a_stale_confirmation_is_ignored():
    hub, links, _ = make(others=["g1"])
    a = session(hub, "A")
    hub.join(a, "r")
    first = links.shard_ops[-1][1]
    hub.leave(a, "r")
    hub.emit(a, encode("x", 1))
    flush(hub)
    assert len(a.transport.writes) == 1, "left the room: nothing to wait for"
    hub.join(a, "r")  # a new announcement
    hub.joins_confirmed([first])  # the old one's confirmation does not release it
    hub.emit(a, encode("x", 2))
    flush(hub)
    assert len(a.transport.writes) == 1
    hub.joins_confirmed([links.shard_ops[-1][1]])
    flush(hub)
    assert len(a.transport.writes) == 2


def test_unknown_op_is_counted_not_fatal():
    hub, _, _ = make()
    hub.receive([("bogus",)])  # a plain tuple is no op
    assert hub.stats["unknown_ops"] == 1


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


def test_the_hub_wakes_its_driver_once_per_batch_of_output():
    hub, links, wakes = make()
    a = session(hub, "A")
    hub.emit(a, encode("x", 1))
    hub.emit(a, encode("x", 2))
    assert wakes == [1]
    one = len(ws_frame(encode("x", 1).data, False))
    assert [(s.id, sum(map(len, s.pending))) for s in hub.sessions_to_write()] == [("A", 2 * one)]
    hub.emit(a, encode("x", 3))
    assert wakes == [1, 1]


def test_a_held_socket_is_left_out_of_the_write_until_released():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(a, "r")
    hub.emit(a, encode("x", 1))
    hub.emit(b, encode("x", 1))
    assert list(hub.sessions_to_write()) == [b]
    confirm(hub, links)
    assert list(hub.sessions_to_write()) == [a]


def test_a_bridge_arrival_for_a_socket_goes_only_to_its_gateway_and_is_not_published():
    hub, links, _ = make(others=["g1", "g2"])
    hub.receive([StartRoomcast(socket_room(new_socket_id(1)), encode("dm", "x"), False)])
    assert [g for g, _ in links.gateway_ops] == ["g1"] and links.bridge_ops == []
    assert hub.stats["ops_in"] == 1


def test_a_roomcast_frames_every_payload_length_as_ws_frame_does():
    hub, links, _ = make()
    a = session(hub, "A")
    hub.join(a, "r")
    confirm(hub, links)
    for n in (0, 1, 60, 125, 126, 127, 300, 70_000):
        for binary in (False, True):
            frame = encode("e", (b"b" * n) if binary else ("t" * n))
            hub.roomcast("r", frame)
            flush(hub)
            assert a.transport.writes.pop() == ws_frame(frame.data, binary), (n, binary)


def test_counters_kept_as_ints_show_in_stats_when_read():
    hub, links, _ = make()
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(a, "r")
    hub.join(b, "r")
    confirm(hub, links)
    hub.roomcast("r", encode("e", "x"))
    hub.emit(a, encode("e", "y"))
    assert hub.stats["roomcasts"] == 1 and hub.stats["frames_out"] == 3
    hub.receive([Deliver("r", b"W")])
    assert hub.stats["frames_out"] == 5 and hub.stats["roomcasts"] == 1


def test_no_publish_op_is_built_while_the_links_have_no_bridges():
    hub, links, _ = make()
    links.publishing = False
    a = session(hub, "A")
    hub.roomcast(socket_room("A"), encode("e", "x"))
    hub.broadcast(encode("e", "y"))
    flush(hub)
    assert links.bridge_ops == [] and len(a.transport.writes) == 1
    links.publishing = True
    hub.roomcast("elsewhere", encode("e", "z"))
    assert [op.room for op in links.bridge_ops] == ["elsewhere"]


def test_a_roomcast_to_an_id_room_others_joined_reaches_the_owner_and_them():
    hub, links, _ = make(others=["g1"])
    a, b = session(hub, "A"), session(hub, "B")
    hub.join(b, socket_room("A"))  # rare: b joins a's id room
    hub.roomcast(socket_room("A"), encode("e", "x"))
    hub.receive([Deliver(socket_room("A"), b"W")])
    flush(hub)
    assert len(a.transport.writes) == 1 and len(b.transport.writes) == 1
    assert a.transport.writes[0].endswith(b"W") and b.transport.writes[0].endswith(b"W")
    assert links.gateway_ops == [], "a socket here: its id room never leaves"


def test_emit_frames_every_size_as_ws_frame_does_and_wakes_once_per_flush():
    from sacsock_actors.gateways.wsframe import ws_frame

    hub, _, wakes = make()
    a = session(hub, "A")
    for n in (0, 1, 110, 117, 118, 125, 126, 70_000):  # around the 125-byte short header
        for data in (b"x" * n, "y" * n):
            frame = encode("e", data)
            hub.emit(a, frame)
            hub.emit(a, frame)
            assert len(wakes) == 1
            flush(hub)
            wakes.clear()
            assert a.transport.writes.pop() == 2 * ws_frame(frame.data, frame.binary)
    a.closed = True
    hub.emit(a, encode("e", b"late"))
    assert not a.pending and not wakes
