#!/usr/bin/env python
"""What one gateway-to-gateway Ray call costs in CPU, on both sides (a benchmark, not a test).

    python bench/ray_call_cost.py            # prints a table, writes bench/results/ray_call_cost.json

Two async actors shaped like gateways (``num_cpus=0``, ``max_concurrency=10_000``) on a
fresh local Ray, every process pinned to the server CPUs as ``bench/run.py`` pins its
servers. The sender keeps one call in flight, as a ``batching.Outbox`` does, and calls
``receive(batch)`` ``CALLS`` times; the batch is either ``Deliver`` ops (what a gateway
sends today) or one ``bytes`` of the same size (a compact payload); the last rows
alternate the receiver as ``async def`` and as a plain ``def``. CPU seconds come from
``/proc/<pid>/stat`` of the two actor processes (all their threads: Ray's C++ ones too).

What it tells: the fixed cost per call (thread hand-offs, gRPC, Ray's task machinery)
against what the payload adds. At saturation the cross-gateway fan-out sends about one
call per 10 casts (``ray_calls_out`` / ``ray_ops_out`` in ``server.stats()``), so the
per-call cost over the deliveries per call is what two gateways pay beyond one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

CALLS = 1000
SIZES = (1, 10, 100)
WIRE = b"\x82\x40" + b"x" * 64  # a 64-byte cast as a websocket frame


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Receiver:
    def __init__(self) -> None:
        self.items = 0

    def pid(self) -> int:
        return os.getpid()

    async def receive(self, batch: object) -> None:
        self.items += 1

    def receive_sync(self, batch: object) -> None:  # a plain method: Ray runs it on the loop too
        self.items += 1


class Sender:
    def __init__(self, peer: object) -> None:
        self.peer = peer

    def pid(self) -> int:
        return os.getpid()

    async def run(self, calls: int, size: int, compact: bool, method: str = "receive") -> float:
        from sacsock_actors.ops import Deliver

        batch: object = WIRE * size if compact else [Deliver("room", WIRE) for _ in range(size)]
        remote = getattr(self.peer, method).remote
        began = time.perf_counter()
        for _ in range(calls):
            await remote(batch)  # one call in flight, as an Outbox
        return time.perf_counter() - began


def main() -> None:
    import ray
    from procs import cpu_plan

    server_cpus, _ = cpu_plan()
    if server_cpus:
        os.sched_setaffinity(0, {int(c) for c in server_cpus.split(",")})  # Ray's processes inherit it
    ray.init(address="local", include_dashboard=False, num_cpus=1, logging_level="ERROR")
    opts = {"num_cpus": 0, "max_concurrency": 10_000}
    receiver = ray.remote(Receiver).options(**opts).remote()
    sender = ray.remote(Sender).options(**opts).remote(receiver)
    pids = ray.get([sender.pid.remote(), receiver.pid.remote()])
    ray.get(sender.run.remote(200, 10, False))  # warm up both paths
    ray.get(sender.run.remote(200, 10, True))
    rows = []
    cases = [(size, compact, "receive") for size in SIZES for compact in (False, True)]
    # the receiver as a plain method (Ray runs it on the actor's loop as well), alternated
    cases += [(10, False, "receive_sync"), (10, False, "receive"), (10, False, "receive_sync")]
    for size, compact, method in cases:
        before = [cpu_seconds(p) for p in pids]
        wall = ray.get(sender.run.remote(CALLS, size, compact, method))
        after = [cpu_seconds(p) for p in pids]
        send_us, recv_us = ((a - b) / CALLS * 1e6 for a, b in zip(after, before, strict=True))
        rows.append({
            "casts_per_call": size, "payload": "bytes" if compact else "Deliver ops",
            "receiver_method": "async def" if method == "receive" else "def",
            "wall_us_per_call": round(wall / CALLS * 1e6, 1),
            "sender_cpu_us_per_call": round(send_us, 1), "receiver_cpu_us_per_call": round(recv_us, 1),
            "cpu_us_per_cast": round((send_us + recv_us) / size, 1),
        })
    ray.shutdown()
    print(f"{'casts/call':>10} {'payload':<12} {'method':<10} {'wall us':>8} {'sender CPU us':>14} "
          f"{'receiver CPU us':>16} {'CPU us/cast':>12}")
    for r in rows:
        print(f"{r['casts_per_call']:>10} {r['payload']:<12} {r['receiver_method']:<10} "
              f"{r['wall_us_per_call']:>8} "
              f"{r['sender_cpu_us_per_call']:>14} {r['receiver_cpu_us_per_call']:>16} "
              f"{r['cpu_us_per_cast']:>12}")
    out = BENCH / "results" / "ray_call_cost.json"
    doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "calls": CALLS,
           "server_cpus": server_cpus, "loadavg": Path("/proc/loadavg").read_text().split()[:3], "rows": rows}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
