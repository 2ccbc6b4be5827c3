#!/usr/bin/env python
"""The MongoDB bridge side by side with the Go ``ssmongo`` peer (a benchmark, not a test).

    python bench/mongo_bridge.py            # starts the MongoDB-wire test server, a local Ray, Go peers
    python bench/mongo_bridge.py --quick    # smaller runs

Everything runs against ONE MongoDB-wire server (tests/mongo_server, built by
scripts/setup.sh) and the same handlers on both sides (a client message ``roomcast``
``{"room", "data"}`` makes one string roomcast), so the only difference is the bridge:

- ``out``: a websocket client bursts N roomcasts at one server (ours or Go's); a raw
  pymongo reader counts the documents addressed to a sink server of the group.
  Rate = N / (first send -> N-th document stored).
- ``in``: a raw writer inserts N documents addressed to the server (unordered
  insert_many, as fast as the driver goes); a client in the room counts the frames.
  Rate = N / (first insert -> last frame).
- ``latency``: one client sends a roomcast every 15-45 ms (random, so sends fall at every
  phase of the receiver's poll) carrying its send time; a client of a SECOND server of the
  same kind (ours -> ours, Go -> Go) records arrival - send. p50/p99 per poll interval.

Goals (issue 9): p50 <= interval/2 + 10 ms, p99 <= interval + 20 ms, throughput >= Go's.
Prints a table and writes bench/results/mongo_bridge.json. Only 127.0.0.1 is contacted;
everything started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "interop"))

import mongo_wire  # noqa: E402
from harness import go_peer_binary  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from sacsock_actors import SocketServer  # noqa: E402
from sacsock_actors.bridges import MongoBridge  # noqa: E402

ROOM = "bench"
BOUND = 600.0  # seconds any one run may take
DB = "SSMultihome"


def build() -> SocketServer:
    """The Go peer's handlers that the bench uses (join, roomcast), same wire shape."""
    server = SocketServer()

    @server.on("join")
    async def join(socket, data):
        room = data.decode()
        socket.join(room)
        socket.emit("echo", f"joined room:{room}")

    @server.on("roomcast")
    async def roomcast(socket, data):
        msg = json.loads(data)
        socket.roomcast(msg["room"], "roomcast", str(msg["data"]))

    return server


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """Servers started for the bench: Python clusters (one local Ray) and Go peers."""

    def __init__(self, mongo_url: str, mongo_addr: str, workdir: str) -> None:
        self.mongo_url = mongo_url
        self.mongo_addr = mongo_addr
        self.workdir = workdir
        self.go_bin = str(go_peer_binary())
        self.servers: list[SocketServer] = []
        self.by_url: dict[str, SocketServer] = {}
        self.procs: list[subprocess.Popen] = []

    def python(self, group: str, name: str, poll: float) -> str:
        server = build()
        server.set_multihome_backend(MongoBridge(self.mongo_url, server_group=group, server_name=name,
                                                 poll_interval=poll))
        port = free_port()
        server.start(port=port)
        self.servers.append(server)
        self.by_url[f"http://127.0.0.1:{port}/socket"] = server
        return f"http://127.0.0.1:{port}/socket"

    def wait_peers(self, url: str, n: int) -> None:
        """Our bridges address the members their last poll saw: wait until it saw ``n``."""
        server = self.by_url.get(url)
        deadline = time.monotonic() + 120
        while server is not None and server.stats()["bridge-0"]["peers"] < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: the bridge does not see {n} peers")
            time.sleep(0.02)

    def go(self, group: str, name: str, poll: float) -> str:
        import socket

        port = free_port()
        log = open(f"{self.workdir}/go-{name}.log", "ab")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [self.go_bin, "-addr", f"127.0.0.1:{port}", "-backend", "mongo", "-mongo", self.mongo_addr,
             "-group", group, "-name", name, "-poll", f"{int(poll * 1000)}ms"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return f"http://127.0.0.1:{port}/socket"
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Go peer {name} did not start; see {self.workdir}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop every server started so far (each phase runs on a quiet machine)."""
        for server in self.servers:
            server.shutdown()
        for proc in self.procs:
            proc.terminate()
            proc.wait(20)
        self.servers, self.procs, self.by_url = [], [], {}


async def clean(db: Any, fleet: Fleet, group: str) -> None:
    await asyncio.to_thread(fleet.stop)
    for name in ("ss.activeServers", "ss.roomcasts", "ss.broadcasts"):
        await db[name].delete_many({"ServerGroup": group})


async def present(db: Any, group: str, names: set[str]) -> None:
    """Wait until every name has a presence document (and register a sink)."""
    await db["ss.activeServers"].update_one(
        {"ServerName": "sink", "ServerGroup": group},
        {"$set": {"ServerName": "sink", "ServerGroup": group,
                  "Expire": datetime.now(timezone.utc) + timedelta(minutes=5)}}, upsert=True)
    deadline = time.monotonic() + 120
    while {d["ServerName"] async for d in db["ss.activeServers"].find({"ServerGroup": group})} < names:
        if time.monotonic() > deadline:
            raise TimeoutError(f"presence of {names} in {group}")
        await asyncio.sleep(0.05)


async def ws(session: aiohttp.ClientSession, url: str, room: str | None = ROOM) -> Any:
    conn = await session.ws_connect(url, protocols=("sac-sock",), max_msg_size=0)
    if room:
        await conn.send_str(f"join\x02{room}")
        while True:
            msg = await conn.receive(timeout=BOUND)
            if msg.type is aiohttp.WSMsgType.TEXT and msg.data.startswith("echo\x01S\x02joined room:"):
                break
    return conn


def cast_message(data: str) -> str:
    return "roomcast\x02" + json.dumps({"room": ROOM, "data": data})


async def bench_out(db: Any, group: str, url: str, n: int, size: int) -> float:
    """Casts/s from a server into MongoDB (documents for the sink)."""
    await db["ss.roomcasts"].delete_many({"ServerGroup": group, "ServerName": "sink"})
    message = cast_message("x" * size)
    async with aiohttp.ClientSession() as session:
        conn = await ws(session, url, room=None)
        began = time.perf_counter()
        for i in range(0, n, 200):
            await asyncio.gather(*(conn.send_str(message) for _ in range(min(200, n - i))))
        deadline = time.monotonic() + BOUND
        while await db["ss.roomcasts"].count_documents({"ServerGroup": group, "ServerName": "sink"}) < n:
            if time.monotonic() > deadline:
                raise TimeoutError("out: documents missing")
            await asyncio.sleep(0.01)
        ended = time.perf_counter()
        await conn.close()
    return n / (ended - began)


async def bench_in(db: Any, group: str, name: str, url: str, n: int, size: int) -> float:
    """Casts/s from MongoDB (documents written by a raw client) to a server's socket."""
    payload = "x" * size
    async with aiohttp.ClientSession() as session:
        conn = await ws(session, url)
        expire = datetime.now(timezone.utc) + timedelta(minutes=5)
        docs = [{"ServerName": name, "ServerGroup": group, "Expire": expire, "RoomName": ROOM,
                 "EventName": "roomcast", "Data": payload, "JSON": False, "Read": False} for _ in range(n)]
        began = time.perf_counter()
        writer = asyncio.create_task(db["ss.roomcasts"].insert_many(docs, ordered=False))
        got = 0
        while got < n:
            msg = await conn.receive(timeout=BOUND)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket: {msg.type.name}")
            got += msg.data.startswith("roomcast\x01")
        ended = time.perf_counter()
        await writer
        await conn.close()
    return n / (ended - began)


async def bench_latency(src: str, dst: str, samples: int) -> list[float]:
    """arrival - send (ms) for roomcasts from a client of ``src`` to a client of ``dst``."""
    lat: list[float] = []
    async with aiohttp.ClientSession() as session:
        rx = await ws(session, dst)
        tx = await ws(session, src, room=None)

        async def receive() -> None:
            while len(lat) < samples:
                msg = await rx.receive(timeout=BOUND)
                if msg.type is aiohttp.WSMsgType.TEXT and msg.data.startswith("roomcast\x01S\x02"):
                    sent = float(msg.data.split("\x02", 1)[1].split("|", 1)[0])
                    lat.append((time.time() - sent) * 1000)

        reader = asyncio.create_task(receive())
        for _ in range(samples):
            await tx.send_str(cast_message(f"{time.time():.6f}|" + "x" * 40))
            await asyncio.sleep(random.uniform(0.015, 0.045))
        try:
            await asyncio.wait_for(reader, 30)
        except asyncio.TimeoutError:
            print(f"latency: {samples - len(lat)} of {samples} casts did not arrive", flush=True)
        await tx.close()
        await rx.close()
    return lat


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(fleet: Fleet, quick: bool, phase: str) -> dict[str, Any]:
    client = AsyncMongoClient(fleet.mongo_url, tz_aware=True)
    db = client[DB]
    rows: list[dict[str, Any]] = []
    sizes = [(1000, 64), (400, 4096)] if quick else [(5000, 64), (2000, 4096)]
    samples = 80 if quick else 250
    poll = 0.05
    for kind in ("python", "go") if phase in ("all", "throughput") else ():
        group = f"bench-tp-{kind}"
        start = fleet.python if kind == "python" else fleet.go
        url = await asyncio.to_thread(start, group, f"{kind}-tp", poll)
        await present(db, group, {f"{kind}-tp", "sink"})
        await asyncio.to_thread(fleet.wait_peers, url, 1)
        for n, size in sizes:
            await bench_out(db, group, url, min(n, 200), size)  # warm up
            rate = await bench_out(db, group, url, n, size)
            rows.append({"measure": "out", "side": kind, "payload_bytes": size, "casts": n,
                         "casts_per_s": round(rate), "poll_ms": poll * 1000})
            rate = await bench_in(db, group, f"{kind}-tp", url, n, size)
            rows.append({"measure": "in", "side": kind, "payload_bytes": size, "casts": n,
                         "casts_per_s": round(rate), "poll_ms": poll * 1000})
            print(rows[-2], rows[-1], flush=True)
        await clean(db, fleet, group)
    for poll in (0.05, 0.25) if phase in ("all", "latency") else ():
        for kind in ("python", "go"):
            group = f"bench-lat-{kind}-{int(poll * 1000)}"
            start = fleet.python if kind == "python" else fleet.go
            src = await asyncio.to_thread(start, group, f"{kind}-a", poll)
            dst = await asyncio.to_thread(start, group, f"{kind}-b", poll)
            await present(db, group, {f"{kind}-a", f"{kind}-b"})
            await db["ss.activeServers"].delete_many({"ServerGroup": group, "ServerName": "sink"})
            await asyncio.to_thread(fleet.wait_peers, src, 1)
            await asyncio.to_thread(fleet.wait_peers, dst, 1)
            await bench_latency(src, dst, 10)  # warm up
            lat = await bench_latency(src, dst, samples)
            rows.append({"measure": "latency", "side": kind, "poll_ms": poll * 1000, "samples": len(lat),
                         "p50_ms": round(pct(lat, 0.5), 1), "p99_ms": round(pct(lat, 0.99), 1),
                         "mean_ms": round(statistics.fmean(lat), 1),
                         "goal_p50_ms": poll * 500 + 10, "goal_p99_ms": poll * 1000 + 20})
            print(rows[-1], flush=True)
            await clean(db, fleet, group)
    await client.close()
    return {"rows": rows}


def table(rows: list[dict[str, Any]]) -> str:
    out = ["throughput (casts/s, poll 50 ms)",
           f"{'measure':<8} {'payload':>8} {'ours':>9} {'Go':>9} {'ours/Go':>8}"]
    for measure in ("out", "in"):
        for size in sorted({r["payload_bytes"] for r in rows if r["measure"] == measure}):
            if len({r["side"] for r in rows if r["measure"] == measure}) < 2:
                continue
            ours, go = (next(r for r in rows if r["measure"] == measure and r["side"] == side
                             and r["payload_bytes"] == size) for side in ("python", "go"))
            out.append(f"{measure:<8} {size:>8} {ours['casts_per_s']:>9} {go['casts_per_s']:>9} "
                       f"{ours['casts_per_s'] / go['casts_per_s']:>7.2f}x")
    out.append("publish -> deliver latency (ms), server to server of one kind")
    out.append(f"{'poll':>6} {'side':<7} {'p50':>7} {'p99':>7} {'goal p50':>9} {'goal p99':>9} {'met':>4}")
    for r in (r for r in rows if r["measure"] == "latency"):
        met = r["p50_ms"] <= r["goal_p50_ms"] and r["p99_ms"] <= r["goal_p99_ms"]
        out.append(f"{r['poll_ms']:>6.0f} {r['side']:<7} {r['p50_ms']:>7} {r['p99_ms']:>7} "
                   f"{r['goal_p50_ms']:>9.0f} {r['goal_p99_ms']:>9.0f} {'yes' if met else 'no':>4}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer casts and samples")
    parser.add_argument("--phase", choices=("all", "throughput", "latency"), default="all")
    parser.add_argument("--out", default=str(BENCH / "results" / "mongo_bridge.json"))
    args = parser.parse_args()

    import ray

    mongo_wire.ensure_built()
    tmp = tempfile.mkdtemp(prefix="sacsock-bench-mongo-")
    port = free_port()
    mongo = subprocess.Popen(mongo_wire.server_argv(port), stdout=open(f"{tmp}/mongo.log", "ab"),  # noqa: SIM115
                             stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not mongo_wire.ping(port):
        if mongo.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the MongoDB-wire server did not start; see {tmp}/mongo.log")
        time.sleep(0.05)
    ray.init(namespace="bench-mongo", include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    fleet = Fleet(f"mongodb://127.0.0.1:{port}/?directConnection=true", f"127.0.0.1:{port}", tmp)
    try:
        result = asyncio.run(run(fleet, args.quick, args.phase))
    finally:
        fleet.stop()
        ray.shutdown()
        mongo.terminate()
        mongo.wait(20)
    print(table(result["rows"]))
    result.update({
        "bench": "mongo_bridge",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 cores shared with other engineers' test runs: ratios matter, not absolutes"},
        "server": "tests/mongo_server (mongo-java-server 1.47.0, in memory)",
    })
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
