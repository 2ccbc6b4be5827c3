"""One member of a flooded room stops reading: it is closed within the grace period, and
the other members' latency stays where it was (issue 12).

    python bench/slow_reader.py [--members 100] [--rate 200] [--seconds 15] [--size 16384]

Runs side by side in one process and one Ray, alternated (``--repeats`` pairs after a
warm-up): the same room flood without and with a socket that joined and never reads.
Prints p50/p99 publish-to-deliver latency of the well-behaved members and when the slow
one was closed; writes bench/results/slow_reader.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket as stdsocket
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sacsock_actors import SocketServer  # noqa: E402

ROOM = "bench-slow"


def build(grace: float, buffer: int) -> SocketServer:
    server = SocketServer(slow_consumer_grace=grace, max_outgoing_buffer=buffer)

    @server.on("join")
    async def join(socket, data):
        socket.join(data.decode())
        socket.emit("joined", "")

    return server


async def member(url: str, lat: list[float], ready: asyncio.Event, count: list[int]) -> None:
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("sac-sock",)) as ws:
        await ws.send_str(f"join\x02{ROOM}")
        async for msg in ws:
            data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
            if data.startswith(b"joined"):
                count[0] += 1
                ready.set()
            elif data.startswith(b"t\x01"):
                sent = float(data[4:data.index(b" ", 4)])
                lat.append(time.time() - sent)
            elif data.startswith(b"stop"):
                return


def slow_socket(port: int) -> stdsocket.socket:
    """Upgrade, join ROOM, then never read again (tiny receive buffer)."""
    s = stdsocket.create_connection(("127.0.0.1", port))
    s.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    s.sendall(b"GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    payload = f"join\x02{ROOM}".encode()
    s.sendall(bytes([0x81, 0x80 | len(payload), 0, 0, 0, 0]) + payload)
    return s


async def run(server: SocketServer, port: int, args, with_slow: bool) -> dict:
    url = f"http://127.0.0.1:{port}/socket"
    lat: list[float] = []
    count = [0]
    ready = asyncio.Event()
    tasks = [asyncio.create_task(member(url, lat, ready, count)) for _ in range(args.members)]
    while count[0] < args.members:
        await asyncio.sleep(0.05)
    slow = slow_socket(port) if with_slow else None
    closed_before = server.stats()["gw-0"].get("slow_consumers_closed", 0)
    pad = "x" * args.size
    began = time.monotonic()
    closed_at = None
    n = 0
    while time.monotonic() - began < args.seconds:
        server.roomcast(ROOM, "t", f"{time.time():.6f} {pad}")
        n += 1
        if with_slow and closed_at is None and n % 20 == 0:
            if server.stats()["gw-0"].get("slow_consumers_closed", 0) > closed_before:
                closed_at = time.monotonic() - began
        await asyncio.sleep(1 / args.rate)
    await asyncio.sleep(1.0)
    server.roomcast(ROOM, "stop", "")
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    if slow is not None:
        slow.close()
    lat.sort()
    return {
        "slow_reader": with_slow, "casts": n, "deliveries": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 2),
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2),
        "slow_closed_after_s": None if closed_at is None else round(closed_at, 2),
    }


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--rate", type=float, default=200.0, help="casts per second")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--size", type=int, default=16384, help="payload bytes")
    p.add_argument("--grace", type=float, default=2.0)
    p.add_argument("--buffer", type=int, default=1 << 20)
    p.add_argument("--port", type=int, default=27311)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    server = build(args.grace, args.buffer)
    server.start(port=args.port)
    try:
        warm = argparse.Namespace(**{**vars(args), "seconds": 3.0})
        await run(server, args.port, warm, False)  # warm-up, not counted
        rows = []
        for _ in range(args.repeats):  # alternated: the machine's noise hits both alike
            rows += [await run(server, args.port, args, False), await run(server, args.port, args, True)]
    finally:
        server.shutdown()
    base = statistics.median(r["p99_ms"] for r in rows if not r["slow_reader"])
    slow = statistics.median(r["p99_ms"] for r in rows if r["slow_reader"])
    ratio = slow / base
    print(f"{'run':<12}{'casts':>7}{'deliveries':>12}{'p50 ms':>9}{'p99 ms':>9}{'slow closed s':>15}")
    for r in rows:
        print(f"{'slow reader' if r['slow_reader'] else 'baseline':<12}{r['casts']:>7}{r['deliveries']:>12}"
              f"{r['p50_ms']:>9}{r['p99_ms']:>9}{r['slow_closed_after_s']!s:>15}")
    print(f"median p99 with a slow reader / without: {slow:.2f} / {base:.2f} ms = {ratio:.2f}")
    out = Path(__file__).resolve().parent / "results" / "slow_reader.json"
    result = {"args": vars(args), "rows": rows, "p99_ratio": round(ratio, 3)}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
