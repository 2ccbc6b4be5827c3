#!/usr/bin/env python
"""Where two gateways' extra CPU goes: Ray calls per cast, CPU and context switches per cast.

    python bench/cross_calls.py                  # 1 and 2 gateways, 3 rounds each
    python bench/cross_calls.py --gateways 2 --rounds 5
    python bench/cross_calls.py --transports ray,stream --repeat 3   # gateway_transport A/B

The cross scenario of ``bench/run.py`` (fan-out to K=1,000 sockets, one publisher, 16
casts in flight) with the gateways' own counters read around each round (the driver
runs in this process, so ``server.stats()`` is at hand): Ray calls and ops the gateways
sent (``ray_calls_out``, ``ray_ops_out``), CPU seconds of the gateway processes and of
every server-side process (``/proc``, all threads), and the gateways' context switches
(every thread's ``voluntary_ctxt_switches`` / ``nonvoluntary_ctxt_switches``). Servers
are pinned to the server CPUs and the load generator to the client CPUs, as in
``bench/run.py``. Prints a table and writes ``bench/results/cross_calls.json``.

``--transports``: each gateway count above 1 is run with each ``gateway_transport``
(``stream_batches`` counts the batches that went over gateway streams); ``--repeat N``
runs the whole list of configurations N times in turns (a slow drift of a busy machine
then hits every configuration alike).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "servers"))

K = 1000
CASTS = int(os.environ.get("SACSOCK_CROSS_CASTS", "600"))  # casts per round


def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _switches(pids: list[int]) -> tuple[int, int]:
    vol = invol = 0
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            vol += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches"):
                            invol += int(line.split()[1])
            except OSError:
                continue
    return vol, invol


def _syscalls(pids: list[int]) -> tuple[int, int]:
    """Read and write system calls the processes made so far (``/proc/<pid>/io``)."""
    reads = writes = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                fields = dict(line.split(": ") for line in f.read().splitlines())
        except OSError:
            continue
        reads += int(fields["syscr"])
        writes += int(fields["syscw"])
    return reads, writes


def _sent(stats: dict) -> tuple[int, int]:
    gws = [v for k, v in stats.items() if k.startswith("gw")]
    # the gateways' ray_*_out count batches by either path: take out those over streams
    calls = sum(g.get("ray_calls_out", 0) - g.get("stream_batches_out", 0) for g in gws)
    return calls, sum(g.get("ray_ops_out", 0) - g.get("stream_ops_out", 0) for g in gws)


def _stream(stats: dict) -> int:
    return sum(v.get("stream_batches_out", 0) for k, v in stats.items() if k.startswith("gw"))


def one(gateways: int, rounds: int, transport: str | None = None) -> list[dict]:
    """Measure ``rounds`` rounds with ``gateways`` gateways (run in a child process)."""
    import procstat
    from procs import LoadGen, cpu_plan, free_ports
    from sacsock_app import server

    server_cpus, client_cpus = cpu_plan()
    if server_cpus:
        os.sched_setaffinity(0, {int(c) for c in server_cpus.split(",")})  # Ray's processes inherit it
    port = free_ports()
    opts = {"gateway_transport": transport} if transport else {}
    infos = server.start(port=port, gateways=gateways, **opts)
    gw_pids = [i["pid"] for i in infos]

    class Target:  # what LoadGen needs of a procs.Server
        kind = "sacsock_actors"
        label = f"cross-calls-{gateways}"
        urls = [f"ws://127.0.0.1:{port}/socket"]

    logdir = BENCH / "results" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    lg = LoadGen("fanout", Target(), client_cpus, logdir, subs=K, room=f"bench{K}")
    out = []
    try:
        for _ in range(rounds):
            pids = [p for p in procstat.descendants(os.getpid()) if p != lg.proc.pid]
            st0 = server.stats()
            s0, c0, x0 = _sent(st0), {p: _cpu(p) for p in pids}, _switches(gw_pids)
            io0 = _syscalls(gw_pids)
            res = lg.run(0, CASTS, 6.0, 16)
            st1 = server.stats()
            s1, c1, x1 = _sent(st1), {p: _cpu(p) for p in pids}, _switches(gw_pids)
            io1 = _syscalls(gw_pids)
            casts = res["delivered"] / K or 1
            total = sum(c1[p] - c0[p] for p in pids)
            gw = sum(c1[p] - c0[p] for p in gw_pids)
            out.append({
                "gateways": gateways, "transport": transport or "default", "casts": round(casts),
                "stream_batches": _stream(st1) - _stream(st0),
                "deliveries_per_s": round(res["deliveries_per_s"]),
                "missing": res.get("missing"), "out_of_order": res.get("out_of_order"),
                "ray_calls": s1[0] - s0[0], "ray_ops": s1[1] - s0[1],
                "ray_calls_per_cast": round((s1[0] - s0[0]) / casts, 3),
                "gateway_cpu_us_per_cast": round(gw / casts * 1e6),
                "server_cpu_us_per_cast": round(total / casts * 1e6),
                "deliveries_per_server_cpu_s": round(res["delivered"] / total) if total else None,
                "voluntary_switches_per_cast": round((x1[0] - x0[0]) / casts, 1),
                "involuntary_switches_per_cast": round((x1[1] - x0[1]) / casts, 1),
                # the gateways' read and write system calls (socket writes: one per socket
                # per flush, so fewer per delivery means more casts coalesced per write)
                "reads_per_cast": round((io1[0] - io0[0]) / casts, 1),
                "writes_per_delivery": round((io1[1] - io0[1]) / (res["delivered"] or 1), 3),
            })
    finally:
        lg.quit()
        server.shutdown()
    return out


def _summary(rows: list[dict]) -> list[dict]:
    """Median deliveries per server CPU s of each configuration, and its ratio to 1 gateway."""
    import statistics

    groups: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        if r["deliveries_per_server_cpu_s"]:
            groups.setdefault((r["gateways"], r["transport"]), []).append(r["deliveries_per_server_cpu_s"])
    one = [statistics.median(v) for (g, _), v in groups.items() if g == 1]
    out = []
    for (g, t), v in groups.items():
        med = statistics.median(v)
        out.append({"gateways": g, "transport": t, "median_per_cpu_s": round(med), "rounds": v,
                    "vs_1_gateway": round(med / one[0], 3) if one else None})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateways", default="1,2", help="comma-separated gateway counts")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--transports", default="", help="comma-separated gateway_transport values (stream,ray)")
    p.add_argument("--repeat", type=int, default=1, help="runs of every configuration, in turns")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: one gateway count
    p.add_argument("--transport", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.rounds, args.transport)), flush=True)
        return
    configs: list[tuple[int, str | None]] = []
    for n in (int(g) for g in args.gateways.split(",")):
        transports = [t for t in args.transports.split(",") if t] if n > 1 else []
        configs += [(n, t) for t in transports] or [(n, None)]
    rows: list[dict] = []
    for _ in range(args.repeat):
        for n, transport in configs:
            cmd = [sys.executable, __file__, "--one", str(n), "--rounds", str(args.rounds)]
            cmd += ["--transport", transport] if transport else []
            done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
            rows += json.loads(next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    keys = ["gateways", "transport", "deliveries_per_s", "stream_batches", "ray_calls_per_cast",
            "gateway_cpu_us_per_cast",
            "server_cpu_us_per_cast", "deliveries_per_server_cpu_s", "voluntary_switches_per_cast",
            "involuntary_switches_per_cast", "reads_per_cast", "writes_per_delivery", "missing",
            "out_of_order"]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    summary = _summary(rows)
    print("gateways | transport | median deliveries per server CPU s | vs 1 gateway | rounds")
    for r in summary:
        cols = ("gateways", "transport", "median_per_cpu_s", "vs_1_gateway", "rounds")
        print(" | ".join(str(r[k]) for k in cols))
    out = BENCH / "results" / "cross_calls.json"
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "k": K,
                               "loadavg": Path("/proc/loadavg").read_text().split()[:3], "summary": summary,
                               "rows": rows},
                              indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
