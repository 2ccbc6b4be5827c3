"""The endpoint's writing and slow-consumer policing, driven by hand (no server, no Ray)."""

import asyncio

from test_hub import FakeLinks, FakeTransport

from sacsock_actors.app import AppSpec
from sacsock_actors.gateways.endpoint import Endpoint
from sacsock_actors.gateways.hub import Hub
from sacsock_actors.gateways.session import Session
from sacsock_actors.gateways.wsframe import ws_frame
from sacsock_actors.options import ServerOptions
from sacsock_actors.protocol import encode


def make(limit=100, grace=0.0):
    hub = Hub(FakeLinks())
    spec = AppSpec(options=ServerOptions(max_outgoing_buffer=limit, slow_consumer_grace=grace))
    endpoint = Endpoint(spec, hub, "/socket")
    aborted = []
    endpoint.abort_session = aborted.append
    hub.wake = lambda: None  # flushed by hand below
    return hub, endpoint, aborted


def add(hub, sid, buffered=0):
    s = Session(sid, None, FakeTransport(buffered))
    hub.attach(s)
    return s


def test_a_slow_consumer_is_dropped_and_the_others_still_written():
    hub, endpoint, aborted = make(limit=100)
    fast, laggard = add(hub, "F"), add(hub, "L", buffered=10_000)
    hub.broadcast(encode("x", "y"))
    endpoint.flush()
    assert aborted == [laggard]
    assert len(fast.transport.writes) == 1
    assert hub.stats["slow_consumers_closed"] == 1


def test_a_consumer_slightly_over_gets_its_grace_and_recovers():
    hub, endpoint, aborted = make(limit=100, grace=60.0)
    s = add(hub, "L", buffered=150)
    hub.emit(s, encode("x", "y"))
    endpoint.flush()
    assert aborted == [] and s.over_since is not None
    s.transport.buffered = 10
    endpoint.sweep_slow()
    assert s.over_since is None


def test_call_runs_at_once_on_the_loop_and_in_order_from_a_thread():
    async def go():
        hub = Hub(FakeLinks())
        endpoint = Endpoint(AppSpec(options=ServerOptions()), hub, "/socket")
        endpoint.make_app()  # binds the endpoint to this loop
        seen = []
        endpoint.call(seen.append, "on loop")
        assert seen == ["on loop"]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: [endpoint.call(seen.append, i) for i in range(5)])
        await asyncio.sleep(0)
        return seen

    assert asyncio.run(go()) == ["on loop", 0, 1, 2, 3, 4]


def test_the_hub_wakes_one_flush_per_tick():
    async def go():
        hub = Hub(FakeLinks())
        endpoint = Endpoint(AppSpec(options=ServerOptions()), hub, "/socket")
        endpoint.make_app()
        s = add(hub, "A")
        for i in range(10):
            hub.emit(s, encode("n", i))
        assert s.transport.writes == []
        await asyncio.sleep(0)
        return s.transport.writes

    writes = asyncio.run(go())
    assert len(writes) == 1


def test_a_closing_sockets_frames_are_written_until_its_transport_closes():
    hub, endpoint, _ = make()
    s = add(hub, "A")
    hub.emit(s, encode("bye", 1))
    s.closed = True  # closing (Socket.close right after its emit), not yet detached
    endpoint.flush()
    bye = encode("bye", 1)
    assert s.transport.writes == [ws_frame(bye.data, bye.binary)] and s.pending == []
    s.transport.abort()
    hub.emit(s, encode("x", 2))
    endpoint.flush()
    assert len(s.transport.writes) == 1 and s.pending == []
