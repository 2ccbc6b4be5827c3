"""Hostile clients against a real gateway: limits, RFC 6455 violations, slowloris, origins,
log amplification. Each defence closes or refuses the offender, counts it in stats(), and
leaves a well-behaved socket on the same gateway untouched."""

from __future__ import annotations

import asyncio
import glob
import os

import pytest
from chat_app import build
from rawws import RawWS, frame, upgrade_request
from sacclient import SacClient

pytestmark = pytest.mark.integration

LIMITS = dict(
    max_event_name=32,
    max_room_name=64,
    max_rooms_per_socket=5,
    max_messages_per_second=200,
    handshake_timeout=2.0,  # the 20 half-sent upgrades all wait at once, even on a busy machine
    max_pending_upgrades=20,
    error_log_burst=3,
)


@pytest.fixture(scope="module")
def hostile(ray_session):
    from conftest import Served
    from sacclient import free_port

    server = build(**LIMITS)
    port = free_port()
    infos = server.start(port=port)
    yield Served(server, port, infos, "/socket")
    server.shutdown()


@pytest.fixture
async def bystander(hostile):
    """A well-behaved socket on the same gateway: it must see no error meanwhile."""
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    yield c
    assert (await c.call("echo", "still fine")).text == "still fine"
    await c.close()


def gw(served) -> dict:
    return served.server.stats()["gw-0"]


async def wait_for(predicate, timeout: float = 30.0, what: str = "state") -> None:
    """Poll ``predicate`` (bounded); the bound is generous, not a measurement."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def raw(served) -> RawWS:
    ws = await RawWS.connect(served.port)
    op, payload = await ws.read_frame()  # welcome
    assert b"welcome" in payload
    return ws


# ---- log amplification ----------------------------------------------------------------------


def worker_log(pid: int) -> str:
    from ray._private import worker

    logs = worker.global_worker.node.get_logs_dir_path()
    found = glob.glob(os.path.join(logs, f"worker-*-{pid}.err"))
    assert found, f"no Ray worker log for gateway pid {pid} in {logs}"
    return found[0]


async def test_handler_errors_are_counted_but_logged_at_a_bounded_rate(hostile, bystander):
    path = worker_log(hostile.infos[0]["pid"])
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    before, size_before = gw(hostile), os.path.getsize(path)
    n = 150  # below the 200 messages/s burst
    for _ in range(n):
        await c.emit("fail", "x")
    assert (await c.call("echo", "after")).text == "after"  # handlers run in order
    after = gw(hostile)
    assert after["handler_errors"] - before.get("handler_errors", 0) == n
    suppressed = after["log_lines_suppressed"] - before.get("log_lines_suppressed", 0)
    assert suppressed >= n - LIMITS["error_log_burst"]
    grown = os.path.getsize(path) - size_before
    # unlimited, each failure logged a ~1.6 KB traceback (240 KB here)
    assert grown < 20_000, f"gateway log grew {grown} bytes for {n} handler errors"
    await c.close()


# ---- limits: a clear close code ---------------------------------------------------------------


async def test_long_event_name_closes_with_1008(hostile, bystander):
    before = gw(hostile).get("event_name_too_long", 0)
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    await c.emit("e" * 33, "x")
    assert await c.closed() == 1008
    assert gw(hostile)["event_name_too_long"] == before + 1
    await c.close()


async def test_event_name_at_the_limit_is_served(hostile, bystander):
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    await c.emit("e" * 32, "x")  # unknown event, ignored as before
    assert (await c.call("echo", "ok")).text == "ok"
    await c.close()


async def test_room_name_over_the_limit_closes_with_1008(hostile, bystander):
    before = gw(hostile).get("limits_exceeded", 0)
    rooms_before = gw(hostile)["rooms"]
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    assert (await c.call("join", "r" * 64)).json["in_room"]
    await c.emit("join", "r" * 65)
    assert await c.closed() == 1008
    await wait_for(lambda: gw(hostile)["limits_exceeded"] == before + 1, what="limits_exceeded")
    await wait_for(lambda: gw(hostile)["rooms"] <= rooms_before, what="rooms released")
    await c.close()


async def test_rooms_per_socket_limit_closes_with_1008(hostile, bystander):
    before = gw(hostile).get("limits_exceeded", 0)
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    for i in range(5):
        assert (await c.call("join", f"many-{i}")).json["in_room"]
    assert (await c.call("join", "many-0")).json["in_room"]  # rejoining is not a new room
    await c.emit("join", "many-5")
    assert await c.closed() == 1008
    await wait_for(lambda: gw(hostile)["limits_exceeded"] == before + 1, what="limits_exceeded")
    await c.close()


async def test_message_flood_closes_with_1008(hostile, bystander):
    before = gw(hostile).get("rate_limited", 0)
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    for _ in range(1000):  # 1000 at once: 5x the 200/s burst
        await c.emit("nosuchevent", "x")
    assert await c.closed() == 1008
    assert gw(hostile)["rate_limited"] == before + 1
    await c.close()


# ---- RFC 6455 ---------------------------------------------------------------------------------


async def test_invalid_utf8_text_frame_closes_with_1007(hostile, bystander):
    before = gw(hostile).get("invalid_utf8", 0)
    ws = await raw(hostile)
    await ws.send(frame(0x1, b"echo\x02\xff\xfe bad"))
    assert await ws.close_code() == 1007
    assert gw(hostile)["invalid_utf8"] == before + 1
    ws.close()


async def test_valid_non_ascii_text_and_binary_non_utf8_are_served(hostile, bystander):
    ws = await raw(hostile)
    await ws.send(frame(0x1, "echo\x02héllo ✓".encode()))
    op, payload = await ws.read_frame()
    assert (op, payload) == (0x1, "echo\x01S\x02héllo ✓".encode())
    await ws.send(frame(0x2, b"echobin\x02\xff\xfe"))
    op, payload = await ws.read_frame()
    assert (op, payload) == (0x2, b"echobin\x01B\x02\xff\xfe")
    ws.close()


async def test_unmasked_client_frame_closes_with_1002(hostile, bystander):
    before = gw(hostile).get("unmasked_frames", 0)
    ws = await raw(hostile)
    await ws.send(frame(0x1, b"echo\x02masked"))
    assert (await ws.read_frame())[1] == b"echo\x01S\x02masked"
    await ws.send(frame(0x1, b"echo\x02unmasked", mask=False))
    assert await ws.close_code() == 1002
    await wait_for(lambda: gw(hostile).get("unmasked_frames", 0) == before + 1, what="unmasked_frames")
    ws.close()


async def test_unmasked_frame_in_the_upgrade_packet_closes_with_1002(hostile, bystander):
    # the frame rides in the same segment as the upgrade request: aiohttp has read it
    # before the upgrade is answered, and it must be checked like any later frame
    before = gw(hostile).get("unmasked_frames", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", hostile.port)
    writer.write(upgrade_request(hostile.port) + frame(0x1, b"echo\x02unmasked", mask=False))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert b" 101 " in head.split(b"\r\n", 1)[0]
    ws = RawWS(reader, writer)
    frames = []
    while not frames or frames[-1][0] != 0x8:
        frames.append(await ws.read_frame())
    assert frames[0][1].startswith(b"welcome")
    assert not any(p.startswith(b"echo") for _, p in frames)  # the unmasked echo was not served
    assert frames[-1][1][:2] == b"\x03\xea"  # close 1002
    await wait_for(lambda: gw(hostile).get("unmasked_frames", 0) == before + 1, what="unmasked_frames")
    ws.close()


# ---- slowloris -----------------------------------------------------------------------------------


async def test_half_sent_upgrades_time_out_and_are_capped(hostile, bystander):
    before = gw(hostile)
    conns = []
    for _ in range(30):  # 20 may wait (max_pending_upgrades), the other 10 are refused at once
        reader, writer = await asyncio.open_connection("127.0.0.1", hostile.port)
        writer.write(upgrade_request(hostile.port)[:40])  # never finished
        conns.append((reader, writer))

    async def ended(reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(1024):
                pass
        except ConnectionError:
            pass

    await asyncio.wait_for(asyncio.gather(*(ended(r) for r, _ in conns)), 30)
    after = gw(hostile)
    refused = after.get("handshakes_refused", 0) - before.get("handshakes_refused", 0)
    timed_out = after.get("handshake_timeouts", 0) - before.get("handshake_timeouts", 0)
    assert refused + timed_out == 30
    assert refused >= 10 and timed_out >= 1
    for _, w in conns:
        w.close()
    # the gateway still upgrades a complete request
    c = await SacClient.connect(hostile.url)
    await c.recv_event("welcome")
    await c.close()


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Read until the server ends the connection (EOF or reset)."""
    try:
        while await reader.read(1024):
            pass
    except ConnectionError:
        pass


async def _keep_alive_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          port: int) -> None:
    """One complete GET /healthz on a keep-alive connection, its response read whole."""
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"connection: close" not in head.lower(), "the gateway must keep the connection alive"
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    assert await asyncio.wait_for(reader.readexactly(length), 20) == b"ok\n"


async def test_keep_alive_requests_after_the_first_are_bounded_too(hostile, bystander):
    """A quick GET with keep-alive, then an upgrade request dribbled a byte at a time: cut
    after handshake_timeout and counted like a first request that never completes."""
    before = gw(hostile).get("handshake_timeouts", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", hostile.port)
    await _keep_alive_get(reader, writer, hostile.port)

    async def dribble() -> None:  # the slow client under test: ~40 s to send it all, never ends
        try:
            for byte in upgrade_request(hostile.port)[:-2]:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.2)
        except ConnectionError:
            pass

    slow = asyncio.create_task(dribble())
    try:
        await asyncio.wait_for(_until_closed(reader), 30)  # the bound is generous, not a measurement
        assert not slow.done(), "the dribble ended before the gateway cut the connection"
    finally:
        slow.cancel()
        writer.close()
    await wait_for(lambda: gw(hostile).get("handshake_timeouts", 0) == before + 1, what="handshake_timeouts")


async def test_keep_alive_connection_may_still_upgrade(hostile, bystander):
    """A GET and then a complete upgrade on the same connection: the second request's bound
    ends with it; the socket is served long after handshake_timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hostile.port)
    await _keep_alive_get(reader, writer, hostile.port)
    writer.write(upgrade_request(hostile.port))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 101 "), head
    ws = RawWS(reader, writer)
    op, payload = await ws.read_frame()
    assert b"welcome" in payload
    await asyncio.sleep(LIMITS["handshake_timeout"] * 2)  # an absence window: no cut meanwhile
    await ws.send(frame(0x1, b"echo\x02kept"))
    op, payload = await ws.read_frame()
    assert payload.startswith(b"echo") and payload.endswith(b"kept")
    ws.close()


# ---- origins -----------------------------------------------------------------------------------


async def upgrade_status(served, extra: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(upgrade_request(served.port, extra=extra))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 20)
    writer.close()
    return int(head.split()[1])


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("", 101),  # no Origin: not a browser; allowed (upstream's rule)
        ("Origin: http://127.0.0.1:{port}\r\n", 101),
        ("Origin: https://127.0.0.1:{port}\r\n", 101),  # same host:port; scheme not compared
        ("Origin: http://evil.example\r\n", 403),
        ("Origin: \r\n", 403),  # empty: no host to compare
        ("Origin: null\r\n", 403),  # opaque origin (sandboxed iframe, file://)
        ("Origin: http://127.0.0.1:{port}\r\nOrigin: http://evil.example\r\n", 403),  # two
        ("Origin: http://evil.example\r\nOrigin: http://127.0.0.1:{port}\r\n", 403),
    ],
)
async def test_origin_rules(hostile, headers, status):
    assert await upgrade_status(hostile, headers.format(port=hostile.port)) == status
