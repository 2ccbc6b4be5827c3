"""Socket, the handler's handle, over a hub and a fake loop (no server, no Ray)."""

import pytest
from test_hub import FakeLinks, FakeTransport

from sacsock_actors import InvalidEventName, InvalidRoomName
from sacsock_actors.gateways.hub import Hub
from sacsock_actors.gateways.session import Session
from sacsock_actors.gateways.socket import Socket
from sacsock_actors.protocol import socket_room


class FakeLoop:
    """Queues calls as the gateway's loop would from a handler thread; ``run`` drains."""

    def __init__(self):
        self.calls = []
        self.closed = []

    def call(self, fn, *args):
        self.calls.append((fn, args))

    def close_session(self, session, code):
        self.closed.append((session.id, code))

    def run(self):
        calls, self.calls = self.calls, []
        for fn, args in calls:
            fn(*args)


def make():
    hub = Hub(FakeLinks(others=["g1"]))
    session = Session("S", None, FakeTransport())
    hub.attach(session)
    loop = FakeLoop()
    return Socket(session, hub, loop), hub, session, loop


def test_join_and_leave_show_at_once_but_change_the_session_only_on_the_loop():
    sock, hub, session, loop = make()
    sock.join("r")
    assert sock.in_room("r") and sorted(sock.get_rooms()) == sorted(["r", socket_room("S")])
    assert "r" not in session.rooms, "the handler thread must not touch the session"
    loop.run()
    assert "r" in session.rooms and session in hub.members("r")
    sock.leave("r")
    sock.leave(socket_room("S"))  # the id room cannot be left
    assert not sock.in_room("r") and sock.in_room(socket_room("S"))
    loop.run()
    assert "r" not in hub.rooms


def test_casts_are_encoded_in_the_caller_and_routed_on_the_loop():
    sock, hub, session, loop = make()
    sock.emit("e", {"a": 1})
    sock.roomcast("r", "e", "x")
    sock.broadcast("e", b"x")
    sock.socketcast("other", "e", "x")
    assert hub.stats["roomcasts"] == 0
    loop.run()
    assert hub.stats["roomcasts"] == 2 and hub.stats["broadcasts"] == 1
    assert len(session.pending) == 2  # the emit and the broadcast


def test_misuse_raises_in_the_caller():
    sock, _, _, loop = make()
    with pytest.raises(InvalidEventName):
        sock.emit("bad\x01", "x")
    with pytest.raises(InvalidRoomName):
        sock.join("")
    with pytest.raises(InvalidRoomName):
        sock.roomcast(None, "e", "x")
    assert loop.calls == []


def test_close_goes_through_the_loop_and_a_closed_socket_joins_nothing():
    sock, hub, session, loop = make()
    sock.close()
    loop.run()
    assert loop.closed == [("S", 1000)]
    session.closed = True
    sock.join("late")
    assert not sock.in_room("late") and loop.calls == []


def test_an_idle_socket_keeps_no_room_set_and_a_closed_one_is_in_no_room():
    sock, _, _, _ = make()
    assert sock._rooms is None, "an idle socket pays for no second set"
    assert sock.in_room(socket_room("S")) and sock.get_rooms() == [socket_room("S")]
    sock._left_all()
    assert sock.get_rooms() == [] and not sock.in_room(socket_room("S"))


def test_emit_and_roomcast_on_the_loops_thread_go_straight_to_the_hub_else_through_call():
    import threading

    class OnThisThread(FakeLoop):
        loop_thread = threading.get_ident()

    hub = Hub(FakeLinks(others=["g1"]))
    session = Session("S", None, FakeTransport())
    hub.attach(session)
    loop = OnThisThread()
    sock = Socket(session, hub, loop)
    sock.emit("e", "x")
    sock.roomcast("r", "e", "y")
    assert loop.calls == [] and len(session.pending) == 1 and hub.stats["roomcasts"] == 1
    # from another thread (a pooled handler) both still go through call(), in order
    worker = threading.Thread(target=lambda: (sock.emit("e", "z"), sock.roomcast("r", "e", "w")))
    worker.start()
    worker.join()
    assert [fn.__name__ for fn, _ in loop.calls] == ["emit", "roomcast"]
    loop.run()
    assert len(session.pending) == 2 and hub.stats["roomcasts"] == 2


def test_a_loop_that_names_no_thread_gets_every_call():
    sock, hub, session, loop = make()  # FakeLoop has no loop_thread
    sock.emit("e", "x")
    assert len(loop.calls) == 1 and session.pending == []
