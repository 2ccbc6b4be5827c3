"""HandshakeGuard (gateways/guard.py) on a real aiohttp server on localhost. No Ray: the
app here is three plain routes behind the guard's middleware. (MaskGuard is exercised by
tests/integration/test_hostile.py against a real gateway.)"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest
from aiohttp import web

from sacsock_actors.gateways.guard import HandshakeGuard

WAIT = 30.0  # a generous bound, never a measurement
SHORT = 0.3  # the handshake timeout of tests that expect a cut
LONG = 60.0  # ... of tests that must see no cut
ANSWERED = web.AppKey("answered", asyncio.Event)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _missing(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="nope")


async def _after_the_client_left(request: web.Request) -> web.Response:
    deadline = asyncio.get_running_loop().time() + WAIT
    while request.transport is not None:  # bounded wait for the server to see the client go
        assert asyncio.get_running_loop().time() < deadline, "the client's close was never seen"
        await asyncio.sleep(0.01)
    request.app[ANSWERED].set()
    return web.Response(text="too late")


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


class Site:
    def __init__(self, guard: HandshakeGuard, runner: web.AppRunner, port: int, app: web.Application) -> None:
        self.guard, self.runner, self.port, self.app = guard, runner, port, app

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def site_factory():
    runners: list[web.AppRunner] = []

    async def make(timeout: float, max_pending: int = 50) -> Site:
        guard = HandshakeGuard(timeout, max_pending, Counter())
        app = web.Application(middlewares=[guard.middleware])
        app.router.add_get("/ok", _ok)
        app.router.add_get("/missing", _missing)
        app.router.add_get("/ws", _ws)
        app.router.add_get("/late", _after_the_client_left)
        app[ANSWERED] = asyncio.Event()
        runner = web.AppRunner(app)
        await runner.setup()
        guard.install(runner.server)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return Site(guard, runner, port, app)

    yield make
    for runner in runners:
        await runner.cleanup()


async def until(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def get(reader, writer, path: str = "/ok", extra: str = "") -> bytes:
    """One complete GET; returns the head. The body is read whole."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    await asyncio.wait_for(reader.readexactly(length), WAIT)
    return head


async def closed(reader) -> bool:
    try:
        while await asyncio.wait_for(reader.read(1024), WAIT):
            pass
    except ConnectionError:
        pass
    return True


async def test_a_half_sent_first_request_is_cut_and_counted(site_factory):
    site = await site_factory(SHORT)
    reader, writer = await site.open()
    writer.write(b"GET /ok HTTP/1.1\r\nHo")
    assert await closed(reader)
    await until(lambda: site.guard.stats["handshake_timeouts"] == 1, "handshake_timeouts")
    assert site.guard.pending == 0
    writer.close()


async def test_the_clock_restarts_after_each_keep_alive_response(site_factory):
    site = await site_factory(LONG)
    reader, writer = await site.open()
    for _ in range(3):
        head = await get(reader, writer)
        assert head.startswith(b"HTTP/1.1 200 ")
        await until(lambda: site.guard.pending == 1, "the next request's clock")
    writer.close()
    await until(lambda: site.guard.pending == 0, "the clock dropped with the connection")
    assert site.guard.stats["handshake_timeouts"] == 0


async def test_a_dribbled_second_request_is_cut_and_counted(site_factory):
    site = await site_factory(SHORT)
    reader, writer = await site.open()
    await get(reader, writer)

    async def dribble() -> None:  # the slow client under test
        try:
            for byte in b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass

    slow = asyncio.create_task(dribble())
    assert await closed(reader)
    assert not slow.done(), "the dribble ended before the cut"
    slow.cancel()
    await until(lambda: site.guard.stats["handshake_timeouts"] == 1, "handshake_timeouts")
    assert site.guard.pending == 0
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(site_factory):
    site = await site_factory(SHORT)
    reader, writer = await site.open()
    await get(reader, writer)
    assert await closed(reader)
    await until(lambda: site.guard.stats["handshake_timeouts"] == 1, "handshake_timeouts")
    writer.close()


async def test_an_error_response_restarts_the_clock_too(site_factory):
    site = await site_factory(LONG)
    reader, writer = await site.open()
    head = await get(reader, writer, "/missing")
    assert head.startswith(b"HTTP/1.1 404 ")
    await until(lambda: site.guard.pending == 1, "the next request's clock")
    assert (await get(reader, writer)).startswith(b"HTTP/1.1 200 ")  # still served
    writer.close()


async def test_connection_close_needs_no_clock(site_factory):
    site = await site_factory(LONG)
    reader, writer = await site.open()
    await get(reader, writer, extra="Connection: close\r\n")
    assert await closed(reader)
    await until(lambda: site.guard.pending == 0, "no clock for a closing connection")
    assert site.guard.stats["handshake_timeouts"] == 0
    writer.close()


async def test_idle_keep_alive_connections_count_towards_max_pending(site_factory):
    site = await site_factory(LONG, max_pending=2)
    conns = [await site.open() for _ in range(2)]
    for reader, writer in conns:
        await get(reader, writer)
    await until(lambda: site.guard.pending == 2, "two idle keep-alive connections")
    reader, writer = await site.open()
    assert await closed(reader)  # a third connection is refused at once
    assert site.guard.stats["handshakes_refused"] == 1
    for _, w in [*conns, (reader, writer)]:
        w.close()


async def test_an_upgrade_after_a_get_stops_the_clock(site_factory):
    site = await site_factory(LONG)
    reader, writer = await site.open()
    await get(reader, writer)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert site.guard.pending == 0  # and no clock while the websocket is open
    writer.write(bytes([0x81, 0x82, 0, 0, 0, 0]) + b"hi")  # masked text "hi" (zero key)
    assert await asyncio.wait_for(reader.readexactly(4), WAIT) == bytes([0x81, 2]) + b"hi"
    assert site.guard.stats["handshake_timeouts"] == 0
    writer.close()


async def test_a_client_gone_before_its_response_is_no_server_error(site_factory, caplog):
    site = await site_factory(LONG)
    reader, writer = await site.open()
    writer.write(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await until(lambda: site.guard.pending == 0, "the request reached the handler")
    writer.close()
    await asyncio.wait_for(site.app[ANSWERED].wait(), WAIT)
    await until(lambda: not site.runner.server.connections, "the connection dropped")  # type: ignore[union-attr]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]  # a client can make no log line this way
    assert site.guard.pending == 0 and site.guard.stats["handshake_timeouts"] == 0
