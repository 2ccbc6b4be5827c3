#!/usr/bin/env python
"""Mixed-fleet federation over Redis, side by side: the cluster and the real Go server.

    python bench/federation_redis.py            # about 3 minutes; needs Go, redis-server, ../shared/peers
    python bench/federation_redis.py --quick

One redis-server; two upstream Go servers with ``ssredis`` (``go-1``, ``go-2``, built from
``../shared/peers`` by the interop harness) and ``sacsock serve --redis`` (1 gateway, the
interop tests' app, which has the Go server's handlers), all in one server group. Paths:

- ``cluster -> go``: a socket of the cluster roomcasts; one socket on go-1 is the room.
- ``go -> cluster``: a socket on go-1 roomcasts; one socket of the cluster is the room.
- ``go -> go``: a socket on go-1 roomcasts; one socket on go-2 is the room (the reference).

For each path and payload (64 B, 4 KiB of roomcast data): **flood**, N roomcast requests
written back to back by one sender socket, rate = N / (first send -> last arrival); and
**paced**, casts at a fixed rate, publish-to-deliver latency p50/p99 (send time is in the
payload; one clock: same machine). Every arrival is checked: missing, duplicates, out of
order. Three rounds taking turns across paths; a row is the median round by rate.

The client is a minimal websocket client on raw asyncio streams (pre-built frames out,
a byte-level frame splitter in) so it is not what limits the figures; its CPU time is
reported per phase. Prints a table, writes bench/results/federation_redis.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests" / "interop"))

from harness import PEER_APP, ProcessGroup, go_peer_binary  # noqa: E402

GROUP = "bench-federation"
BOUND = 120.0  # seconds a connection or a join may take
STALL = 15.0  # a phase ends when nothing arrived for this long (the rest is counted missing)


# ---- a minimal sac-sock websocket client ------------------------------------------------------------


class RawWS:
    """Client frames are masked with a zero key (valid, and the payload stays as written), so
    frames can be built with plain bytes formatting. Incoming frames are split by header
    only; ``on_frame(payload)`` gets each data frame's payload."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.on_frame: Any = None
        self._task: asyncio.Task | None = None

    @classmethod
    async def connect(cls, port: int, path: str = "/socket") -> RawWS:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: sac-sock\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"upgrade refused: {head[:200]!r}")
        ws = cls(reader, writer)
        ws._task = asyncio.get_running_loop().create_task(ws._read())
        return ws

    @staticmethod
    def frame(data: bytes, opcode: int = 1) -> bytes:
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        return head + b"\0\0\0\0" + data

    def send(self, event: str, data: str) -> None:
        self.writer.write(self.frame(f"{event}\x02{data}".encode()))

    async def _read(self) -> None:
        buf = b""
        reader = self.reader
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                return
            buf += chunk
            pos, end = 0, len(buf)
            while end - pos >= 2:
                b0, b1 = buf[pos], buf[pos + 1] & 0x7F
                head = 2
                if b1 == 126:
                    if end - pos < 4:
                        break
                    b1 = int.from_bytes(buf[pos + 2:pos + 4], "big")
                    head = 4
                elif b1 == 127:
                    if end - pos < 10:
                        break
                    b1 = int.from_bytes(buf[pos + 2:pos + 10], "big")
                    head = 10
                if end - pos < head + b1:
                    break
                payload = buf[pos + head:pos + head + b1]
                pos += head + b1
                op = b0 & 0x0F
                if op in (1, 2):
                    self.on_frame(payload)
                elif op == 9:  # ping: answer, so a heartbeat never closes us
                    self.writer.write(self.frame(payload, 10))
                elif op == 8:
                    return
            buf = buf[pos:]

    async def close(self) -> None:
        self.writer.write(self.frame(b"\x03\xe8", 8))
        self.writer.close()
        if self._task:
            self._task.cancel()


PREFIX = b"roomcast\x01S\x02"


class Receiver:
    """Counts ``roomcast`` arrivals of a phase: data = '<phase> <seq> <send ns> <pad>'."""

    def __init__(self) -> None:
        self.reset("")

    def reset(self, phase: str) -> None:
        self.phase = phase.encode()
        self.seen: set[int] = set()
        self.dups = self.out_of_order = 0
        self.last = -1
        self.lat_ns: list[int] = []
        self.last_at = 0.0
        self.event = asyncio.Event()
        self.want = 0

    def __call__(self, payload: bytes) -> None:
        if not payload.startswith(PREFIX):
            return
        now = time.time_ns()
        parts = payload[len(PREFIX):].split(b" ", 3)
        if parts[0] != self.phase:
            return
        seq = int(parts[1])
        if seq in self.seen:
            self.dups += 1
        self.seen.add(seq)
        if seq < self.last:
            self.out_of_order += 1
        self.last = max(self.last, seq)
        self.lat_ns.append(now - int(parts[2]))
        self.last_at = time.perf_counter()
        if len(self.seen) >= self.want:
            self.event.set()


def cast(room: str, phase: str, seq: int, size: int) -> str:
    head = f"{phase} {seq} {time.time_ns()} "
    return json.dumps({"room": room, "data": head + "x" * max(0, size - len(head))})


# ---- phases ---------------------------------------------------------------------------------------------


async def complete(recv: Receiver) -> None:
    """Wait until every cast arrived, or none arrived for ``STALL`` s (lost ones: missing)."""
    while not recv.event.is_set():
        before = len(recv.seen)
        try:
            await asyncio.wait_for(recv.event.wait(), STALL)
        except asyncio.TimeoutError:
            if len(recv.seen) == before:
                return


async def flood(sender: RawWS, recv: Receiver, room: str, phase: str, n: int, size: int) -> dict[str, Any]:
    recv.reset(phase)
    recv.want = n
    cpu0 = time.process_time()
    began = time.perf_counter()
    for seq in range(n):
        sender.send("roomcast", cast(room, phase, seq, size))
        if seq % 200 == 199:
            await sender.writer.drain()
    await sender.writer.drain()
    await complete(recv)
    await asyncio.sleep(0.2)  # late duplicates
    seconds = (recv.last_at or time.perf_counter()) - began
    return {"kind": "flood", "messages": n, "received": len(recv.seen), "missing": n - len(recv.seen),
            "duplicates": recv.dups, "out_of_order": recv.out_of_order, "seconds": round(seconds, 4),
            "casts_per_s": round(len(recv.seen) / seconds) if seconds > 0 else 0,
            "client_cpu_s": round(time.process_time() - cpu0, 3)}


async def paced(sender: RawWS, recv: Receiver, room: str, phase: str, rate: int, seconds: float,
                size: int) -> dict[str, Any]:
    recv.reset(phase)
    n = int(rate * seconds)
    recv.want = n
    loop = asyncio.get_running_loop()
    began = loop.time()
    for seq in range(n):
        due = began + seq / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sender.send("roomcast", cast(room, phase, seq, size))
    await sender.writer.drain()
    await complete(recv)
    await asyncio.sleep(0.2)
    lat = sorted(recv.lat_ns)
    pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6, 3)) if lat else (lambda q: None)
    return {"kind": "paced", "rate": rate, "messages": n, "received": len(recv.seen),
            "missing": n - len(recv.seen), "duplicates": recv.dups, "out_of_order": recv.out_of_order,
            "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


async def join(ws: RawWS, room: str) -> None:
    done = asyncio.Event()
    want = f"echo\x01S\x02joined room:{room}".encode()
    previous = ws.on_frame
    ws.on_frame = lambda p: done.set() if p == want else previous(p)
    ws.send("join", room)
    await asyncio.wait_for(done.wait(), BOUND)
    ws.on_frame = previous


async def settle(sender: RawWS, recv: Receiver, room: str) -> None:
    """Repeat a probe until one arrives: the far side's join is then visible."""
    for k in range(200):
        recv.reset(f"settle{k}")
        recv.want = 1
        sender.send("roomcast", cast(room, f"settle{k}", 0, 16))
        try:
            await asyncio.wait_for(recv.event.wait(), 0.5)
            return
        except asyncio.TimeoutError:
            continue
    raise TimeoutError(f"no probe reached room {room}")


async def run(ports: dict[str, int], sizes: list[int], flood_n: dict[int, int], rate: int, paced_s: float,
              rounds: int) -> list[dict[str, Any]]:
    paths = [("cluster -> go", "py", "go-1"), ("go -> cluster", "go-1", "py"), ("go -> go", "go-1", "go-2")]
    conns = {}
    sockets: list[RawWS] = []  # referenced here: a reader task alone would be garbage-collected
    for label, origin, far in paths:
        room = "bench-" + label.replace(" ", "").replace(">", "")
        sender, receiver_ws = await RawWS.connect(ports[origin]), await RawWS.connect(ports[far])
        recv = Receiver()
        receiver_ws.on_frame = recv
        sender.on_frame = lambda p: None
        await join(receiver_ws, room)
        await settle(sender, recv, room)
        conns[label] = (sender, recv, room)
        sockets += [sender, receiver_ws]
    rows = []
    for size in sizes:
        for r in range(rounds):
            for label, (sender, recv, room) in conns.items():
                phase = f"f{size}r{r}"
                row = await flood(sender, recv, room, phase, flood_n[size], size)
                rows.append({"path": label, "payload_bytes": size, "round": r, **row})
                print(f"  {label:<14} {size:>5} B round {r}: {row['casts_per_s']:>7} casts/s "
                      f"(missing {row['missing']}, dups {row['duplicates']}, "
                      f"out of order {row['out_of_order']}, client CPU {row['client_cpu_s']} s)", flush=True)
        for label, (sender, recv, room) in conns.items():
            row = await paced(sender, recv, room, f"p{size}", rate, paced_s, size)
            rows.append({"path": label, "payload_bytes": size, **row})
            print(f"  {label:<14} {size:>5} B paced {rate}/s: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms",
                  flush=True)
    for ws in sockets:
        await ws.close()
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["path"], r["payload_bytes"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for path, size in keys:
        mine = [r for r in rows if (r["path"], r["payload_bytes"]) == (path, size)]
        floods = sorted((r for r in mine if r["kind"] == "flood"), key=lambda r: r["casts_per_s"])
        med = floods[len(floods) // 2]
        pace = next(r for r in mine if r["kind"] == "paced")
        out.append({
            "path": path, "payload_bytes": size, "casts_per_s": med["casts_per_s"],
            "rounds_casts_per_s": [r["casts_per_s"] for r in floods],
            "missing": sum(r["missing"] for r in floods), "duplicates": sum(r["duplicates"] for r in floods),
            "out_of_order": sum(r["out_of_order"] for r in floods),
            "paced_rate": pace["rate"], "p50_ms": pace["p50_ms"], "p99_ms": pace["p99_ms"],
            "paced_missing": pace["missing"], "client_cpu_s": med["client_cpu_s"],
            "flood_seconds": med["seconds"],
        })
    for row in out:
        ref = next(r for r in out if r["path"] == "go -> go" and r["payload_bytes"] == row["payload_bytes"])
        row["vs_go_go"] = round(row["casts_per_s"] / ref["casts_per_s"], 2) if ref["casts_per_s"] else None
    return out


def table(summary: list[dict[str, Any]]) -> str:
    lines = ["| path | payload | casts/s (median of rounds) | vs Go-to-Go | out of order | missing / dups |"
             " p50 ms | p99 ms (paced) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary:
        size = f"{r['payload_bytes']} B" if r["payload_bytes"] < 1024 else f"{r['payload_bytes'] // 1024} KiB"
        lines.append(f"| {r['path']} | {size} | {r['casts_per_s']:,} | {r['vs_go_go']}x "
                     f"| {r['out_of_order']} | {r['missing']} / {r['duplicates']} | {r['p50_ms']} "
                     f"| {r['p99_ms']} @ {r['paced_rate']}/s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer casts, one round")
    parser.add_argument("--rate", type=int, default=500, help="casts/s of the paced (latency) phase")
    parser.add_argument("--out", default=str(BENCH / "results" / "federation_redis.json"))
    args = parser.parse_args()
    sizes = [64, 4096]
    flood_n = {64: 5_000, 4096: 2_000} if args.quick else {64: 30_000, 4096: 10_000}
    rounds, paced_s = (1, 1.0) if args.quick else (3, 3.0)

    log_dir = Path(tempfile.mkdtemp(prefix="sacsock-bench-federation-"))
    procs = ProcessGroup(log_dir, go_peer_bin=go_peer_binary)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # still stop the fleet
    try:
        redis = procs.redis("--client-output-buffer-limit", "pubsub 0 0 0")
        gos = [procs.go_peer(backend="redis", redis=redis, group=GROUP, server_name=f"go-{i}", name=f"go-{i}")
               for i in (1, 2)]
        py = procs.sacsock(PEER_APP, "--redis", redis.url, "--server-group", GROUP, "--server-name", "py",
                           name="py")
        redis.wait_subscribers(3, GROUP)
        ports = {"go-1": gos[0].port, "go-2": gos[1].port, "py": py.port}
        print(f"fleet up (logs in {procs.log_dir}); running", flush=True)
        rows = asyncio.run(run(ports, sizes, flood_n, args.rate, paced_s, rounds))
    finally:
        procs.stop_all()

    summary = summarize(rows)
    print()
    print(table(summary))
    result = {
        "bench": "federation_redis",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": os.getloadavg()},
        "settings": {"flood_casts": flood_n, "rounds": rounds, "paced_rate": args.rate,
                     "paced_seconds": paced_s},
        "summary": summary,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
