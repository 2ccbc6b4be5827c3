#!/usr/bin/env python
"""Throughput of the Redis bridge (a benchmark, not a test).

    python bench/redis_bridge.py                 # starts its own redis-server and local Ray
    python bench/redis_bridge.py --quick         # smaller runs
    python bench/redis_bridge.py --redis redis://127.0.0.1:6379/0

Two directions, each for a few payload sizes:

- ``out``: casts made in the cluster (a socket's handler roomcasts N times) -> BridgeActor
  -> pipelined PUBLISH -> a raw subscriber in this process, which counts what arrives.
- ``in``: a raw publisher in this process (pipelined PUBLISH of ssredis messages, as a Go
  instance sends them) -> BridgeActor -> gateway -> one websocket client in a room.

Rate = messages / (first send -> last arrival). The raw client reads and writes RESP on a
plain socket, so it is not what limits the numbers. Prints a table and writes
bench/results/redis_bridge.json. Only 127.0.0.1 is contacted; what is started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sacsock_actors import SocketServer  # noqa: E402
from sacsock_actors.bridges import Cast, RedisBridge  # noqa: E402
from sacsock_actors.bridges.redis_codec import channels, encode_cast  # noqa: E402

ROOM = "bench"
GROUP = "bench-group"
BOUND = 300.0  # seconds any one run may take


def build() -> SocketServer:
    server = SocketServer()

    @server.on("join")
    async def join(socket, data):
        socket.join(data.decode())
        socket.emit("joined", "")

    @server.on("burst")
    async def burst(socket, data):
        n, size = (int(x) for x in data.decode().split(","))
        payload = "x" * size
        for _ in range(n):
            socket.roomcast(ROOM, "b", payload)

    return server


# ---- a raw RESP client: enough to PUBLISH fast and to count messages --------------------------


def resp(*args: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def raw_connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)


async def count_messages(reader: asyncio.StreamReader, n: int, per_message: int) -> float:
    """Read until ``n`` messages of ``per_message`` RESP bytes each have arrived; returns when."""
    need = n * per_message
    got = 0
    while got < need:
        chunk = await asyncio.wait_for(reader.read(1 << 20), BOUND)
        if not chunk:
            raise ConnectionError("redis closed the subscriber")
        got += len(chunk)
    if got != need:
        raise AssertionError(f"read {got} bytes, expected {need}")
    return time.perf_counter()


def message_resp(channel: str, message: bytes) -> int:
    return len(resp("message", channel, message))


# ---- the two directions --------------------------------------------------------------------


async def bench_out(port: int, url: str, bridge_name: str, n: int, size: int) -> dict[str, Any]:
    chans = channels(GROUP)
    sample = encode_cast(Cast(ROOM, "b", "S", b"x" * size), bridge_name)
    reader, writer = await raw_connect(port)
    writer.write(resp("SUBSCRIBE", chans.roomcasts))
    await writer.drain()
    confirm = len(resp("subscribe", chans.roomcasts)) + len(":1\r\n")  # *3 subscribe <channel> :1
    await reader.readexactly(confirm)
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("sac-sock",)) as ws:
        began = time.perf_counter()
        await ws.send_str(f"burst\x02{n},{size}")
        ended = await count_messages(reader, n, message_resp(chans.roomcasts, sample))
    writer.close()
    return {"direction": "out", "messages": n, "payload_bytes": size, "seconds": ended - began}


async def bench_in(port: int, url: str, n: int, size: int) -> dict[str, Any]:
    chans = channels(GROUP)
    message = encode_cast(Cast(ROOM, "b", "S", b"x" * size), "foreign-go")
    command = resp("PUBLISH", chans.roomcasts, message)
    reader, writer = await raw_connect(port)
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=("sac-sock",)) as ws:
        await ws.send_str(f"join\x02{ROOM}")
        while (await ws.receive(timeout=BOUND)).data != "joined\x01S\x02":
            pass

        async def publish() -> None:
            batch = 1000
            for i in range(0, n, batch):
                writer.write(command * min(batch, n - i))
                await writer.drain()

        async def drain_replies() -> None:  # one ":1\r\n" per PUBLISH (one subscriber: us)
            left = n * len(":1\r\n")
            while left > 0:
                left -= len(await reader.read(min(left, 1 << 20)))

        began = time.perf_counter()
        replies = asyncio.create_task(drain_replies())
        await publish()
        got = 0
        while got < n:
            msg = await ws.receive(timeout=BOUND)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket: {msg.type.name}")
            got += 1
        ended = time.perf_counter()
        await replies
    writer.close()
    return {"direction": "in", "messages": n, "payload_bytes": size, "seconds": ended - began}


# ---- running it ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: str) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH; install it or pass --redis URL")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--client-output-buffer-limit", "pubsub 0 0 0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("redis-server did not start")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default=None, help="a Redis on 127.0.0.1 to use instead of starting one")
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--out", default=str(BENCH / "results" / "redis_bridge.json"))
    args = parser.parse_args()

    sizes = [(20_000, 16), (5_000, 1024)] if args.quick else [(100_000, 16), (20_000, 1024), (2_000, 16_384)]
    redis_proc = None
    tmp = tempfile.mkdtemp(prefix="sacsock-bench-redis-")
    if args.redis:
        url = args.redis
        port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    else:
        redis_proc, port = start_redis(tmp)
        url = f"redis://127.0.0.1:{port}/0"
    server = build()
    bridge = RedisBridge(url, server_group=GROUP, server_name="bench-cluster")
    server.set_multihome_backend(bridge)
    ws_port = free_port()
    rows: list[dict[str, Any]] = []
    try:
        server.start(port=ws_port)
        ws_url = f"http://127.0.0.1:{ws_port}/socket"
        for n, size in sizes:
            asyncio.run(bench_out(port, ws_url, bridge.server_name, min(n, 1000), size))  # warm up
            rows.append(asyncio.run(bench_out(port, ws_url, bridge.server_name, n, size)))
            rows.append(asyncio.run(bench_in(port, ws_url, n, size)))
        stats = server.stats()["bridge-0"]
    finally:
        server.shutdown()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)

    for r in rows:
        r["msgs_per_s"] = round(r["messages"] / r["seconds"])
        r["mib_per_s"] = round(r["messages"] * r["payload_bytes"] / r["seconds"] / 2**20, 2)
    print(f"{'direction':<44} {'payload':>8} {'messages':>9} {'seconds':>8} {'msgs/s':>9} {'MiB/s':>7}")
    names = {"out": "cluster -> Redis -> raw subscriber", "in": "raw publisher -> Redis -> cluster -> socket"}
    for r in rows:
        print(f"{names[r['direction']]:<44} {r['payload_bytes']:>8} {r['messages']:>9} "
              f"{r['seconds']:>8.2f} {r['msgs_per_s']:>9} {r['mib_per_s']:>7}")
    print("bridge counters:", {k: v for k, v in stats.items() if v})
    result = {
        "bench": "redis_bridge",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        "bridge_stats": stats,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
