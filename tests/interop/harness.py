"""Plain helpers for mixed-fleet tests against the real upstream Go Sacrificial-Socket server.

Fixtures built on these live in ``tests/interop/conftest.py``; put Go-peer tests in
``tests/interop/`` to get them. The pieces:

- :func:`go_peer_binary` builds ``../shared/peers`` once (``build.sh``) into
  ``~/.cache/sacsock/gopeer-<hash of the sources and Go version>``; ``SACSOCK_GO_PEER``
  (a prebuilt binary) and ``SACSOCK_GO_PEER_SRC`` (a directory laid out like
  ``../shared/peers``) override it. What is missing raises :class:`Missing`, whose text is
  a one-line reason.
- :class:`ProcessGroup` starts real processes (Go peers with any flags, ``sacsock serve``
  as users run it, ``redis-server``), waits until each is ready, writes each one's output
  to its own log file and stops them all.
- :class:`PeerClient`: a sac-sock websocket client that keeps every frame it receives, with
  "wait for the next frame of event E" helpers (bounded by generous timeouts), and
  :func:`settle`: wait until a roomcast from one side reaches every member of a room.
- ``peer_app.py`` beside this file is the sacsock side with the Go peer's handlers, so one
  client script drives either side (``ProcessGroup.sacsock()`` serves it by default).

Timeouts here are bounds on a busy 2-core machine, never measurements.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: sacclient
from sacclient import Message, free_port, parse, sacsock_bin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: the upstream Go server beside the clone (``../shared/peers``)
DEFAULT_PEERS_DIR = REPO.parent / "shared" / "peers"
#: the directory ``peer_app.py`` (the sacsock side's handlers) lives in
APP_DIR = Path(__file__).resolve().parent
#: the Go peer's handlers, served by ``sacsock serve`` (same events as gopeer/main.go)
PEER_APP = "peer_app:server"
WAIT = 30.0  # bound on waiting for one frame
READY = 180.0  # bound on a process getting ready (a cold Ray start is 10-20 s here; CI is slower)
DEFAULT_GROUP = "ss-rmhb-group-default"
GO_FALLBACKS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")  # where Go lives when not on PATH


class Missing(Exception):
    """A piece the interop tests need is not on this machine; ``str()`` says which, in one line."""


def in_ci() -> bool:
    """True under CI (``CI=true``): missing pieces must fail the tests, not skip them."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# ---- the Go peer binary ------------------------------------------------------------------------


def peers_dir() -> Path:
    """The upstream checkout to build: ``SACSOCK_GO_PEER_SRC`` or ``../shared/peers``."""
    src = os.environ.get("SACSOCK_GO_PEER_SRC")
    path = Path(src).expanduser().resolve() if src else DEFAULT_PEERS_DIR
    if not (path / "build.sh").is_file() or not (path / "gopeer").is_dir():
        where = "SACSOCK_GO_PEER_SRC" if src else "the upstream Go server"
        raise Missing(f"{where} not found at {path} (a directory with build.sh and gopeer/); "
                      "set SACSOCK_GO_PEER or SACSOCK_GO_PEER_SRC")
    return path


def sources_hash(src: Path, extra: str = "") -> str:
    """sha256 (hex, 16 chars) over every file's relative path and bytes under ``src``."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(p for p in src.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(src)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sacsock`` (default ``~/.cache/sacsock``): outside the repo."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sacsock"


def go_peer_binary(timeout: float = 600.0) -> Path:
    """The Go peer executable: ``SACSOCK_GO_PEER``, else built once from :func:`peers_dir`.

    Raises :class:`Missing` when the binary, the sources or Go is absent, and
    ``RuntimeError`` (with Go's output) when the build itself fails.
    """
    prebuilt = os.environ.get("SACSOCK_GO_PEER")
    if prebuilt:
        path = Path(prebuilt).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise Missing(f"SACSOCK_GO_PEER={prebuilt} is not an executable file")
        return path.resolve()
    src = peers_dir()
    go = shutil.which("go") or next((g for g in GO_FALLBACKS if os.access(g, os.X_OK)), None)
    if go is None:
        raise Missing("Go is not on PATH nor in /usr/local/go/bin (needed to build the upstream Go "
                      "server; or set SACSOCK_GO_PEER to a prebuilt binary)")
    env = dict(os.environ, PATH=f"{Path(go).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60,
                             env=env).stdout
    out = cache_dir() / f"gopeer-{sources_hash(src, version.strip())}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    result = subprocess.run(["bash", str(src / "build.sh"), str(tmp)], capture_output=True, text=True,
                            timeout=timeout, env=env)
    if result.returncode != 0 or not tmp.is_file():
        raise RuntimeError(f"building the Go peer from {src} failed ({result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
    os.replace(tmp, out)  # atomic: a concurrent build of the same sources is harmless
    return out


# ---- readiness probes ------------------------------------------------------------------------------


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redis_command(port: int, *args: str | bytes, host: str = "127.0.0.1", timeout: float = 5.0) -> Any:
    """Send one command (RESP) to Redis and return the decoded reply (no client library)."""
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    req = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        return _read_resp(s.makefile("rb"))


def _read_resp(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise ConnectionError(f"unexpected redis reply {line!r}")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = READY, every: float = 0.05,
             proc: Proc | None = None) -> None:
    """Poll ``predicate`` until true; raise TimeoutError naming ``what`` (or early when
    ``proc`` has exited, with the tail of its log)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited ({proc.returncode}) before {what}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{proc.log_tail()}" if proc is not None else ""
            raise TimeoutError(f"not {what} within {timeout:.0f} s{tail}")
        time.sleep(every)


# ---- processes --------------------------------------------------------------------------------------


class Proc:
    """One real process, its output in ``log_path``. ``ready()`` is the readiness probe.

    ``start()`` waits until ready; ``stop()`` sends SIGTERM, then SIGKILLs the process group
    after ``stop_timeout``; ``kill()`` is SIGKILL at once; ``restart()`` is stop + start
    with the same command line (and port).
    """

    stop_timeout = 60.0

    def __init__(self, name: str, argv: list[str], log_path: Path, *, ready: Callable[[], bool] | None = None,
                 cwd: str | Path | None = None, env: dict[str, str] | None = None,
                 ready_what: str = "ready", ready_timeout: float = READY) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.cwd = str(cwd) if cwd else None
        self.env = env
        self._ready = ready
        self.ready_what = ready_what
        self.ready_timeout = ready_timeout
        self.popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid} log={self.log_path}>"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def ready(self) -> bool:
        return self._ready() if self._ready else True

    def start(self) -> Proc:
        """Start the process and wait until it is ready (or fail with its log)."""
        assert not self.alive, f"{self.name} is already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(self.argv)} (cwd {self.cwd})\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,  # own group: stop() reaches children
            )
        wait_for(self.ready, f"{self.name} {self.ready_what}", self.ready_timeout, proc=self)
        return self

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and wait (bounded); then SIGKILL whatever is left of its process group."""
        popen = self.popen
        if popen is None:
            return None
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                pass
        self._killpg()
        popen.wait()
        return popen.returncode

    def kill(self) -> None:
        """SIGKILL the process (and its group) at once, as a crash would."""
        if self.popen is not None:
            self._killpg()
            self.popen.wait()

    def restart(self) -> Proc:
        self.stop()
        return self.start()

    def _killpg(self) -> None:
        assert self.popen is not None
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # our own session: only what we started
        except (ProcessLookupError, PermissionError):
            pass

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 20000) -> str:
        text = self.log_text()
        return text if len(text) <= chars else "...\n" + text[-chars:]

    def wait_log(self, needle: str, timeout: float = READY) -> None:
        """Wait until the log holds ``needle``."""
        wait_for(lambda: needle in self.log_text(), f"{self.name} logged {needle!r}", timeout, proc=self)


class RedisProc(Proc):
    """``redis-server`` on its own port (no persistence): ``url``, ``addr`` (host:port for Go),
    ``command(...)``, ``wait_subscribers(...)``; ``restart()`` keeps the port."""

    def __init__(self, binary: str, port: int, log_path: Path, workdir: Path,
                 extra: Iterable[str] = ()) -> None:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(workdir), *extra]
        super().__init__(f"redis-{port}", argv, log_path, ready=self.ping, ready_what="answering PING")
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.url = f"redis://127.0.0.1:{port}/0"
        self.stop_timeout = 20.0

    def ping(self) -> bool:
        try:
            return redis_command(self.port, "PING", timeout=1) == "PONG"
        except (OSError, RuntimeError):
            return False

    def command(self, *args: str | bytes) -> Any:
        return redis_command(self.port, *args)

    def subscribers(self, group: str = DEFAULT_GROUP) -> int:
        """The fewest subscribers on either channel of ``group`` (each fleet member holds one)."""
        chans = [f"{group}:_ss_roomcasts", f"{group}:_ss_broadcasts"]
        reply = self.command("PUBSUB", "NUMSUB", *chans)
        return min(reply[1::2])

    def wait_subscribers(self, n: int, group: str = DEFAULT_GROUP, timeout: float = READY) -> None:
        """Wait until ``n`` instances subscribe to both channels of ``group``."""
        def enough() -> bool:
            try:
                return self.subscribers(group) >= n
            except (OSError, RuntimeError):
                return False
        wait_for(enough, f"{n} subscribers to group {group} on {self.name}", timeout, proc=self)


class GoPeer(Proc):
    """The upstream Go server (``gopeer``): ``port``, ``url`` (its websocket), ``server_name``."""

    def __init__(self, name: str, argv: list[str], log_path: Path, port: int,
                 server_name: str | None) -> None:
        super().__init__(name, argv, log_path, ready=lambda: port_open(port),
                         ready_what=f"listening on {port}")
        self.port = port
        self.url = f"http://127.0.0.1:{port}/socket"
        self.server_name = server_name
        self.stop_timeout = 20.0


class Sacsock(Proc):
    """A ``sacsock serve`` process (its own local Ray): ``port``, ``url`` (websocket), ``http``."""

    def __init__(self, name: str, argv: list[str], log_path: Path, port: int, cwd: Path,
                 env: dict[str, str]) -> None:
        super().__init__(name, argv, log_path, cwd=cwd, env=env,
                         ready=lambda: "sacsock: serving" in self.log_text(), ready_what="serving")
        self.port = port
        self.url = f"http://127.0.0.1:{port}/socket"
        self.http = f"http://127.0.0.1:{port}"


_ACTIVE: weakref.WeakSet[ProcessGroup] = weakref.WeakSet()


def active_groups() -> list[ProcessGroup]:
    """Every ProcessGroup not yet stopped (the conftest attaches their logs to failures)."""
    return list(_ACTIVE)


class ProcessGroup:
    """Real processes started for a test (or a module); ``stop_all()`` ends them, newest first.

    ``go_peer_bin`` is a path or a callable returning one, resolved on the first Go peer
    (so tests that start no Go peer do not need Go).
    """

    def __init__(self, log_dir: Path, go_peer_bin: Path | Callable[[], Path] | None = None,
                 redis_bin: str | Callable[[], str] | None = None) -> None:
        self.log_dir = Path(log_dir)
        self._go_peer_bin = go_peer_bin
        self._redis_bin = redis_bin
        self.procs: list[Proc] = []
        self._n = 0
        _ACTIVE.add(self)

    def _log(self, name: str) -> Path:
        self._n += 1
        return self.log_dir / f"{self._n:02d}-{name}.log"

    def start(self, name: str, argv: list[str], *, ready: Callable[[], bool] | None = None,
              cwd: str | Path | None = None, env: dict[str, str] | None = None) -> Proc:
        """Start any command; ``ready`` is polled until true."""
        return self.add(Proc(name, argv, self._log(name), ready=ready, cwd=cwd, env=env))

    def add(self, proc: Proc) -> Proc:
        """Start ``proc`` (waiting until ready) and own it."""
        self.procs.append(proc)
        proc.start()
        return proc

    def redis(self, *extra: str, port: int | None = None) -> RedisProc:
        """A fresh ``redis-server`` on its own port; ``extra`` are more server arguments."""
        binary = _resolve(self._redis_bin) or shutil.which("redis-server")
        if not binary:
            raise Missing("redis-server is not on PATH (apt-get install redis-server)")
        port = port or free_port()
        workdir = self.log_dir / f"redis-{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        proc = RedisProc(binary, port, self._log(f"redis-{port}"), workdir, extra)
        self.add(proc)
        return proc

    def go_peer(self, *flags: str, backend: str = "none", port: int | None = None,
                redis: RedisProc | str | None = None, group: str | None = None,
                server_name: str | None = None, name: str | None = None) -> GoPeer:
        """Start the upstream Go server with ``-backend backend`` and any extra ``flags``
        (e.g. ``"-mongo", url``); ``redis``/``group``/``server_name`` add ``-redis``/
        ``-group``/``-name``. Ready once its port accepts connections (with a backend that
        connects at start-up, that is after connecting: it exits on failure)."""
        binary = _resolve(self._go_peer_bin)
        if binary is None:
            raise Missing("no Go peer binary given to this ProcessGroup")
        port = port or free_port()
        argv = [str(binary), "-addr", f"127.0.0.1:{port}", "-backend", backend]
        if redis is not None:
            argv += ["-redis", redis.addr if isinstance(redis, RedisProc) else redis]
        if group:
            argv += ["-group", group]
        if server_name:
            argv += ["-name", server_name]
        argv += list(flags)
        proc = GoPeer(name or f"gopeer-{port}", argv, self._log(name or f"gopeer-{port}"), port, server_name)
        self.add(proc)
        return proc

    def sacsock(self, app: str = PEER_APP, *args: str, port: int | None = None, gateways: int = 1,
                cwd: str | Path = APP_DIR, env: dict[str, str] | None = None,
                name: str | None = None) -> Sacsock:
        """``sacsock serve app --port P --gateways N *args`` (cwd ``cwd``, default the
        peer app's directory) on its own local Ray, as users run it; ready once it prints
        "sacsock: serving" (after the gateways listen and the bridges are wired)."""
        port = port or free_port()
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        full_env.pop("RAY_ADDRESS", None)  # its own local Ray, as a user's first run
        argv = [sacsock_bin(), "serve", app, "--host", "127.0.0.1", "--port", str(port),
                "--gateways", str(gateways), *args]
        label = name or f"sacsock-{port}"
        proc = Sacsock(label, argv, self._log(label), port, Path(cwd), full_env)
        self.add(proc)
        return proc

    def logs(self) -> list[tuple[str, Path, str]]:
        """(name, log path, tail of the log) of every process started."""
        return [(p.name, p.log_path, p.log_tail()) for p in self.procs]

    def stop_all(self) -> None:
        """Stop every process, newest first (all of them, even when one fails to stop)."""
        _ACTIVE.discard(self)
        errors = []
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001 - stop the rest anyway
                errors.append(f"{proc.name}: {exc!r}")
        if errors:
            raise RuntimeError("stopping processes failed: " + "; ".join(errors))


def _resolve(value: Any) -> Any:
    return value() if callable(value) else value


# ---- a buffered sac-sock client -------------------------------------------------------------------------


class PeerClient:
    """A sac-sock websocket client that keeps every frame it receives (a reader task), so
    tests can wait for frames of one event without losing the others.

    ``next(event)`` returns the oldest frame of ``event`` not yet taken; ``take(event, n)``
    the next ``n``; ``extra(event, seconds)`` waits ``seconds`` and returns frames that
    should not have come. The handlers of peer_app.py / gopeer are wrapped as methods.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession, url: str) -> None:
        self.ws = ws
        self.url = url
        self._session = session
        self.frames: list[Message] = []
        self._taken: dict[str, int] = {}
        self._changed = asyncio.Event()
        self.closed_with: Any = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str, timeout: float = WAIT, **kwargs: Any) -> PeerClient:
        session = aiohttp.ClientSession()
        try:
            ws = await asyncio.wait_for(
                session.ws_connect(url, protocols=("sac-sock",), max_msg_size=0, **kwargs), timeout)
        except BaseException:
            await session.close()
            raise
        return cls(ws, session, url)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.frames.append(parse(msg.data.encode(), False))
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self.frames.append(parse(msg.data, True))
                self._changed.set()
        finally:
            self.closed_with = self.ws.close_code
            self._changed.set()

    def of(self, event: str) -> list[Message]:
        """Every frame of ``event`` received so far (taken or not)."""
        return [m for m in self.frames if m.event == event]

    async def _until(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            if self._reader.done():
                raise ConnectionError(f"{self.url}: closed ({self.closed_with}) while waiting for {what}")
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"{self.url}: no {what} within {timeout:.0f} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def take(self, event: str, n: int, timeout: float = WAIT) -> list[Message]:
        """The next ``n`` frames of ``event`` (waiting for them, bounded by ``timeout``)."""
        start = self._taken.get(event, 0)
        await self._until(lambda: len(self.of(event)) >= start + n, f"{n} frame(s) of {event!r} "
                          f"(have {len(self.of(event)) - start})", timeout)
        self._taken[event] = start + n
        return self.of(event)[start:start + n]

    async def next(self, event: str, timeout: float = WAIT) -> Message:
        """The next frame of ``event``."""
        return (await self.take(event, 1, timeout))[0]

    async def extra(self, event: str, seconds: float = 0.5) -> list[Message]:
        """Wait ``seconds``; the frames of ``event`` that arrived beyond those taken."""
        await asyncio.sleep(seconds)
        return self.of(event)[self._taken.get(event, 0):]

    def forget(self) -> None:
        """Drop every frame received so far (e.g. the probes of :func:`settle`)."""
        self.frames.clear()
        self._taken.clear()

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` (checked after every frame) or fail naming ``what``."""
        await self._until(predicate, what, timeout)

    async def emit(self, event: str, data: str | bytes | dict | list = "") -> None:
        """Send ``event`` (str: text frame; bytes: binary frame; dict/list: JSON text)."""
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        if isinstance(data, str):
            await self.ws.send_str(f"{event}\x02{data}")
        else:
            await self.ws.send_bytes(event.encode() + b"\x02" + data)

    # the handlers of gopeer/main.go and peer_app.py

    async def whoami(self) -> str:
        await self.emit("whoami")
        return (await self.next("whoami")).text

    async def join(self, room: str) -> None:
        """Join ``room`` and wait for the server's "joined room:R" (the join has happened)."""
        await self.emit("join", room)
        m = await self.next("echo")
        assert m.text == f"joined room:{room}", m

    async def leave(self, room: str) -> None:
        await self.emit("leave", room)
        m = await self.next("echo")
        assert m.text == f"left room:{room}", m

    async def roomcast(self, room: str, data: str, kind: str = "") -> None:
        """Ask the server to roomcast: ``kind`` "" (string), "bin" (bytes) or "json"."""
        body: dict[str, Any] = {"room": room, "data": data}
        await self.emit("roomcast" + kind, body)

    async def close(self) -> None:
        await self.ws.close()
        await self._session.close()
        await asyncio.gather(self._reader, return_exceptions=True)


async def settle(sender: PeerClient, room: str, members: Iterable[PeerClient], *,
                 timeout: float = 2 * WAIT, every: float = 1.0) -> int:
    """Wait until a roomcast by ``sender`` to ``room`` reaches every member: ``sender``
    roomcasts a probe every ``every`` seconds until all have the latest one. Joins are
    asynchronous across a fleet (and across gateways), so a test's first cast may race
    them; after this it does not. Every client's frames are then forgotten (probes sent
    before the last one were either received or lost). Returns the probes sent."""
    members = list(members)
    deadline = asyncio.get_running_loop().time() + timeout
    sent = 0
    while True:
        sent += 1
        tag = f"settle:{room}:{sent}"
        await sender.roomcast(room, tag)
        try:
            for m in members:
                await m.until(lambda m=m, tag=tag: any(f.payload == tag.encode() for f in m.of("roomcast")),
                              f"probe {tag}", every)
            break
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"a roomcast to {room} by {sender.url} did not reach every member "
                                   f"within {timeout:.0f} s ({sent} probes)") from None
    for c in {id(c): c for c in [sender, *members]}.values():
        c.forget()
    return sent


__all__ = [
    "APP_DIR", "DEFAULT_GROUP", "DEFAULT_PEERS_DIR", "PEER_APP", "READY", "REPO", "WAIT",
    "GoPeer", "Missing", "PeerClient", "Proc", "ProcessGroup", "RedisProc", "Sacsock",
    "active_groups", "cache_dir", "free_port", "go_peer_binary", "in_ci", "peers_dir",
    "port_open", "redis_command", "settle", "sources_hash", "wait_for",
]
