"""Live fuzz: malformed messages and frames against a running gateway.

The server stays up, a well-behaved socket on the same gateway sees no error, and every
bad input is counted in stats(). CI sends SACSOCK_FUZZ_MESSAGES (default 20,000) random
messages; `bash scripts/faults.sh` sends 100,000.
"""

from __future__ import annotations

import os
import random
import socket as stdsocket
import struct

import pytest
from chat_app import build
from rawws import RawWS, frame
from sacclient import SacClient
from waits import until

pytestmark = pytest.mark.integration

MESSAGES = int(os.environ.get("SACSOCK_FUZZ_MESSAGES", "20000"))
ZERO_KEY = b"\0\0\0\0"  # a valid mask that leaves the payload as it is: cheap to build


def fast_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    return head + ZERO_KEY + payload


@pytest.fixture(scope="module")
def fuzzed(ray_session):
    from conftest import Served
    from sacclient import free_port

    server = build(max_message_size=4096, max_messages_per_second=None)
    port = free_port()
    infos = server.start(port=port)
    yield Served(server, port, infos, "/socket")
    server.shutdown()


def gw(served) -> dict:
    return served.server.stats()["gw-0"]


async def echo_ok(c: SacClient, text: str) -> None:
    assert (await c.call("echo", text)).text == text


async def test_random_messages_are_counted_and_harm_no_one(fuzzed):
    rng = random.Random(12)
    bystander = await SacClient.connect(fuzzed.url)
    await bystander.recv_event("welcome")
    before = gw(fuzzed)
    conns = [await RawWS.connect(fuzzed.port) for _ in range(4)]
    kinds = [
        lambda: rng.randbytes(rng.randint(0, 200)),  # random bytes
        lambda: rng.randbytes(rng.randint(1, 20)).replace(b"\x02", b"") or b"x",  # no separator
        lambda: b"\xff\xfe" + rng.randbytes(5).replace(b"\x02", b"") + b"\x02data",  # non-UTF-8 event
        lambda: b"\x02" + rng.randbytes(rng.randint(0, 50)),  # empty event name
        lambda: b"nosuch\x02" + rng.randbytes(rng.randint(0, 100)),  # unknown event
    ]
    sent = echos = 0
    per_batch = 500
    while sent < MESSAGES:
        for ws in conns:
            batch = b"".join(fast_frame(0x2, rng.choice(kinds)()) for _ in range(per_batch))
            await ws.send(batch)
            sent += per_batch
        await echo_ok(bystander, f"between {sent}")  # the neighbour is served all along
        echos += 1
    total = sent + echos

    def read_all() -> bool:
        return gw(fuzzed).get("messages_in", 0) - before.get("messages_in", 0) >= total

    await until(read_all, what="every message read")
    after = gw(fuzzed)
    counted = sum(after.get(k, 0) - before.get(k, 0) for k in ("ignored_frames", "unknown_events"))
    assert after["messages_in"] - before.get("messages_in", 0) == total
    assert counted == sent  # each bad message counted once, as what it was
    assert after.get("handler_errors", 0) == before.get("handler_errors", 0)
    for ws in conns:  # none of the random messages breaks its own connection either
        await ws.send(frame(0x1, b"echo\x02still"))
        while True:
            op, payload = await ws.read_frame()
            if payload.startswith(b"echo\x01"):
                assert payload == b"echo\x01S\x02still"
                break
        ws.close()
    await echo_ok(bystander, "done")
    await bystander.close()


BAD_FRAMES = {
    "reserved opcode": frame(0x3, b"x"),
    "reserved control opcode": frame(0xB, b"x"),
    "rsv bits": frame(0x2, b"echo\x02x", rsv=0b100),
    "control frame too long": frame(0x9, b"p" * 126),
    "fragmented control frame": frame(0x9, b"p", fin=False),
    "continuation without a start": frame(0x0, b"echo\x02x"),
    "data frame inside a fragmented message": frame(0x1, b"ec", fin=False) + frame(0x1, b"ho\x02x"),
    "oversized message": frame(0x2, b"big\x02" + b"x" * 5000),
    "oversized fragmented message": b"".join(frame(0x2 if i == 0 else 0x0, b"x" * 1000, fin=i == 5)
                                               for i in range(6)),
    "unmasked": frame(0x2, b"echo\x02x", mask=False),
    "invalid UTF-8 text": frame(0x1, b"echo\x02\xc3\x28"),
    "close with a bad code": frame(0x8, struct.pack("!H", 999)),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
async def test_bad_frames_close_the_offender_only(fuzzed, name):
    bystander = await SacClient.connect(fuzzed.url)
    await bystander.recv_event("welcome")
    before = gw(fuzzed)
    ws = await RawWS.connect(fuzzed.port)
    await ws.read_frame()  # welcome
    await ws.send(BAD_FRAMES[name])
    assert await ws.ended(), "the server must close the offending connection"
    ws.close()
    await until(lambda: gw(fuzzed)["sockets"] <= before["sockets"], what="offender removed")
    after = gw(fuzzed)
    counted = sum(after.get(k, 0) - before.get(k, 0)
                  for k in ("read_errors", "unmasked_frames", "invalid_utf8"))
    assert counted == 1, f"{name}: counted {counted}"
    await echo_ok(bystander, name)
    await bystander.close()


async def test_interleaved_control_frames_inside_a_fragmented_message_are_fine(fuzzed):
    ws = await RawWS.connect(fuzzed.port)
    await ws.read_frame()  # welcome
    await ws.send(frame(0x1, b"ec", fin=False) + frame(0x9, b"ping!") + frame(0x0, b"ho\x02joined up"))
    seen = {}
    while len(seen) < 2:
        op, payload = await ws.read_frame()
        seen[op] = payload
    assert seen[0xA] == b"ping!"  # the pong, in the middle of the message
    assert seen[0x1] == b"echo\x01S\x02joined up"
    ws.close()


async def test_half_open_connections_are_cleaned_up(fuzzed):
    before = gw(fuzzed)["sockets"]
    for i in range(20):
        ws = await RawWS.connect(fuzzed.port)
        await ws.read_frame()
        await ws.send(frame(0x2, b"echo\x02" + b"x" * 100)[: 3 + i])  # a frame cut short
        sock = ws.writer.get_extra_info("socket")
        sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.writer.transport.abort()  # RST: gone without a close frame
    await until(lambda: gw(fuzzed)["sockets"] <= before, what="half-open sockets released")
