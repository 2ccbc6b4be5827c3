#!/usr/bin/env python
"""In-process cost of the gateway's websocket read path, per message (no sockets, no Ray):

- ``unmask``: the pure-Python XOR (``wsparse.unmask_bytes``) against aiohttp's C helper,
  which ``wsconn`` uses when aiohttp has it, at several payload sizes;
- ``parse``: ``FrameParser.feed`` of one 64-byte client frame;
- ``echo``: one echo message end to end on the server side: ``WsConnection.data_received``
  -> parser -> async handler -> ``Socket.emit`` -> hub -> ``Endpoint.flush`` -> a
  transport that drops the bytes; the same with a plain ``def`` handler.
- ``aiohttp reader``: aiohttp's own ``WebSocketReader.feed_data`` of the same frame plus
  taking the message off its queue (what our parser replaces), for the ratio.

    python bench/echo_ws.py [--n 200000]

Prints a table and writes bench/results/echo_ws.json. Timings are per message, best of
5 rounds (a busy machine only makes rounds slower). The round trip over real sockets is
measured by ``bench/run.py --only echo``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sacsock_actors.app import AppSpec  # noqa: E402
from sacsock_actors.gateways.endpoint import Endpoint  # noqa: E402
from sacsock_actors.gateways.hub import Hub  # noqa: E402
from sacsock_actors.gateways.session import Session  # noqa: E402
from sacsock_actors.gateways.socket import Socket  # noqa: E402
from sacsock_actors.gateways.wsconn import UNMASK, WsConnection  # noqa: E402
from sacsock_actors.gateways.wsparse import FrameParser, unmask_bytes  # noqa: E402
from sacsock_actors.options import ServerOptions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def client_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    else:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def best(fn, n: int, rounds: int = 5) -> float:
    """Seconds per call of ``fn`` (called n times per round), best round."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(n)
        times.append((time.perf_counter() - t) / n)
    return min(times)


class NullTransport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += 1

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def is_reading(self) -> bool:
        return True

    def set_protocol(self, protocol: object) -> None:
        pass

    def abort(self) -> None:
        pass


class Links:
    gateway_id = "g0"
    shard_count = 1
    socket_tag = 0

    def gateway_for_tag(self, tag: int) -> str | None:
        return "g0"

    def to_shard(self, index: int, op: object) -> None: ...
    def to_gateway(self, gateway_id: str, op: object) -> None: ...
    def other_gateways(self) -> list[str]:
        return []
    def to_bridges(self, op: object) -> None: ...


async def echo_cost(n: int, plain: bool) -> float:
    async def echo(socket, data: bytes) -> None:
        socket.emit("echo", data)

    def echo_plain(socket, data: bytes) -> None:
        socket.emit("echo", data)

    spec = AppSpec(handlers={"echo": echo_plain if plain else echo},
                   options=ServerOptions(max_messages_per_second=None))
    hub = Hub(Links())
    endpoint = Endpoint(spec, hub, "/socket")
    endpoint.make_app()
    hub.wake = lambda: None  # flushed by hand: one flush per message, as in a round trip
    transport = NullTransport()
    session = Session(hub.new_socket_id(), None, transport)  # type: ignore[arg-type]
    conn = WsConnection(endpoint, session, transport, None)  # type: ignore[arg-type]
    session.ws = conn
    session.socket = Socket(session, hub, endpoint, spec.options)
    hub.attach(session)
    conn.take_over(b"")
    conn.host = None  # data_received is called from this task here, not from the loop
    data = client_frame(b"echo\x02" + b"x" * 59)

    def run(k: int) -> None:
        received, flush = conn.data_received, endpoint.flush
        for _ in range(k):
            received(data)
            flush()

    cost = best(run, n)
    assert transport.written >= n, transport.written
    return cost


def aiohttp_reader_cost(n: int) -> float | None:
    """aiohttp's reader (its C build when installed): feed one frame, read the message."""
    try:
        from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    except ImportError:
        return None

    class Proto:
        _reading_paused = False

        def pause_reading(self) -> None: ...
        def resume_reading(self) -> None: ...

    async def go() -> float:
        queue = WebSocketDataQueue(Proto(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
        reader = WebSocketReader(queue, 1 << 20, False, False)
        data = client_frame(b"echo\x02" + b"x" * 59)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                reader.feed_data(data)
                await queue.read()
            times.append((time.perf_counter() - t) / n)
        return min(times)

    return asyncio.run(go())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000, help="messages per round")
    args = p.parse_args()
    rows: dict[str, float | None] = {}
    for size in (64, 1024, 65536, 1 << 20):
        payload, mask = os.urandom(size), os.urandom(4)
        k = max(20, args.n // max(1, size // 64))
        for name, fn in (("pure", unmask_bytes), ("used", UNMASK)):
            rows[f"unmask {name} {size} B"] = best(
                lambda k, fn=fn, payload=payload, mask=mask: [fn(payload, mask) for _ in range(k)], k)
    parser = FrameParser(1 << 20)
    frame = client_frame(b"echo\x02" + b"x" * 59)
    rows["parse 64 B frame"] = best(lambda k: [parser.feed(frame) for _ in range(k)], args.n)
    rows["aiohttp reader 64 B frame"] = aiohttp_reader_cost(args.n)
    rows["echo async handler"] = asyncio.run(echo_cost(args.n, plain=False))
    rows["echo plain handler"] = asyncio.run(echo_cost(args.n, plain=True))
    print(f"{'what':32} {'us per message':>15}")
    for name, secs in rows.items():
        print(f"{name:32} {'n/a' if secs is None else f'{secs * 1e6:15.3f}'}")
    RESULTS.mkdir(exist_ok=True)
    doc = {"python": sys.version.split()[0], "n": args.n,
           "us_per_message": {k: None if v is None else round(v * 1e6, 4) for k, v in rows.items()}}
    (RESULTS / "echo_ws.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
