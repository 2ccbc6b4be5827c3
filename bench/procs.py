"""Processes of a benchmark run: servers under test and load generators, pinned to CPUs.

Every server is started in its own session and prints ``READY {json}`` (its pids and
ports); :class:`Server` records every descendant so that ``stop`` ends them all.
:class:`LoadGen` drives one ``bench/loadgen`` process over stdin/stdout. Only 127.0.0.1 is
ever contacted.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import procstat

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOADGEN_DIR = BENCH / "loadgen"
LOADGEN = LOADGEN_DIR / "loadgen"
GO_PEER_SRC = REPO.parent / "shared" / "peers"
GO_PEER = BENCH / "loadgen" / "gopeer"
PY = sys.executable

SACSOCK = "sacsock_actors"  # async handlers
SACSOCK_PLAIN = "sacsock_actors_plain"  # plain def handlers
BASELINE = "aiohttp_baseline"
GO = "go_server"
SOCKETIO = "python_socketio"
#: servers/uvloop_floor.py: a bare uvloop Protocol answering the app's events, the least any
#: Python server spends per message (opt-in: not among the default servers)
FLOOR = "uvloop_floor"
#: the same app (async handlers) on another checkout of the repo, named by
#: SACSOCK_BENCH_BASE=/path (e.g. main, for before/after side by side in one run)
SACSOCK_BASE = "sacsock_actors_base"
OURS = (SACSOCK, SACSOCK_PLAIN)
PEERS = (BASELINE, GO, SOCKETIO, FLOOR)
# the baseline first: it sets the fixed rate
SERVER_ORDER = (BASELINE, GO, FLOOR, SACSOCK, SACSOCK_PLAIN, SACSOCK_BASE, SOCKETIO)
DEFAULT_SERVERS = tuple(s for s in SERVER_ORDER if s != FLOOR)
PROTO = {SOCKETIO: "socketio", GO: "gopeer"}  # the load generator's -proto; default sacsock


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
    go = go_binary()
    if go is None:
        if LOADGEN.exists():
            return
        raise SystemExit("Go is needed to build bench/loadgen (https://go.dev/dl/); none found on PATH")
    subprocess.run([go, "build", "-o", str(LOADGEN), "."], cwd=LOADGEN_DIR, check=True)


def go_binary() -> str | None:
    go = shutil.which("go")
    if go is None and Path("/usr/local/go/bin/go").exists():
        go = "/usr/local/go/bin/go"
    return go


def build_go_peer() -> Path | None:
    """Build the upstream Go server from ../shared/peers (None when it is not beside the repo)."""
    override = os.environ.get("SACSOCK_GO_PEER")
    if override:
        return Path(override)
    if not (GO_PEER_SRC / "build.sh").exists() or go_binary() is None:
        return None
    env = dict(os.environ, PATH=f"{Path(go_binary() or 'go').parent}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run(["bash", str(GO_PEER_SRC / "build.sh"), str(GO_PEER)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return GO_PEER


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

    def __init__(self, kind: str, label: str, cmd: list[str], cpus: str | None, logdir: Path,
                 cwd: Path = REPO, env: dict[str, str] | None = None) -> None:
        self.kind, self.label = kind, label
        self.cmd = pinned(cmd, cpus)
        self.cwd, self.env = cwd, env
        self.logfile = logdir / f"server-{label}.log"
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.named: dict[int, str] = {}
        self.urls: list[str] = []
        self._seen: dict[int, str | None] = {}

    def start(self, timeout: float = 240.0) -> None:
        err = open(self.logfile, "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
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
        proto = PROTO.get(server.kind, "sacsock")
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
