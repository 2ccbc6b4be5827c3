#!/usr/bin/env python
"""The gRPC bridge against the real Go ``ssgrpc`` peer, side by side with Go-to-Go (a benchmark,
not a test).

    python bench/federation_grpc.py            # 64 B and 4 KiB, TLS + token, about 3 minutes
    python bench/federation_grpc.py --quick    # fewer casts

Three pairs of fleet members, every one in secure mode (TLS with a shared certificate made
here by ``openssl``, HS256 token on every RPC), each measured in the same run:

- ``go -> go``: two upstream Go servers (``../shared/peers``, built with its build.sh).
- ``cluster -> go``: this package on a local Ray (GrpcBridge in its BridgeActor) -> a Go server.
- ``go -> cluster``: the other way.

A websocket client on the sending member emits ``roomcast`` ``{"room","data"}`` (the Go peer's
handler; the cluster runs the same handler) N times as fast as it can; a client on the
receiving member, in the room, reads them. ``data`` holds a sequence number and the send
time (ns, same machine clock), padded to the payload size. Figures:

- ``casts/s``: casts received / (first send -> last arrival), for a blast of N casts;
- ``p50/p99 ms``: publish-to-deliver of the blast (queueing included) and of a paced run
  (``--rate`` casts/s, well under every pair's capacity: the unloaded latency);
- ``lost`` and ``out of order`` (a cast arriving after a later one from the same client).

Prints a table; writes bench/results/federation_grpc.json. Only 127.0.0.1 is contacted;
everything started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from procs import build_go_peer, free_ports  # noqa: E402

from sacsock_actors import SocketServer  # noqa: E402
from sacsock_actors.bridges import GrpcBridge  # noqa: E402

ROOM = "bench"
CN = "sacsock-peer"
KEY = "bench-shared-key-0123456789abcdef"
BOUND = 300.0  # seconds any one wait may take


def build() -> SocketServer:
    """The Go peer's join/roomcast handlers (gopeer/main.go), on this package."""
    server = SocketServer()

    @server.on("join")
    async def join(socket, data):
        socket.join(data.decode())
        socket.emit("echo", "joined room:" + data.decode())

    @server.on("roomcast")
    async def roomcast(socket, data):
        msg = json.loads(data)
        socket.roomcast(msg["room"], "roomcast", msg["data"])

    return server


def make_cert(directory: str) -> tuple[str, str]:
    cert, key = f"{directory}/peer.crt", f"{directory}/peer.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", f"/CN={CN}",
         "-addext", f"subjectAltName=DNS:{CN},IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


class GoPeer:
    def __init__(self, binary: Path, ws: int, grpc: int, peer: int, cert: str, key: str, log: str) -> None:
        self.url = f"http://127.0.0.1:{ws}/socket"
        self.log = open(log, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [str(binary), "-addr", f"127.0.0.1:{ws}", "-backend", "grpc", "-grpc", f"127.0.0.1:{grpc}",
             "-peers", f"{CN}@127.0.0.1:{peer}", "-cert", cert, "-key", key, "-sharedkey", KEY],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


async def connect(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    deadline = time.monotonic() + BOUND
    while True:
        try:
            return await session.ws_connect(url, protocols=("sac-sock",), max_msg_size=0)
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def payload(seq: int, size: int) -> str:
    head = f"{seq:09d}|{time.time_ns()}|"
    return head + "x" * max(0, size - len(head))


def cast_frame(seq: int, size: int) -> str:
    return "roomcast\x02" + json.dumps({"room": ROOM, "data": payload(seq, size)})


async def recv_data(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> tuple[str, int] | None:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    if msg.type is not aiohttp.WSMsgType.TEXT:
        raise ConnectionError(f"receiver got {msg.type.name}")
    event, _, rest = msg.data.partition("\x01")
    if event != "roomcast":
        return None
    return rest.partition("\x02")[2], time.time_ns()


async def link(tx: aiohttp.ClientWebSocketResponse, rx: aiohttp.ClientWebSocketResponse) -> None:
    """Probe until a cast crosses (both members dialled each other), then drain."""
    deadline = time.monotonic() + BOUND
    while True:
        await tx.send_str(cast_frame(0, 16))
        try:
            got = await recv_data(rx, 0.5)
            if got is not None:
                break
        except asyncio.TimeoutError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the two members never linked")
    while True:  # drain the probes still in flight
        try:
            await recv_data(rx, 2.0)
        except asyncio.TimeoutError:
            return


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(tx: aiohttp.ClientWebSocketResponse, rx: aiohttp.ClientWebSocketResponse, n: int, size: int,
              rate: float | None) -> dict[str, Any]:
    lat: list[float] = []
    seqs: list[int] = []
    first = time.time_ns()
    last = first

    async def send() -> None:
        began = time.monotonic()
        for seq in range(1, n + 1):
            await tx.send_str(cast_frame(seq, size))
            if rate:
                ahead = began + seq / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)

    sender = asyncio.create_task(send())
    quiet = 10.0  # nothing for this long after the sender finished: the rest is lost
    while len(seqs) < n:
        try:
            got = await recv_data(rx, quiet if sender.done() else BOUND)
        except asyncio.TimeoutError:
            break
        if got is None:
            continue
        data, now = got
        seq, sent, _ = data.split("|", 2)
        seqs.append(int(seq))
        lat.append((now - int(sent)) / 1e6)
        last = now
    await sender
    out_of_order = sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b < a)
    seconds = (last - first) / 1e9
    return {
        "casts": n, "payload_bytes": size, "received": len(seqs), "lost": n - len(set(seqs)),
        "out_of_order": out_of_order, "seconds": round(seconds, 3),
        "casts_per_s": round(len(seqs) / seconds) if seconds > 0 else 0,
        "p50_ms": round(percentile(lat, 0.50), 2), "p99_ms": round(percentile(lat, 0.99), 2),
    }


async def measure(pair: str, tx_url: str, rx_url: str, sizes: list[tuple[int, int]], rate: float,
                  paced_n: int) -> list[dict[str, Any]]:
    rows = []
    async with aiohttp.ClientSession() as session:
        rx = await connect(session, rx_url)
        tx = await connect(session, tx_url)
        await rx.send_str(f"join\x02{ROOM}")
        while (await rx.receive()).data != "echo\x01S\x02joined room:" + ROOM:
            pass
        await link(tx, rx)
        for n, size in sizes:
            blast = await run(tx, rx, n, size, None)
            paced = await run(tx, rx, paced_n, size, rate)
            rows.append({"pair": pair, **blast, "paced_rate": rate, "paced_p50_ms": paced["p50_ms"],
                         "paced_p99_ms": paced["p99_ms"], "paced_lost": paced["lost"],
                         "paced_out_of_order": paced["out_of_order"]})
            print(f"  {pair} {size} B: {blast['casts_per_s']} casts/s", flush=True)
        await tx.close()
        await rx.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer casts")
    parser.add_argument("--rate", type=float, default=200.0, help="casts/s of the paced latency run")
    parser.add_argument("--out", default=str(BENCH / "results" / "federation_grpc.json"))
    args = parser.parse_args()
    sizes = [(2_000, 64), (1_000, 4096)] if args.quick else [(10_000, 64), (5_000, 4096)]
    paced_n = 400 if args.quick else 1_000
    binary = build_go_peer()
    if binary is None:
        print("federation_grpc: needs Go and ../shared/peers (or SACSOCK_GO_PEER)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="sacsock-bench-grpc-")
    cert, key = make_cert(tmp)
    ws_a, ws_b, ws_c, g_a, g_b, g_c, g_ours, ws_ours = range(free_ports(8), 10**6)[:8]
    gos: list[GoPeer] = []
    server = build()
    server.set_multihome_backend(GrpcBridge(f"127.0.0.1:{g_ours}", [f"{CN}@127.0.0.1:{g_c}"],
                                            cert_file=cert, key_file=key, shared_key=KEY))
    rows: list[dict[str, Any]] = []
    try:
        gos.append(GoPeer(binary, ws_a, g_a, g_b, cert, key, f"{tmp}/go-a.log"))
        gos.append(GoPeer(binary, ws_b, g_b, g_a, cert, key, f"{tmp}/go-b.log"))
        server.start(port=ws_ours)
        gos.append(GoPeer(binary, ws_c, g_c, g_ours, cert, key, f"{tmp}/go-c.log"))
        ours = f"http://127.0.0.1:{ws_ours}/socket"
        for pair, tx, rx in (("go -> go", gos[0].url, gos[1].url), ("cluster -> go", ours, gos[2].url),
                             ("go -> cluster", gos[2].url, ours)):
            rows += asyncio.run(measure(pair, tx, rx, sizes, args.rate, paced_n))
        stats = server.stats()["bridge-0"]
    finally:
        server.shutdown()
        for g in gos:
            g.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    head = (f"{'pair':<14} {'payload':>7} {'casts':>6} {'casts/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'lost':>5} {'disorder':>8} | {'paced p50':>9} {'p99':>6}")
    print(head)
    for r in rows:
        print(f"{r['pair']:<14} {r['payload_bytes']:>7} {r['casts']:>6} {r['casts_per_s']:>8} "
              f"{r['p50_ms']:>7} {r['p99_ms']:>7} {r['lost']:>5} {r['out_of_order']:>8} | "
              f"{r['paced_p50_ms']:>9} {r['paced_p99_ms']:>6}")
    ratios = {}
    for size in {r["payload_bytes"] for r in rows}:
        by = {r["pair"]: r for r in rows if r["payload_bytes"] == size}
        base = by["go -> go"]["casts_per_s"] or 1
        ratios[str(size)] = {p: round(by[p]["casts_per_s"] / base, 2)
                             for p in ("cluster -> go", "go -> cluster")}
    print("throughput vs go -> go:", ratios)
    result = {
        "bench": "federation_grpc",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mode": "TLS + HS256 token",
        "rows": rows,
        "ratios_vs_go_go": ratios,
        "bridge_stats": stats,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
