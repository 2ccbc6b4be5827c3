#!/usr/bin/env python
"""The join race, counted, and what joins cost (a benchmark, not a test).

    python bench/join_race.py                   # 1,000 tries, 4 pairs at once, under load
    python bench/join_race.py --tries 200 --no-load

Two gateways on one port (local Ray). Each try: client A (one gateway) joins a fresh
room, client B (the other gateway) joins it, and the moment B's join reply arrives A
roomcasts to the room and then socketcasts B a marker (one publisher: ordered). A try
is lost when B gets the marker without the roomcast. Several pairs run at once, while
background publishers roomcast to a room of subscribers on both gateways (the load).

Reports lost tries and the latency of both joins (A's: a room new to the cluster;
B's: a room new to B's gateway that another gateway holds), as seen by the client
(join sent -> reply received). Prints a table and writes bench/results/join_race.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sacsock_actors import SocketServer  # noqa: E402

BOUND = 30.0  # seconds any one reply may take (a bound, not a measurement)


def build() -> SocketServer:
    server = SocketServer()

    @server.on("where")
    async def where(socket, data):
        socket.emit("where", str(os.getpid()))

    @server.on("join")
    async def join(socket, data):
        socket.join(data.decode())
        socket.emit("joined", data)

    @server.on("cast_mark")
    async def cast_mark(socket, data):
        room, i, to = data.decode().split("|")
        socket.roomcast(room, "rc", i)
        socket.socketcast(to, "mark", i)

    @server.on("pub")
    async def pub(socket, data):
        room, _, body = data.partition(b"|")
        socket.roomcast(room.decode(), "m", body)

    @server.on("id")
    async def ident(socket, data):
        socket.emit("id", socket.id)

    return server


class Client:
    """A minimal sac-sock client: ``call`` sends and waits for the reply event."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, event: str, data: str) -> None:
        await self.ws.send_str(f"{event}\x02{data}")

    async def recv(self) -> tuple[str, str]:
        msg = await asyncio.wait_for(self.ws.receive(), BOUND)
        if msg.type is aiohttp.WSMsgType.BINARY:
            text = msg.data.decode("utf-8", "replace")
        elif msg.type is aiohttp.WSMsgType.TEXT:
            text = msg.data
        else:
            raise ConnectionError(f"expected a message, got {msg.type.name}")
        event, _, rest = text.partition("\x01")
        return event, rest.partition("\x02")[2]

    async def call(self, event: str, data: str = "", reply: str | None = None) -> str:
        await self.send(event, data)
        while True:
            got, payload = await self.recv()
            if got == (reply or event):
                return payload


def free_port() -> int:
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


async def connect_split(http: aiohttp.ClientSession, url: str, per_gateway: int) -> list[list[Client]]:
    """Connect until ``per_gateway`` clients sit on each of the two gateways."""
    groups: dict[str, list[Client]] = {}
    for _ in range(50 * per_gateway + 50):
        ws = await http.ws_connect(url, protocols=("sac-sock",))
        c = Client(ws)
        pid = await c.call("where")
        group = groups.setdefault(pid, [])
        if len(group) < per_gateway:
            group.append(c)
        else:
            await ws.close()
        if len(groups) == 2 and all(len(g) >= per_gateway for g in groups.values()):
            return list(groups.values())
    raise RuntimeError("connections did not spread over two gateways")


async def pair_tries(a: Client, b: Client, tries: int, prefix: str) -> dict[str, Any]:
    b_id = await b.call("id")
    lost = 0
    join_a: list[float] = []
    join_b: list[float] = []
    for i in range(tries):
        room = f"{prefix}-{i}"
        t0 = time.perf_counter()
        await a.call("join", room, "joined")
        t1 = time.perf_counter()
        await b.call("join", room, "joined")
        t2 = time.perf_counter()
        await a.send("cast_mark", f"{room}|{i}|{b_id}")
        join_a.append(t1 - t0)
        join_b.append(t2 - t1)
        got = False
        while True:
            event, payload = await b.recv()
            if event == "rc" and payload == str(i):
                got = True
            elif event == "mark" and payload == str(i):
                break
        lost += not got
    return {"lost": lost, "join_a": join_a, "join_b": join_b}


async def load(pubs: list[Client], subs: list[Client], stop: asyncio.Event) -> int:
    """Publishers roomcast 64-byte messages to one room of subscribers on both gateways."""
    for s in subs:
        await s.call("join", "load-room", "joined")

    async def drain(c: Client) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(c.ws.receive(), 0.5)
            except asyncio.TimeoutError:
                continue

    async def publish(c: Client) -> int:
        sent = 0
        while not stop.is_set():
            for _ in range(20):
                await c.send("pub", "load-room|" + "x" * 64)
            sent += 20
            await asyncio.sleep(0.01)
        return sent

    drains = [asyncio.create_task(drain(s)) for s in subs]
    sent = await asyncio.gather(*(publish(p) for p in pubs))
    await asyncio.gather(*drains)
    return sum(sent)


def quantiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    return {
        "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
        "mean_ms": statistics.fmean(xs) * 1000,
    }


async def run(url: str, tries: int, pairs: int, with_load: bool) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        per = pairs + (12 if with_load else 0)
        g0, g1 = await connect_split(http, url, per)
        # half the pairs publish from gateway 0, half from gateway 1
        couples = [(g0[k], g1[k]) if k % 2 == 0 else (g1[k], g0[k]) for k in range(pairs)]
        stop = asyncio.Event()
        loader = None
        if with_load:
            pubs = [g0[pairs], g1[pairs]]
            subs = g0[pairs + 1 : pairs + 12] + g1[pairs + 1 : pairs + 12]
            loader = asyncio.create_task(load(pubs, subs, stop))
            await asyncio.sleep(0.5)  # let the load start (not a wait for a state)
        began = time.perf_counter()
        per_pair = [tries // pairs + (1 if k < tries % pairs else 0) for k in range(pairs)]
        jobs = zip(couples, per_pair, strict=True)
        results = await asyncio.gather(
            *(pair_tries(a, b, n, f"race-{k}") for k, ((a, b), n) in enumerate(jobs))
        )
        elapsed = time.perf_counter() - began
        stop.set()
        load_sent = await loader if loader is not None else 0
        for group in (g0, g1):
            for c in group:
                await c.ws.close()
    join_a = [x for r in results for x in r["join_a"]]
    join_b = [x for r in results for x in r["join_b"]]
    return {
        "tries": tries,
        "pairs": pairs,
        "load": with_load,
        "load_casts_sent": load_sent,
        "lost": sum(r["lost"] for r in results),
        "seconds": elapsed,
        "join_room_new_to_cluster": quantiles(join_a),
        "join_room_new_to_gateway": quantiles(join_b),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tries", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--no-load", action="store_true", help="no background publishers")
    ap.add_argument("--label", default="", help="a name for this run in the JSON (e.g. the commit)")
    ap.add_argument("--out", default=str(BENCH / "results" / "join_race.json"))
    args = ap.parse_args()
    server = build()
    port = free_port()
    server.start(port=port, gateways=2)
    try:
        result = asyncio.run(run(f"http://127.0.0.1:{port}/socket", args.tries, args.pairs, not args.no_load))
    finally:
        server.shutdown()
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result.update(label=args.label, machine=platform.node(), cpus=os.cpu_count(), when=when)
    print(f"join race: {result['lost']} of {result['tries']} casts lost ({result['pairs']} pairs at once, "
          f"load {'on' if result['load'] else 'off'}, {result['seconds']:.1f} s)")
    head = ("p50 ms", "p90 ms", "p99 ms", "mean ms")
    print(f"{'join latency (client round trip)':<40}" + "".join(f" {h:>8}" for h in head))
    for key in ("join_room_new_to_cluster", "join_room_new_to_gateway"):
        q = result[key]
        print(f"{key:<40} {q['p50_ms']:8.2f} {q['p90_ms']:8.2f} {q['p99_ms']:8.2f} {q['mean_ms']:8.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
