"""The scenarios of a benchmark run (idle, echo, fanout, cross, rooms) and their sizes.

Every server is up at once (all pinned to the server CPUs; the idle ones cost next to
nothing), each with its own connected load generator, and the measured phases take turns
between servers, repeated: so slow drifts of a shared, noisy machine hit every server
alike. Each row is the median repetition (by throughput; fixed rate: by p99).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procstat
from procs import (
    BASELINE,
    BENCH,
    DEFAULT_SERVERS,
    FLOOR,
    GO,
    OURS,
    PY,
    SACSOCK,
    SACSOCK_BASE,
    SACSOCK_PLAIN,
    SERVER_ORDER,
    SOCKETIO,
    LoadGen,
    Server,
    build_go_peer,
    cpu_plan,
    free_ports,
    log,
    pinned,
)
from report import Row, print_row

SCENARIOS = ("idle", "echo", "blocking", "fanout", "cross", "rooms")


@dataclass
class Sizes:
    idle_conns: int = 10_000
    echo_clients: int = 50
    echo_seconds: float = 5.0
    fanout_ks: tuple[int, ...] = (1_000, 10_000)
    fanout_deliveries: int = 3_000_000  # per max-rate phase (the cap usually ends it first)
    cap_seconds: float = 6.0  # longest publishing phase
    fixed_fraction: float = 0.5  # fixed rate = this x the baseline's max rate
    fixed_seconds: float = 3.0
    window: int = 16  # publishes outstanding in a max-rate fan-out
    rooms_sockets: int = 4_000
    rooms: int = 10_000
    rooms_casters: int = 100
    rooms_casts: int = 400_000
    rooms_window: int = 256
    cross_ks: tuple[int, ...] = (1_000,)


QUICK = Sizes(idle_conns=2_000, echo_seconds=2.0, fanout_ks=(1_000,), fanout_deliveries=600_000,
              cap_seconds=3.0, fixed_seconds=1.5, rooms_sockets=1_000, rooms=2_500, rooms_casters=50,
              rooms_casts=50_000)
SMOKE = Sizes(idle_conns=50, echo_clients=5, echo_seconds=0.5, fanout_ks=(20,), fanout_deliveries=2_000,
              cap_seconds=1.0, fixed_seconds=0.5, rooms_sockets=40, rooms=100, rooms_casters=5,
              rooms_casts=500, rooms_window=32, cross_ks=(20,))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = SMOKE if args.smoke else QUICK if args.quick else Sizes()
        self.server_cpus, self.client_cpus = cpu_plan()
        if args.no_pin:
            self.server_cpus = self.client_cpus = None
        self.results = Path(args.results_dir).resolve()
        self.results.mkdir(parents=True, exist_ok=True)
        self.logdir = self.results / "logs"
        self.logdir.mkdir(exist_ok=True)
        self.rows: list[Row] = []
        self.fixed_rate: dict[int, float] = {}
        self.only = set(args.only.split(",")) if args.only else set(SCENARIOS)
        self.servers = [s for s in SERVER_ORDER if s in args.servers.split(",")]
        self.base_checkout = os.environ.get("SACSOCK_BENCH_BASE")
        if SACSOCK_BASE in self.servers and not self.base_checkout:
            if SACSOCK_BASE in args.servers.split(",") and args.servers != ",".join(DEFAULT_SERVERS):
                log(f"warning: {SACSOCK_BASE} needs SACSOCK_BENCH_BASE=<another checkout>; skipping it")
            self.servers.remove(SACSOCK_BASE)
        if SOCKETIO in self.servers and importlib.util.find_spec("socketio") is None:
            log("warning: python-socketio is not installed (pip install -e '.[bench]'); skipping it")
            self.servers.remove(SOCKETIO)
        self.go_peer: Path | None = None
        if GO in self.servers:
            self.go_peer = build_go_peer()
            if self.go_peer is None:
                log("warning: the Go server needs Go and ../shared/peers beside the repo "
                    "(or SACSOCK_GO_PEER=binary); skipping it")
                self.servers.remove(GO)
        self.repeats = args.repeat or (1 if args.smoke else 3)

    # ---- servers -----------------------------------------------------------------------

    def make_server(self, kind: str, label: str | None = None, gateways: int = 1, nodes: int = 1) -> Server:
        port = free_ports(max(nodes, 1))
        if kind == SACSOCK_BASE:  # that checkout's package, app and launcher (its workers import from cwd)
            root = Path(self.base_checkout or "").resolve()
            cmd = [PY, str(root / "bench" / "servers" / "sacsock_server.py"), "--port", str(port),
                   "--gateways", str(gateways), "--nodes", str(nodes)]
            env = dict(os.environ, PYTHONPATH=str(root))
            if os.environ.get("SACSOCK_BENCH_BASE_TRANSPORT"):  # that checkout must take the flag
                cmd += ["--gateway-transport", os.environ["SACSOCK_BENCH_BASE_TRANSPORT"]]
            # SACSOCK_BENCH_BASE_ENV="K=V ...": environment of the base's server only (e.g.
            # RAY_USE_UVLOOP=0 for a base checkout that does not depend on uvloop)
            env.update(kv.split("=", 1) for kv in os.environ.get("SACSOCK_BENCH_BASE_ENV", "").split())
            return Server(kind, label or kind, cmd, self.server_cpus, self.logdir, cwd=root, env=env)
        if kind in OURS:
            cmd = [PY, str(BENCH / "servers" / "sacsock_server.py"), "--port", str(port),
                   "--gateways", str(gateways), "--nodes", str(nodes),
                   "--handlers", "plain" if kind == SACSOCK_PLAIN else "async"]
            if os.environ.get("SACSOCK_BENCH_TRANSPORT"):  # gateway_transport of this checkout
                cmd += ["--gateway-transport", os.environ["SACSOCK_BENCH_TRANSPORT"]]
        elif kind == BASELINE:
            cmd = [PY, str(BENCH / "baseline_aiohttp.py"), "--port", str(port)]
        elif kind == FLOOR:
            cmd = [PY, str(BENCH / "servers" / "uvloop_floor.py"), "--port", str(port)]
        elif kind == GO:
            cmd = [PY, str(BENCH / "servers" / "go_server.py"), "--port", str(port),
                   "--binary", str(self.go_peer)]
        else:
            cmd = [PY, str(BENCH / "servers" / "socketio_server.py"), "--port", str(port)]
        return Server(kind, label or kind, cmd, self.server_cpus, self.logdir)

    def loadgen(self, mode: str, server: Server, **flags: Any) -> LoadGen:
        return LoadGen(mode, server, self.client_cpus, self.logdir, **flags)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print_row(row)
        return row

    # ---- scenarios ---------------------------------------------------------------------
    #
    # Every server is up at once (all pinned to the server CPUs, the idle ones cost next
    # to nothing), each with its own connected loadgen, and the measured phases take turns
    # between servers, repeated: so slow drifts of a shared, noisy machine hit every server
    # alike. Each row is the median repetition (by throughput; fixed rate: by p99).

    def measure(self, server: Server, lg: LoadGen, *args: Any) -> tuple[dict, dict]:
        before = server.sample()
        result = lg.run(*args)
        after = server.sample()
        return result, procstat.cpu_delta(before, after)

    def take_turns(self, servers: dict[str, Server], lgs: dict[str, LoadGen],
                   args: Any, repeats: int, name: str = "") -> dict[str, list[tuple[dict, dict]]]:
        """Run a phase on every server in turn, ``repeats`` rounds; ``args(kind)`` -> phase args.

        With --profile, sacsock_actors' first round runs under py-spy (its gateway process).
        """
        got: dict[str, list[tuple[dict, dict]]] = {kind: [] for kind in lgs}
        for rep in range(repeats):
            for kind, lg in lgs.items():
                profile = None
                if self.args.profile and name and rep == 0 and kind in OURS:
                    profile = self.start_profile(servers[kind], name)
                got[kind].append(self.measure(servers[kind], lg, *args(kind)))
                if profile is not None:
                    self.finish_profile(profile)
        return got

    @staticmethod
    def median(reps: list[tuple[dict, dict]], key: str) -> tuple[dict, dict, list[float]]:
        ordered = sorted(reps, key=lambda rc: rc[0].get(key) or 0)
        res, cpu = ordered[(len(ordered) - 1) // 2]
        return res, cpu, [round(r.get(key) or 0, 1) for r, _ in reps]

    def open_loadgens(self, servers: dict[str, Server], mode: str, **flags: Any) -> dict[str, LoadGen]:
        lgs: dict[str, LoadGen] = {}
        try:
            for kind, server in servers.items():
                lgs[kind] = self.loadgen(mode, server, **flags)
        except BaseException:
            for lg in lgs.values():
                lg.quit()
            raise
        return lgs

    def idle(self, server: Server) -> None:
        n = self.sizes.idle_conns
        time.sleep(1.0)
        before = procstat.memory(server.sample())
        lg = self.loadgen("idle", server, conns=n)
        try:
            time.sleep(3.0)  # let the server settle (allocations, handshakes done)
            after = procstat.memory(server.sample())
            got = lg.run()
        finally:
            lg.quit()
        conns = lg.ready.get("conns", 0) or 1
        gw_roles = [r for r in after if r in ("gateway", "server")]
        gw_delta = sum(after[r]["pss_kb"] - before.get(r, {"pss_kb": 0})["pss_kb"] for r in gw_roles)
        gw_rss = sum(after[r]["rss_kb"] - before.get(r, {"rss_kb": 0})["rss_kb"] for r in gw_roles)
        gw_uss = sum(after[r]["uss_kb"] - before.get(r, {"uss_kb": 0})["uss_kb"] for r in gw_roles)
        total_delta = after["total"]["uss_kb"] - before["total"]["uss_kb"]
        self.add(Row("idle", f"{n} sockets", server.label, {**lg.ready, **got}, extra={
            "gateway_kib_per_conn": gw_delta / conns, "gateway_rss_kib_per_conn": gw_rss / conns,
            "gateway_uss_kib_per_conn": gw_uss / conns, "total_kib_per_conn": total_delta / conns,
            "memory_before": before, "memory_after": after,
        }))

    def echo(self, servers: dict[str, Server]) -> None:
        s = self.sizes
        lgs = self.open_loadgens(servers, "echo", clients=s.echo_clients)
        try:
            got = self.take_turns(servers, lgs, lambda kind: (s.echo_seconds, 10**9), self.repeats, "echo")
        finally:
            for lg in lgs.values():
                lg.quit()
        for kind, reps in got.items():
            res, cpu, all_ = self.median(reps, "round_trips_per_s")
            self.add(Row("echo", f"{s.echo_clients} clients", servers[kind].label, res, cpu, {
                "per_server_cpu_s": res["round_trips"] / cpu["total"] if cpu["total"] else None,
                "repetitions": all_}))

    def blocking(self, servers: dict[str, Server]) -> None:
        """Echo on the plain-handler app with and without one client that keeps calling a
        handler that sleeps 0.2 s (not declared blocking), taking turns: the others' p99."""
        server = servers.get(SACSOCK_PLAIN)
        if server is None:
            return
        s = self.sizes
        plain = {"without": server, "with": server}
        lgs = {"without": self.loadgen("echo", server, clients=s.echo_clients),
               "with": self.loadgen("echo", server, clients=s.echo_clients, blockers=1)}
        try:
            got = self.take_turns(plain, lgs, lambda kind: (s.echo_seconds, 10**9), self.repeats)
        finally:
            for lg in lgs.values():
                lg.quit()
        for kind, reps in got.items():
            res, cpu, all_ = self.median(reps, "p99_us")
            variant = f"{s.echo_clients} clients" + (" + 1 blocker" if kind == "with" else "")
            self.add(Row("blocking", variant, server.label, res, cpu, {
                "per_server_cpu_s": res["round_trips"] / cpu["total"] if cpu["total"] else None,
                "repetitions_p99_us": all_}))

    def fanout_k(self, servers: dict[str, Server], k: int, scenario: str, variant: str,
                 fixed: bool) -> None:
        s = self.sizes
        lgs = self.open_loadgens(servers, "fanout", subs=k, room=f"bench{k}")
        try:
            for kind, lg in lgs.items():
                if lg.ready.get("joined") != lg.ready.get("subscribers") or lg.ready.get("connect_failures"):
                    log(f"  warning: {kind}: {lg.ready}")
            msgs = max(10, s.fanout_deliveries // k)
            got = self.take_turns(servers, lgs, lambda kind: (0, msgs, s.cap_seconds, s.window), self.repeats,
                                  f"{scenario}-{variant.replace(' ', '')}-k{k}")
            own_max = {}
            for kind, reps in got.items():
                res, cpu, all_ = self.median(reps, "deliveries_per_s")
                res.update(lgs[kind].ready)
                own_max[kind] = res["msgs_per_s"]
                self.add(Row(scenario, f"K={k} {variant}", servers[kind].label, res, cpu, {
                    "per_server_cpu_s": res["delivered"] / cpu["total"] if cpu["total"] else None,
                    "repetitions": all_, "repetitions_per_server_cpu_s": per_cpu(reps)}))
            if not fixed:
                return
            common = s.fixed_fraction * own_max.get(BASELINE, min(own_max.values()))
            rates = {}
            for kind, m in own_max.items():
                rates[kind] = (round(common, 1), False) if common <= 0.8 * m else (
                    round(s.fixed_fraction * m, 1), True)

            def args(kind: str) -> tuple:
                rate = rates[kind][0]
                return rate, max(5, int(rate * s.fixed_seconds)), s.fixed_seconds * 3 + 5, s.window

            got = self.take_turns(servers, lgs, args, self.repeats, f"{scenario}-fixed-k{k}")
            for kind, reps in got.items():
                res, cpu, all_ = self.median(reps, "p99_us")
                res.update(lgs[kind].ready)
                self.add(Row(scenario, f"K={k} fixed rate", servers[kind].label, res, cpu, {
                    "rate_msgs_per_s": rates[kind][0], "rate_lowered_to_half_own_max": rates[kind][1],
                    "per_server_cpu_s": res["delivered"] / cpu["total"] if cpu["total"] else None,
                    "repetitions_p99_us": all_}))
        finally:
            for lg in lgs.values():
                lg.quit()

    def fanout(self, servers: dict[str, Server]) -> None:
        for k in self.sizes.fanout_ks:
            self.fanout_k(servers, k, "fanout", "max", fixed=True)

    def rooms(self, servers: dict[str, Server]) -> None:
        s = self.sizes
        lgs = self.open_loadgens(servers, "rooms", sockets=s.rooms_sockets, rooms=s.rooms,
                                 casters=s.rooms_casters)
        try:
            for kind, lg in lgs.items():
                if lg.ready.get("joined") != lg.ready.get("memberships"):
                    log(f"  warning: {kind}: {lg.ready}")
            got = self.take_turns(servers, lgs, lambda kind: (0, s.rooms_casts, s.cap_seconds,
                                                               s.rooms_window), self.repeats, "rooms")
        finally:
            for lg in lgs.values():
                lg.quit()
        for kind, reps in got.items():
            res, cpu, all_ = self.median(reps, "casts_per_s")
            res.update(lgs[kind].ready)
            self.add(Row("rooms", f"{s.rooms} rooms of 2-5", servers[kind].label, res, cpu, {
                "per_server_cpu_s": res["delivered"] / cpu["total"] if cpu["total"] else None,
                "repetitions": all_, "repetitions_per_server_cpu_s": per_cpu(reps)}))

    def cross(self) -> None:
        """Fan-out over 2 gateways (and 2 nodes) against one gateway of the same build, in
        turns: each round starts one server, runs one phase and stops it, so only one Ray
        cluster is up at a time (an idle second cluster pinned to the same core skews CPU
        per delivery, by ~10% in either direction between runs). Each configuration gets
        ``repeats`` rounds; the 1-gateway rows have the label ``<kind>-1gateway``."""
        s = self.sizes
        kinds = [k for k in (SACSOCK, SACSOCK_BASE) if k in self.servers]  # the base taking turns
        for gateways, nodes, variant in ((2, 1, "2 gateways"), (1, 2, "2 nodes")):
            specs: dict[str, tuple[str, int, int]] = {}  # label -> kind, gateways, nodes
            for kind in kinds:
                specs[f"{kind}-{variant.replace(' ', '')}"] = (kind, gateways, nodes)
                specs[f"{kind}-1gateway"] = (kind, 1, 1)
            for k in s.cross_ks:
                msgs = max(10, s.fanout_deliveries // k)
                got: dict[str, list[tuple[dict, dict]]] = {key: [] for key in specs}
                ready: dict[str, dict] = {}
                for _ in range(self.repeats):
                    for key, (kind, g, n) in specs.items():
                        server = self.make_server(kind, key, g, n)
                        log(f"-- starting {key}")
                        server.start()
                        try:
                            lg = self.loadgen("fanout", server, subs=k, room=f"bench{k}")
                            try:
                                ready[key] = lg.ready
                                got[key].append(self.measure(server, lg, 0, msgs, s.cap_seconds, s.window))
                            finally:
                                lg.quit()
                        finally:
                            server.stop()
                for key, reps in got.items():
                    res, cpu, all_ = self.median(reps, "deliveries_per_s")
                    res.update(ready[key])
                    self.add(Row("cross", f"K={k} {variant}", key, res, cpu, {
                        "per_server_cpu_s": res["delivered"] / cpu["total"] if cpu["total"] else None,
                        "repetitions": all_, "repetitions_per_server_cpu_s": per_cpu(reps)}))

    # ---- profiling ---------------------------------------------------------------------

    def start_profile(self, server: Server, name: str) -> tuple | None:
        """py-spy record the (first) gateway until finish_profile; raw collapsed stacks."""
        pyspy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
        pids = server.gateway_pids()
        if not Path(pyspy).exists() or not pids:
            log("  (no py-spy: pip install py-spy)")
            return None
        out = self.results / f"profile-{server.label}-{name}.txt"
        cmd = [pyspy, "record", "--pid", str(pids[0]), "--rate", "200", "--format", "raw", "-o", str(out)]
        proc = subprocess.Popen(pinned(cmd, self.client_cpus), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the phase starts
        return proc, out

    def finish_profile(self, profile: tuple) -> None:
        proc, out = profile
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if out.exists():
            top = out.with_suffix(".top.txt")
            top.write_text(summarize_profile(out))
            log(f"  py-spy: {top}")

    # ---- driving -----------------------------------------------------------------------

    def run(self) -> None:
        wanted = [x for x in ("idle", "echo", "blocking", "fanout", "rooms") if x in self.only]
        servers: dict[str, Server] = {}
        try:
            if wanted:
                for kind in self.servers:
                    servers[kind] = self.make_server(kind)
                    log(f"-- starting {kind}")
                    servers[kind].start()
            if "idle" in wanted:
                for server in servers.values():
                    self.idle(server)
            for scenario in wanted:
                if scenario != "idle":
                    getattr(self, scenario)(servers)
        finally:
            for server in servers.values():
                server.stop()
        if "cross" in self.only and SACSOCK in self.servers:
            self.cross()


def per_cpu(reps: list[tuple[dict, dict]]) -> list[float | None]:
    """Every repetition's deliveries per server CPU second (in run order)."""
    return [round(res["delivered"] / cpu["total"]) if cpu.get("total") else None for res, cpu in reps]


def summarize_profile(path: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output,
    over the event loop thread's samples only (a Ray worker's main thread waits in C++,
    which py-spy counts as busy)."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "run_forever" not in stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
        if frames:
            self_c[frames[-1]] = self_c.get(frames[-1], 0) + n
    total = total or 1
    lines = [f"{total} samples of the event loop thread (py-spy, not idle)", "", "self %  function"]
    for f, n in sorted(self_c.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {f}")
    lines += ["", "incl %  function"]
    for f, n in sorted(incl.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {f}")
    return "\n".join(lines) + "\n"


