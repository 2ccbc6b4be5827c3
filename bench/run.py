#!/usr/bin/env python
"""Run every benchmark: sacsock_actors (async and plain ``def`` handlers) side by side with
the upstream Go server, a raw aiohttp sac-sock server (the "Python limit") and
python-socketio, all driven by the Go load generator.

    python bench/run.py                       # everything (about 10-15 minutes)
    python bench/run.py --quick               # smaller sizes (a few minutes)
    python bench/run.py --only fanout,echo    # some scenarios: idle,echo,fanout,cross,rooms
    python bench/run.py --servers sacsock_actors,sacsock_actors_plain,go_server

Each scenario prints one row per server and writes bench/results/<scenario>.json; the
whole run goes to bench/results/latest.json, a chart to bench/results/bench.png and
(full runs) the table in bench/README.md. Servers run pinned to CPU 1 and the load
generator to CPU 0 (``taskset``) when there are two CPUs; the CPU time of every
server-side process (Ray's included) is read from /proc (see bench/procstat.py).
Only 127.0.0.1 is ever contacted; every server started is stopped.
Layout: procs.py (servers, load generators, CPU pinning), scenarios.py (what is measured),
report.py (ratios, targets, tables, chart), this file (the command line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import BENCH, DEFAULT_SERVERS, build_loadgen, log, raise_nofile  # noqa: E402
from report import chart, git_commit, ratios, table, target_table, targets, update_readme  # noqa: E402
from scenarios import SCENARIOS, Bench  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness works (seconds)")
    p.add_argument("--only", default="", help=f"comma-separated scenarios out of {','.join(SCENARIOS)}")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help="comma-separated servers (uvloop_floor is opt-in)")
    p.add_argument("--results-dir", default=str(BENCH / "results"))
    p.add_argument("--profile", action="store_true", help="py-spy the gateway during fan-out")
    p.add_argument("--repeat", type=int, default=0,
                   help="repetitions of each measured phase, taken in turns (default 3; smoke 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers and loadgen to CPUs")
    p.add_argument("--no-build", action="store_true", help="use the loadgen binary as it is")
    p.add_argument("--readme", action="store_true", help="write the table into bench/README.md "
                   "(done by default for a full run)")
    args = p.parse_args()
    bench = Bench(args)
    sz = bench.sizes
    need = max(sz.idle_conns, *sz.fanout_ks, sz.rooms_sockets) + 1000  # per process, each side
    have = raise_nofile(need)
    if have < need:
        log(f"warning: open-file limit is {have}; the biggest scenario needs about {need} per process")
    if not args.no_build:
        build_loadgen()
    env = {"commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "cpus": os.cpu_count(), "server_cpus": bench.server_cpus, "client_cpus": bench.client_cpus,
           "sizes": asdict(bench.sizes), "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
           "python": sys.version.split()[0]}
    log(f"sacsock_actors benchmarks: servers on CPU {bench.server_cpus}, loadgen on CPU "
        f"{bench.client_cpus}; sizes {'smoke' if args.smoke else 'quick' if args.quick else 'full'}")
    began = time.monotonic()
    try:
        bench.run()
    finally:
        rows = bench.rows
        rat = ratios(rows)
        ks = bench.sizes.fanout_ks
        tg = targets(rows, 1000 if 1000 in ks else ks[0])
        env["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
        env["seconds"] = round(time.monotonic() - began, 1)
        doc = {"env": env, "rows": [asdict(r) for r in rows], "ratios": rat, "targets": tg}
        (bench.results / "latest.json").write_text(json.dumps(doc, indent=1))
        for scenario in SCENARIOS:
            part = [asdict(r) for r in rows if r.scenario == scenario]
            if part:
                (bench.results / f"{scenario}.json").write_text(json.dumps(
                    {"env": env, "rows": part, "ratios": [x for x in rat if x["scenario"] == scenario]},
                    indent=1))
        text = table(rows, rat)
        tt = target_table(tg)
        log("\n" + text + "\n\n" + tt)
        (bench.results / "results.md").write_text(
            f"Run of {env['date']} at commit {env['commit']} ({env['seconds']} s; servers on CPU "
            f"{env['server_cpus']}, loadgen on CPU {env['client_cpus']}; load average before "
            f"{' '.join(env['loadavg_before'])})\n\n{text}\n\nTargets:\n\n{tt}\n")
        if rows:
            try:
                chart(rows, bench.results / "bench.png")
                log(f"\nwrote {bench.results / 'latest.json'} and {bench.results / 'bench.png'}")
            except ImportError:
                log(f"\nwrote {bench.results / 'latest.json'} (no chart: pip install matplotlib)")
        full = not (args.quick or args.smoke or args.only or args.servers != ",".join(DEFAULT_SERVERS))
        if rows and (args.readme or (full and bench.results == (BENCH / "results").resolve())):
            update_readme((bench.results / "results.md").read_text().strip()
                          + "\n\n![benchmark chart](results/bench.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
