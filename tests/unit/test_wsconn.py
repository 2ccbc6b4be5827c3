"""WsConnection behind a real aiohttp server (one process, no Ray): the upgrade hand-over,
frames sent with the upgrade request, handler order across suspensions, backpressure,
the closing handshake, pings and the heartbeat."""

from __future__ import annotations

import asyncio
import contextvars
import struct
import threading

import aiohttp
import pytest
from aiohttp import web
from rawws import RawWS, frame, upgrade_request
from sacclient import free_port
from test_hub import FakeLinks

from sacsock_actors.app import AppSpec, Blocking
from sacsock_actors.gateways.dispatch import MAX_BACKLOG
from sacsock_actors.gateways.endpoint import Endpoint
from sacsock_actors.gateways.hub import Hub
from sacsock_actors.options import ServerOptions

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


class Gateway:
    """An Endpoint on a real aiohttp server, its hub on fake links."""

    def __init__(self, on_connect=None, **options) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.gate = threading.Event()
        self.disconnected: list[str] = []
        spec = AppSpec(options=ServerOptions(**options))
        spec.handlers = {"echo": self.echo, "plain": self.plain, "slow": self.slow,
                         "task": self.task, "block": Blocking(self.block), "ctx": self.ctx,
                         "ctxplain": self.ctx_plain}
        spec.on_connect = on_connect or (lambda socket: socket.emit("welcome", socket.id))
        spec.on_disconnect = lambda socket: self.disconnected.append(socket.id)
        self.hub = Hub(FakeLinks())
        self.endpoint = Endpoint(spec, self.hub, "/socket")
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def echo(self, socket, data: bytes) -> None:
        self.seen.append(("echo", data))
        socket.emit("echo", data)

    def plain(self, socket, data: bytes) -> None:
        self.seen.append(("plain", data))
        socket.emit("plain", data)

    async def slow(self, socket, data: bytes) -> None:
        self.seen.append(("slow-start", data))
        await asyncio.sleep(0.05)
        self.seen.append(("slow", data))
        socket.emit("slow", data)

    async def task(self, socket, data: bytes) -> None:
        # the running task is the connection's, before and after a suspension
        first = asyncio.current_task()
        async with asyncio.timeout(30):
            await asyncio.sleep(0)
        socket.emit("task", b"same" if first is not None and first is asyncio.current_task() else b"other")

    async def ctx(self, socket, data: bytes) -> None:
        # one context for the whole call: what on_connect set, before and after suspending;
        # a token made before the await resets after it (OpenTelemetry spans, structlog)
        before = VAR.get()
        token = VAR.set("mine")
        await asyncio.sleep(0)
        after = VAR.get()
        VAR.reset(token)
        socket.emit("ctx", f"{before},{after},{VAR.get()}")

    def ctx_plain(self, socket, data: bytes) -> None:
        socket.emit("ctx", VAR.get())

    def block(self, socket, data: bytes) -> None:
        self.gate.wait(30)
        self.seen.append(("block", data))

    async def start(self) -> None:
        self.runner = web.AppRunner(self.endpoint.make_app(), handle_signals=False, access_log=None)
        await self.runner.setup()
        self.endpoint.install(self.runner)
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.endpoint.close_all()
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/socket"


async def served(**options) -> Gateway:
    gw = Gateway(**options)
    await gw.start()
    return gw


async def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def raw(gw: Gateway) -> RawWS:
    ws = await RawWS.connect(gw.port)
    assert b"welcome" in (await ws.read_frame())[1]
    return ws


async def test_text_and_binary_echo_through_aiohttps_client():
    gw = await served()
    async with aiohttp.ClientSession() as http, http.ws_connect(gw.url, protocols=("sac-sock",)) as ws:
        assert ws.protocol == "sac-sock"
        assert (await ws.receive()).data.startswith("welcome\x01S\x02")
        await ws.send_str("echo\x02héllo")
        assert (await ws.receive()).data == "echo\x01B\x02héllo".encode()
        await ws.send_bytes(b"plain\x02\xff\x00")
        assert (await ws.receive()).data == b"plain\x01B\x02\xff\x00"
        await ws.close()
    await wait_for(lambda: len(gw.disconnected) == 1, "on_disconnect")
    assert gw.hub.stats["messages_in"] == 2
    await gw.stop()


async def test_each_sockets_messages_run_in_order_across_a_suspended_handler():
    gw = await served()
    ws = await raw(gw)
    await ws.send(b"".join([frame(0x2, b"plain\x021"), frame(0x2, b"slow\x022"), frame(0x2, b"echo\x023"),
                            frame(0x2, b"plain\x024")]))
    got = [(await ws.read_frame())[1] for _ in range(4)]
    assert got == [b"plain\x01B\x021", b"slow\x01B\x022", b"echo\x01B\x023", b"plain\x01B\x024"]
    assert gw.seen == [("plain", b"1"), ("slow-start", b"2"), ("slow", b"2"), ("echo", b"3"), ("plain", b"4")]
    ws.close()
    await gw.stop()


async def test_handlers_run_in_the_context_on_connect_set_before_and_after_suspending():
    def on_connect(socket) -> None:
        VAR.set(f"set by on_connect {socket.id}")
        socket.emit("welcome", socket.id)

    gw = Gateway(on_connect)
    await gw.start()
    ws = await raw(gw)
    await ws.send(frame(0x2, b"ctx\x02x") + frame(0x2, b"ctxplain\x02x"))
    mine = f"set by on_connect {next(iter(gw.hub.sessions))}"
    assert (await ws.read_frame())[1] == f"ctx\x01S\x02{mine},mine,{mine}".encode()
    assert (await ws.read_frame())[1] == f"ctx\x01S\x02{mine}".encode()
    assert gw.hub.stats["handler_errors"] == 0
    ws.close()
    await gw.stop()


async def test_a_slow_on_connect_does_not_count_as_the_clients_silence():
    async def on_connect(socket) -> None:
        await asyncio.sleep(1.5)  # five heartbeat periods: aiohttp holds what the client sends
        socket.emit("welcome", socket.id)

    gw = Gateway(on_connect, heartbeat=0.3)
    await gw.start()
    async with aiohttp.ClientSession() as http, http.ws_connect(gw.url, protocols=("sac-sock",)) as ws:
        assert (await ws.receive(timeout=20)).data.startswith("welcome")
        await ws.send_str("echo\x02ok")
        assert (await ws.receive(timeout=20)).data == b"echo\x01B\x02ok"
    assert gw.hub.stats["heartbeat_timeouts"] == 0
    await gw.stop()


async def test_an_async_handler_runs_as_the_connections_task_before_and_after_suspending():
    gw = await served()
    ws = await raw(gw)
    await ws.send(frame(0x2, b"task\x02x"))
    assert (await ws.read_frame())[1] == b"task\x01B\x02same"
    ws.close()
    await gw.stop()


@pytest.mark.parametrize(("second", "code", "counter"), [
    (frame(0x1, b"echo\x02x", mask=False), 1002, "unmasked_frames"),
    (frame(0x1, b"echo\x02\xff"), 1007, "invalid_utf8"),
    (frame(0x2, b"x" * 200), 1009, "read_errors"),
])
async def test_frames_in_the_upgrade_packet_are_checked_like_any(second, code, counter):
    gw = await served(max_message_size=100)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    # the upgrade request, a good frame and a bad one in one write (one TCP packet here)
    writer.write(upgrade_request(gw.port) + frame(0x2, b"echo\x02first") + second)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert b" 101 " in head.split(b"\r\n", 1)[0]
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    ws = RawWS(reader, writer)
    assert b"welcome" in (await ws.read_frame())[1]
    assert (await ws.read_frame())[1] == b"echo\x01B\x02first"
    assert await ws.close_code() == code
    assert await ws.ended()
    await wait_for(lambda: gw.hub.stats[counter] == 1, counter)
    await wait_for(lambda: not gw.hub.sessions, "the socket finished")
    ws.close()
    await gw.stop()


async def test_a_bad_handshake_gets_aiohttps_400():
    gw = await served()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(upgrade_request(gw.port).replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 99"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 20)
    assert b" 400 " in head
    writer.close()
    await gw.stop()


async def test_client_close_is_answered_and_the_socket_finished():
    gw = await served()
    ws = await raw(gw)
    await ws.send(frame(0x8, struct.pack("!H", 1001) + b"bye"))
    assert await ws.close_code() == 1000
    assert await ws.ended()
    await wait_for(lambda: len(gw.disconnected) == 1 and not gw.hub.sessions, "the socket finished")
    await gw.stop()


async def test_a_bad_close_frame_is_a_protocol_error():
    gw = await served()
    ws = await raw(gw)
    await ws.send(frame(0x8, b"\x03"))
    assert await ws.close_code() == 1002
    await wait_for(lambda: gw.hub.stats["read_errors"] == 1, "read_errors")
    ws.close()
    await gw.stop()


async def test_ping_is_answered_with_its_payload_and_fragments_are_joined():
    gw = await served()
    ws = await raw(gw)
    await ws.send(frame(0x1, b"echo\x02ab", fin=False) + frame(0x9, b"p1") + frame(0x0, b"cd"))
    assert await ws.read_frame() == (0xA, b"p1")
    assert await ws.read_frame() == (0x2, b"echo\x01B\x02abcd")
    ws.close()
    await gw.stop()


async def test_server_close_waits_for_the_clients_answer():
    gw = await served()
    ws = await raw(gw)
    [session] = gw.hub.sessions.values()
    closing = asyncio.ensure_future(gw.endpoint.close_all(1001))
    assert await ws.close_code() == 1001
    assert not closing.done()  # our close frame is sent; the client has not answered
    await ws.send(frame(0x8, struct.pack("!H", 1001)))
    assert await asyncio.wait_for(closing, 20) == 1
    assert await ws.ended()
    assert session.closed
    await gw.runner.cleanup()


async def test_a_full_backlog_pauses_reading_until_it_drains():
    gw = await served(max_messages_per_second=None)
    ws = await raw(gw)
    n = MAX_BACKLOG + 50
    await ws.send(b"".join(frame(0x2, b"block\x02%d" % i) for i in range(n)) + frame(0x2, b"echo\x02end"))
    [session] = gw.hub.sessions.values()
    conn = session.ws
    await wait_for(lambda: not conn.transport.is_reading(), "reading paused")
    gw.gate.set()
    assert await ws.read_frame() == (0x2, b"echo\x01B\x02end")
    assert gw.seen == [("block", b"%d" % i) for i in range(n)] + [("echo", b"end")]
    assert conn.transport.is_reading()
    ws.close()
    await gw.stop()


async def test_a_socket_that_never_answers_pings_is_dropped():
    gw = await served(heartbeat=0.5)
    quiet = await raw(gw)
    async with aiohttp.ClientSession() as http, http.ws_connect(gw.url, protocols=("sac-sock",)) as alive:
        got: asyncio.Queue = asyncio.Queue()

        async def read() -> None:  # aiohttp's client answers pings while it receives
            async for msg in alive:
                got.put_nowait(msg.data)

        reader = asyncio.ensure_future(read())
        assert (await asyncio.wait_for(got.get(), 20)).startswith("welcome")
        assert await quiet.read_frame() == (0x9, b"")  # pinged once silent for a heartbeat
        assert await quiet.ended()
        await wait_for(lambda: gw.hub.stats["heartbeat_timeouts"] == 1, "heartbeat_timeouts")
        await asyncio.sleep(1.5)  # the other socket lives through more heartbeats
        await alive.send_str("echo\x02still here")
        assert await asyncio.wait_for(got.get(), 20) == b"echo\x01B\x02still here"
        assert gw.hub.stats["heartbeat_timeouts"] == 1
        reader.cancel()
    quiet.close()
    await gw.stop()


def test_the_same_on_uvloop():
    """Ray runs actors on uvloop when it is installed: the hand-over, the tail, the task."""
    uvloop = pytest.importorskip("uvloop")

    async def go() -> None:
        gw = await served()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(upgrade_request(gw.port) + frame(0x2, b"task\x02x") + frame(0x2, b"slow\x02y")
                     + frame(0x2, b"echo\x02z"))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        ws = RawWS(reader, writer)
        got = [(await ws.read_frame())[1] for _ in range(4)]
        assert got[1:] == [b"task\x01B\x02same", b"slow\x01B\x02y", b"echo\x01B\x02z"]
        await ws.send(frame(0x2, b"echo\x02z", mask=False))
        assert await ws.close_code() == 1002
        await wait_for(lambda: gw.hub.stats["unmasked_frames"] == 1, "unmasked_frames")
        ws.close()
        await gw.stop()

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()


async def test_frames_without_an_event_name_or_handler_are_counted_and_the_socket_stays():
    gw = await served()
    async with aiohttp.ClientSession() as http, http.ws_connect(gw.url, protocols=("sac-sock",)) as ws:
        await ws.receive()  # welcome
        for bad in (b"no separator", b"\x02empty event", b"\xff\xfe\x02bad name", b"nosuch\x02x"):
            await ws.send_bytes(bad)
        await ws.send_bytes(b"echo\x02after\x02them")  # the payload is everything after the first 0x02
        assert (await ws.receive()).data == b"echo\x01B\x02after\x02them"
        stats = gw.hub.stats
        assert (stats["ignored_frames"], stats["unknown_events"], stats["messages_in"]) == (3, 1, 5)
        assert gw.seen == [("echo", b"after\x02them")]
    await gw.stop()


async def test_an_event_name_over_the_limit_closes_with_1008():
    gw = await served(max_event_name=4)
    async with aiohttp.ClientSession() as http, http.ws_connect(gw.url, protocols=("sac-sock",)) as ws:
        await ws.receive()  # welcome
        await ws.send_bytes(b"echo\x02fits")
        assert (await ws.receive()).data == b"echo\x01B\x02fits"
        await ws.send_bytes(b"plain\x02too long")
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008
    await wait_for(lambda: gw.hub.stats["event_name_too_long"] == 1, "the counter")
    assert ("plain", b"too long") not in gw.seen
    await gw.stop()
