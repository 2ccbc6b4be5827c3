#!/usr/bin/env python
"""Run every benchmark: sacsock_actors side by side with a raw aiohttp sac-sock server
(the "Python limit") and python-socketio, all driven by the Go load generator.

    python bench/run.py                       # everything (about 10-15 minutes)
    python bench/run.py --quick               # smaller sizes (a few minutes)
    python bench/run.py --only fanout,echo    # some scenarios: idle,echo,fanout,cross,rooms
    python bench/run.py --servers sacsock_actors,aiohttp_baseline

Each scenario prints one row per server and writes bench/results/<scenario>.json; the
whole run goes to bench/results/latest.json, a chart to bench/results/bench.png and
(full runs) the table in bench/README.md. Servers run pinned to CPU 1 and the load
generator to CPU 0 (``taskset``) when there are two CPUs; the CPU time of every
server-side process (Ray's included) is read from /proc (see bench/procstat.py).
Only 127.0.0.1 is ever contacted; every server started is stopped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import procstat  # noqa: E402

LOADGEN_DIR = BENCH / "loadgen"
LOADGEN = LOADGEN_DIR / "loadgen"
PY = sys.executable

SACSOCK = "sacsock_actors"
BASELINE = "aiohttp_baseline"
SOCKETIO = "python_socketio"
SERVER_ORDER = (BASELINE, SACSOCK, SOCKETIO)  # the baseline first: it sets the fixed rate
SCENARIOS = ("idle", "echo", "fanout", "cross", "rooms")


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


def log(msg: str) -> None:
    print(msg, flush=True)


def free_ports(n: int = 1) -> int:
    """A port P with P..P+n-1 free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65000:
            continue
        ok = True
        for p in range(base + 1, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free ports")


def cpu_plan() -> tuple[str | None, str | None]:
    """(server CPUs, client CPUs) for taskset, or (None, None) with fewer than 2 CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    half = len(cpus) // 2
    return ",".join(map(str, cpus[half:])), ",".join(map(str, cpus[:half]))


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def build_loadgen() -> None:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        if LOADGEN.exists():
            return
        raise SystemExit("Go is needed to build bench/loadgen (https://go.dev/dl/); none found on PATH")
    subprocess.run([go, "build", "-o", str(LOADGEN), "."], cwd=LOADGEN_DIR, check=True)


class Lines:
    """Lines of a child's stdout, read by a thread, awaited with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def expect(self, tag: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {tag} line within {timeout:.0f} s")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process ended before {tag}")
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])
            if line == tag:
                return {}


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rfind(")") + 2 :].split()[19]
    except OSError:
        return None


class Server:
    """One server under test, in its own session, pinned to the server CPUs."""

    def __init__(self, kind: str, label: str, cmd: list[str], cpus: str | None, logdir: Path) -> None:
        self.kind, self.label = kind, label
        self.cmd = pinned(cmd, cpus)
        self.logfile = logdir / f"server-{label}.log"
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.named: dict[int, str] = {}
        self.urls: list[str] = []
        self._seen: dict[int, str | None] = {}

    def start(self, timeout: float = 240.0) -> None:
        err = open(self.logfile, "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, text=True, start_new_session=True)
        err.close()
        lines = Lines(self.proc.stdout)
        try:
            self.info = lines.expect("READY", timeout)
        except BaseException:
            self.stop()
            raise
        for name, pid in self.info.get("pids", {}).items():
            self.named[pid] = name.split(":")[0]
        ports = self.info.get("ports") or [self.info["port"]]
        path = "" if self.kind == SOCKETIO else "/socket"
        self.urls = [f"ws://127.0.0.1:{p}{path}" for p in ports]
        self.remember()

    def remember(self) -> None:
        """Record every process of the server (to be sure to end them all at stop)."""
        assert self.proc is not None
        for pid in procstat.descendants(self.proc.pid):
            self._seen.setdefault(pid, _start_time(pid))

    def sample(self) -> dict[int, procstat.Proc]:
        assert self.proc is not None
        self.remember()
        return procstat.sample(self.proc.pid, self.named)

    def gateway_pids(self) -> list[int]:
        return [pid for pid, role in self.named.items() if role in ("gateway", "server")]

    def stop(self) -> None:
        if self.proc is None:
            return
        self.remember()
        proc, self.proc = self.proc, None
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=15)
        time.sleep(0.5)
        for pid, started in self._seen.items():  # anything of ours still alive (same pid AND start time)
            if started is not None and _start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class LoadGen:
    """One loadgen process: set up (connect, join) then run phases on command."""

    def __init__(self, mode: str, server: Server, cpus: str | None, logdir: Path, **flags: Any) -> None:
        proto = "socketio" if server.kind == SOCKETIO else "sacsock"
        args = [str(LOADGEN), mode, "-url", ",".join(server.urls), "-proto", proto]
        for k, v in flags.items():
            args += [f"-{k.replace('_', '-')}", str(v)]
        err = open(logdir / f"loadgen-{mode}-{server.label}.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(pinned(args, cpus), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, text=True, start_new_session=True)
        err.close()
        self.lines = Lines(self.proc.stdout)
        try:
            self.ready = self.lines.expect("READY", 600)
        except BaseException:
            self.kill()
            raise

    def run(self, *args: Any, timeout: float = 300) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run " + " ".join(str(a) for a in args) + "\n")
        self.proc.stdin.flush()
        return self.lines.expect("RESULT", timeout)

    def quit(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Row:
    scenario: str
    variant: str
    server: str
    metrics: dict
    server_cpu: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.scenario, self.variant


def fmt_rate(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def fmt_us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} us"


def headline(row: Row) -> tuple[str, float | None]:
    """(unit, value) of a row's throughput figure."""
    m = row.metrics
    if row.scenario == "echo":
        return "round trips/s", m.get("round_trips_per_s")
    if row.scenario == "idle":
        return "KiB/conn (gateway)", row.extra.get("gateway_kib_per_conn")
    if row.scenario == "rooms":
        return "casts/s", m.get("casts_per_s")
    return "deliveries/s", m.get("deliveries_per_s")


def print_row(row: Row) -> None:
    m = row.metrics
    unit, value = headline(row)
    if row.scenario == "idle":
        log(f"{row.scenario:<7} {row.variant:<22} {row.server:<17} "
            f"gateway {row.extra['gateway_kib_per_conn']:.1f} KiB/conn, all server processes "
            f"{row.extra['total_kib_per_conn']:.1f} KiB/conn ({m.get('conns')} conns; PSS of the gateway, "
            "USS sum of all)")
        return
    errs = ""
    if "missing" in m:
        errs = f" missing {m['missing']} dup {m['duplicates']} ooo {m['out_of_order']}"
    extra = ""
    if row.scenario == "rooms":
        extra = f" ({fmt_rate(m['deliveries_per_s'])} deliveries/s)"
    cpu = row.server_cpu.get("total")
    per_cpu = row.extra.get("per_server_cpu_s")
    log(f"{row.scenario:<7} {row.variant:<22} {row.server:<17} {fmt_rate(value or 0):>7} {unit}{extra} "
        f"p50 {fmt_us(m.get('p50_us'))} p99 {fmt_us(m.get('p99_us'))}{errs} "
        f"server CPU {cpu:.2f} s" + (f" ({fmt_rate(per_cpu)}/CPU-s)" if per_cpu else "")
        + f" client CPU {m.get('client_cpu_s', 0):.2f} s")


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
        if SOCKETIO in self.servers and importlib.util.find_spec("socketio") is None:
            log("warning: python-socketio is not installed (pip install -e '.[bench]'); skipping it")
            self.servers.remove(SOCKETIO)
        self.repeats = args.repeat or (1 if args.smoke else 3)

    # ---- servers -----------------------------------------------------------------------

    def make_server(self, kind: str, label: str | None = None, gateways: int = 1, nodes: int = 1) -> Server:
        port = free_ports(max(nodes, 1))
        if kind == SACSOCK:
            cmd = [PY, str(BENCH / "servers" / "sacsock_server.py"), "--port", str(port),
                   "--gateways", str(gateways), "--nodes", str(nodes)]
        elif kind == BASELINE:
            cmd = [PY, str(BENCH / "baseline_aiohttp.py"), "--port", str(port)]
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
                if self.args.profile and name and rep == 0 and kind == SACSOCK:
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
                    "repetitions": all_}))
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
                "repetitions": all_}))

    def cross(self) -> None:
        for gateways, nodes, variant in ((2, 1, "2 gateways"), (1, 2, "2 nodes")):
            server = self.make_server(SACSOCK, f"{SACSOCK}-{variant.replace(' ', '')}", gateways, nodes)
            log(f"-- starting {server.label}")
            server.start()
            try:
                for k in self.sizes.cross_ks:
                    self.fanout_k({SACSOCK: server}, k, "cross", variant, fixed=False)
            finally:
                server.stop()

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
        wanted = [x for x in ("idle", "echo", "fanout", "rooms") if x in self.only]
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


# ---- reporting ------------------------------------------------------------------------------


def ratios(rows: list[Row]) -> list[dict]:
    """sacsock_actors / each peer, per scenario and variant."""
    by_key: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        by_key.setdefault(r.key, {})[r.server] = r
    out = []
    for (scenario, variant), group in by_key.items():
        ours = group.get(SACSOCK)
        if ours is None:
            continue
        for peer in (BASELINE, SOCKETIO):
            other = group.get(peer)
            if other is None:
                continue
            _, a = headline(ours)
            _, b = headline(other)
            entry = {"scenario": scenario, "variant": variant, "peer": peer,
                     "throughput": a / b if a and b else None,
                     "p99": (ours.metrics.get("p99_us") / other.metrics["p99_us"])
                     if other.metrics.get("p99_us") and ours.metrics.get("p99_us") else None}
            pa, pb = ours.extra.get("per_server_cpu_s"), other.extra.get("per_server_cpu_s")
            entry["per_server_cpu_s"] = pa / pb if pa and pb else None
            out.append(entry)
    return out


def targets(rows: list[Row], k: int = 1000) -> list[dict]:
    """The issue's targets, checked on this run (fan-out figures at K=k)."""
    def find(scenario: str, variant: str, server: str) -> Row | None:
        return next((r for r in rows if r.key == (scenario, variant) and r.server == server), None)

    out = []

    def check(name: str, value: float | None, op: str, bound: float, detail: str) -> None:
        if value is None:
            out.append({"target": name, "value": None, "met": None, "detail": "not measured"})
            return
        met = value >= bound if op == ">=" else value <= bound
        out.append({"target": name, "value": round(value, 3), "bound": f"{op} {bound}", "met": met,
                    "detail": detail})

    ours, base, sio = (find("fanout", f"K={k} max", s) for s in (SACSOCK, BASELINE, SOCKETIO))
    tp = lambda r: r.metrics["deliveries_per_s"] if r else None  # noqa: E731
    check(f"fan-out K={k} deliveries/s vs aiohttp baseline", tp(ours) / tp(base) if ours and base else None,
          ">=", 0.9, f"{fmt_rate(tp(ours) or 0)} vs {fmt_rate(tp(base) or 0)}")
    check(f"fan-out K={k} deliveries/s vs python-socketio", tp(ours) / tp(sio) if ours and sio else None,
          ">=", 5.0, f"{fmt_rate(tp(ours) or 0)} vs {fmt_rate(tp(sio) or 0)}")
    of, bf = (find("fanout", f"K={k} fixed rate", x) for x in (SACSOCK, BASELINE))
    check(f"fan-out K={k} p99 at a fixed rate vs baseline",
          of.metrics["p99_us"] / bf.metrics["p99_us"] if of and bf and bf.metrics["p99_us"] else None,
          "<=", 1.5, f"{fmt_us(of.metrics['p99_us']) if of else '-'} vs "
          f"{fmt_us(bf.metrics['p99_us']) if bf else '-'}")
    bad = [(r.scenario, r.variant, r.metrics.get("missing", 0), r.metrics.get("out_of_order", 0),
            r.metrics.get("duplicates", 0))
           for r in rows if r.server.startswith(SACSOCK) and "missing" in r.metrics]
    worst = sum(b[2] + b[3] for b in bad)
    check("sacsock_actors missing + out-of-order (all fan-out, cross, rooms rows)",
          float(worst) if bad else None, "<=", 0,
          "; ".join(f"{b[0]} {b[1]}: missing {b[2]} ooo {b[3]} dup {b[4]}"
                    for b in bad if b[2] or b[3] or b[4]) or "none")
    one = ours.extra.get("per_server_cpu_s") if ours else None
    for variant in ("2 gateways", "2 nodes"):
        two = next((r for r in rows if r.scenario == "cross" and r.variant.endswith(variant)
                    and r.server.startswith(SACSOCK) and r.variant.startswith(f"K={k} ")), None)
        per = two.extra.get("per_server_cpu_s") if two else None
        check(f"cross-gateway fan-out ({variant}) per server CPU s vs 1 gateway",
              per / one if per and one else None, ">=", 0.6,
              f"{fmt_rate(per or 0)} vs {fmt_rate(one or 0)} deliveries per server CPU second")
    idle = next((r for r in rows if r.scenario == "idle" and r.server == SACSOCK), None)
    check("idle memory per connection, gateway process (KiB)",
          idle.extra["gateway_kib_per_conn"] if idle else None, "<=", 16.0,
          f"PSS delta of the gateway process; USS delta of all server processes "
          f"{idle.extra['total_kib_per_conn']:.1f} KiB" if idle else "")
    eo, eb = find("echo", "50 clients", SACSOCK), find("echo", "50 clients", BASELINE)
    check("echo round trips/s vs baseline",
          eo.metrics["round_trips_per_s"] / eb.metrics["round_trips_per_s"] if eo and eb else None, ">=", 0.8,
          f"{fmt_rate(eo.metrics['round_trips_per_s']) if eo else '-'} vs "
          f"{fmt_rate(eb.metrics['round_trips_per_s']) if eb else '-'}")
    return out


def table(rows: list[Row], rat: list[dict]) -> str:
    rmap = {(r["scenario"], r["variant"], r["peer"]): r for r in rat}
    head = ("| scenario | variant | server | throughput | p50 | p99 | missing/dup/ooo | server CPU s "
            "| per server CPU s | x baseline | x socketio |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        unit, value = headline(r)
        m = r.metrics
        if r.scenario == "idle":
            thr = f"{value:.1f} KiB/conn gateway, {r.extra['total_kib_per_conn']:.1f} all"
        else:
            thr = f"{fmt_rate(value or 0)} {unit}"
            if r.scenario == "rooms":
                thr += f" ({fmt_rate(m['deliveries_per_s'])} deliv/s)"
            if "rate_msgs_per_s" in r.extra:
                rate = r.extra["rate_msgs_per_s"]
                thr += (f" @ {rate:.0f} msg/s" if rate >= 10 else f" @ {rate:.1f} msg/s") + (
                    " (lowered)" if r.extra.get("rate_lowered_to_half_own_max") else "")
        errs = f"{m['missing']}/{m['duplicates']}/{m['out_of_order']}" if "missing" in m else "-"
        cpu = r.server_cpu.get("total")
        per = r.extra.get("per_server_cpu_s")
        cells = []
        for peer in (BASELINE, SOCKETIO):
            x = rmap.get((r.scenario, r.variant, peer)) if r.server == SACSOCK else None
            if x is None or x["throughput"] is None:
                cells.append("")
            else:
                cell = f"{x['throughput']:.2f}x"
                if x.get("p99"):
                    cell += f" (p99 {x['p99']:.2f}x)"
                cells.append(cell)
        lines.append(
            f"| {r.scenario} | {r.variant} | {r.server} | {thr} | {fmt_us(m.get('p50_us'))} "
            f"| {fmt_us(m.get('p99_us'))} | {errs} | {'' if cpu is None else f'{cpu:.2f}'} "
            f"| {fmt_rate(per) if per else ''} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def target_table(tg: list[dict]) -> str:
    lines = ["| target | measured | bound | met | detail |", "|---|---|---|---|---|"]
    for t in tg:
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value'] if t['value'] is not None else '-'} "
                     f"| {t.get('bound', '')} | {met} | {t['detail']} |")
    return "\n".join(lines)


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in SERVER_ORDER if any(r.server == s for r in rows)]
    cross = [r for r in rows if r.scenario == "cross"]
    keys = []
    for r in rows:
        if r.scenario != "idle" and r.key not in keys:
            keys.append(r.key)
    colors = {BASELINE: "#7f7f7f", SACSOCK: "#1f77b4", SOCKETIO: "#ff7f0e"}
    fig, axes = plt.subplots(3, 1, figsize=(13, 12), height_ratios=[3, 3, 1.6])
    width = 0.8 / max(1, len(servers))
    for ax, what in ((axes[0], "throughput"), (axes[1], "p99")):
        for i, s in enumerate(servers):
            xs, ys = [], []
            for j, key in enumerate(keys):
                r = next((r for r in rows if r.key == key and (r.server == s or (
                    s == SACSOCK and r.scenario == "cross"))), None)
                if r is None or (r.scenario == "cross" and s != SACSOCK):
                    continue
                v = headline(r)[1] if what == "throughput" else (r.metrics.get("p99_us") or 0) / 1000
                if r.scenario == "rooms" and what == "throughput":
                    v = r.metrics["deliveries_per_s"]
                xs.append(j + (i - (len(servers) - 1) / 2) * width)
                ys.append(v or 0)
            ax.bar(xs, ys, width, label=s, color=colors.get(s))
            for x, y in zip(xs, ys, strict=True):
                label = fmt_rate(y) if what == "throughput" else f"{y:.1f}"
                ax.text(x, y, label, ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{a}\n{b}" for a, b in keys], fontsize=8)
        ax.set_yscale("log")
        top = ax.get_ylim()[1]
        ax.set_ylim(top=top * 6)  # room for the value labels
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("per second (log)\ndeliveries; echo: round trips")
    axes[0].set_title("Throughput: deliveries/s (fan-out, cross-gateway, many rooms), round trips/s (echo)")
    axes[0].legend()
    axes[1].set_ylabel("p99 latency, ms (log)")
    axes[1].set_title("p99 publish-to-deliver latency (echo: round trip)")
    idle = [r for r in rows if r.scenario == "idle"]
    ax = axes[2]
    for i, r in enumerate(idle):
        ax.barh(i, r.extra["gateway_kib_per_conn"], color=colors.get(r.server), label="gateway process")
        ax.barh(i, r.extra["total_kib_per_conn"], color=colors.get(r.server), alpha=0.35,
                label="all server processes")
        ax.text(r.extra["total_kib_per_conn"], i, f" {r.extra['gateway_kib_per_conn']:.1f} / "
                f"{r.extra['total_kib_per_conn']:.1f}", va="center", fontsize=8)
    ax.set_yticks(range(len(idle)))
    ax.set_yticklabels([r.server for r in idle], fontsize=8)
    ax.set_xlabel("idle memory per connection, KiB (gateway process: PSS delta, solid; "
                  "all server processes: USS delta, light)")
    del cross
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_readme(text: str) -> None:
    readme = BENCH / "README.md"
    if not readme.exists():
        return
    body = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(head + start + "\n" + text + "\n" + end + tail)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness works (seconds)")
    p.add_argument("--only", default="", help=f"comma-separated scenarios out of {','.join(SCENARIOS)}")
    p.add_argument("--servers", default=",".join(SERVER_ORDER), help="comma-separated servers")
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
        full = not (args.quick or args.smoke or args.only or args.servers != ",".join(SERVER_ORDER))
        if rows and (args.readme or (full and bench.results == (BENCH / "results").resolve())):
            update_readme((bench.results / "results.md").read_text().strip()
                          + "\n\n![benchmark chart](results/bench.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
