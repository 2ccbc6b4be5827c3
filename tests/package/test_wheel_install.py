"""Install the built wheel as a user does: `pip install 'sacsock_actors[redis]'` into a fresh
virtualenv outside the source tree, then run `sacsock demo` and `sacsock serve` from folders
that have nothing to do with the checkout, stop them with Ctrl-C (SIGINT to the process
group, as a terminal sends it) and check that no process they started is left."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkgtools import ROOT, Dists, built_dists
from sacclient import SacClient, free_port

import sacsock_actors

TWO_PAGES = ROOT / "clientjs" / "test" / "e2e" / "two-pages-chat.mjs"
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
MARK = "SACSOCK_WHEEL_TEST"  # every process the server starts inherits it; we look for it in /proc

APP = '''
import os

from sacsock_actors import SocketServer
from shout import shout          # a sibling module: the gateway actors must get it too

server = SocketServer()

@server.on("echo")
def echo(socket, data):
    socket.emit("echo", f"{shout(data.decode())} {os.getpid()}")   # which gateway process ran it

@server.on("join")
async def join(socket, data):
    socket.join(data.decode())
    socket.roomcast(data.decode(), "joined", socket.id)
'''

SHOUT = "def shout(text):\n    return text.upper() + '!'\n"


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return built_dists(tmp_path_factory)


class Venv:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.bin = path / "bin"

    def env(self, mark: str) -> dict[str, str]:
        """The environment of a user's shell with this venv activated, and nothing of ours."""
        env = {k: v for k, v in os.environ.items()
               if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RAY_ADDRESS", "SACSOCK_BIN"}}
        ours = str(Path(sys.executable).parent)
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != ours]
        env.update(PATH=os.pathsep.join([str(self.bin), *path]), VIRTUAL_ENV=str(self.path),
                   PYTHONUNBUFFERED="1", **{MARK: mark})
        return env


@pytest.fixture(scope="module")
def venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("fresh-venv")
    assert ROOT not in base.parents
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    v = Venv(base / "venv")
    began = time.monotonic()
    proc = subprocess.run(
        [str(v.bin / "python"), "-m", "pip", "install", "-q", f"{dists.wheel}[redis]"],
        cwd=base, env=v.env("install"), capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"wheel + redis extra installed into a fresh venv in {time.monotonic() - began:.0f} s")
    where = subprocess.run(
        [str(v.bin / "python"), "-c", "import sacsock_actors, redis; print(sacsock_actors.__file__)"],
        cwd=base, env=v.env("probe"), capture_output=True, text=True, timeout=120,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(v.path), "imported from outside the venv"
    return v


def marked(mark: str) -> list[str]:
    """'pid cmdline' of every live process whose environment carries ``MARK=mark``."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name} {cmd[:120]}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


class Server:
    """`sacsock ARGS` run from ``cwd`` in its own process group, as from a terminal."""

    def __init__(self, venv: Venv, args: list[str], cwd: Path) -> None:
        self.mark = secrets.token_hex(6)
        self.proc = subprocess.Popen(
            [str(venv.bin / "sacsock"), *args], cwd=cwd, env=venv.env(self.mark),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def wait_ready(self, url: str, bound: float = 180.0) -> float:
        """Until ``url`` answers 200 and the command logged "ready" (it handles Ctrl-C from then)."""
        import aiohttp

        began = time.monotonic()
        async with aiohttp.ClientSession() as s:
            while time.monotonic() - began < bound:
                if self.proc.poll() is not None:
                    raise AssertionError(f"sacsock exited early: {self.stop()}")
                if " ready in " in self.output:
                    try:
                        async with s.get(url) as r:
                            if r.status == 200:
                                return time.monotonic() - began
                    except aiohttp.ClientError:
                        pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{url} not ready within {bound} s: {self.stop()}")

    def ctrl_c(self, bound: float = 90.0) -> int:
        """SIGINT to the process group (what Ctrl-C does); returns the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit within {bound} s after SIGINT:\n{self.stop()}") from None
        self._reader.join(timeout=30)
        return self.proc.returncode

    def stop(self) -> str:
        """Last resort (a failed test): kill the group and everything marked; returns the output."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for line in marked(self.mark):
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=60)
        self._reader.join(timeout=30)
        return self.output

    def leftovers(self, bound: float = 60.0) -> list[str]:
        """Processes started by the server still alive after ``bound`` s (they may take a moment)."""
        deadline = time.monotonic() + bound
        while (left := marked(self.mark)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left


@pytest.fixture
def serve(venv: Venv) -> Iterator:
    started: list[Server] = []

    def start(args: list[str], cwd: Path) -> Server:
        started.append(Server(venv, args, cwd))
        return started[-1]

    yield start
    for s in started:
        if s.proc.poll() is None or marked(s.mark):
            s.stop()


def test_version_from_the_installed_wheel(venv: Venv, tmp_path: Path):
    for cmd in ([str(venv.bin / "sacsock"), "--version"],
                [str(venv.bin / "python"), "-m", "sacsock_actors", "--version"]):
        out = subprocess.run(cmd, cwd=tmp_path, env=venv.env("version"), capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"sacsock {sacsock_actors.__version__}"


async def test_demo_from_an_empty_folder_chats_in_chromium_then_ctrl_c(venv: Venv, serve, tmp_path: Path):
    node = shutil.which("node")
    playwright = ROOT / "clientjs" / "node_modules" / "playwright-core"
    assert node and Path(CHROMIUM).exists() and playwright.is_dir(), (
        "needs Node, /usr/bin/chromium and clientjs/node_modules: run scripts/setup.sh"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    server = serve(["demo", "--port", str(port)], empty)
    took = await server.wait_ready(f"http://127.0.0.1:{port}/")
    print(f"sacsock demo (installed wheel) ready in {took:.1f} s")
    started = marked(server.mark)
    names = " ".join(started)
    assert "raylet" in names and "GatewayActor" in names, started  # the check below can see Ray's processes

    chat = await asyncio.to_thread(
        subprocess.run, [node, str(TWO_PAGES), f"http://127.0.0.1:{port}"],
        cwd=ROOT / "clientjs", capture_output=True, text=True, timeout=240,
        env=dict(os.environ, CHROMIUM_BIN=CHROMIUM),
    )
    assert chat.returncode == 0, f"{chat.stdout}\n{chat.stderr}\nserver:\n{server.stop()}"
    assert '"ok":true' in chat.stdout and '"from":"Ada"' in chat.stdout

    code = server.ctrl_c()
    assert code == 0, server.output
    assert "signal SIGINT: shutting down" in server.output
    assert server.leftovers() == [], f"left behind after Ctrl-C (of {len(started)} started)"
    assert os.listdir(empty) == [], "the demo wrote into the folder it was run from"


async def test_serve_an_app_with_a_sibling_module_from_its_own_folder(venv: Venv, serve, tmp_path: Path):
    app = tmp_path / "elsewhere" / "myapp"
    app.mkdir(parents=True)
    (app / "app.py").write_text(APP)
    (app / "shout.py").write_text(SHOUT)
    port = free_port()
    server = serve(["serve", "app:server", "--port", str(port), "--gateways", "2"], app)
    took = await server.wait_ready(f"http://127.0.0.1:{port}/sacsock.js")
    print(f"sacsock serve app:server (installed wheel, 2 gateways) ready in {took:.1f} s")
    clients: list[SacClient] = []
    pids: set[str] = set()
    try:
        # Connect until both gateways answered (the kernel spreads connections over them):
        # each must run the app's handler and its sibling module.
        while len(pids) < 2 and len(clients) < 40:
            clients.append(await SacClient.connect(f"http://127.0.0.1:{port}/socket"))
            shouted, pid = (await clients[-1].call("echo", "hi")).text.split()
            assert shouted == "HI!"
            pids.add(pid)
        assert len(pids) == 2, f"{len(clients)} connections all reached one gateway"
        await clients[0].emit("join", "r")
        assert (await clients[0].recv_event("joined")).event == "joined"
        stats_gateways = len([line for line in marked(server.mark) if "GatewayActor" in line])
        assert stats_gateways == 2
    finally:
        code = server.ctrl_c()
    assert code == 0, server.output
    for c in clients:
        assert await c.closed() == 1001
        await c.close()
    assert server.leftovers() == [], "left behind after Ctrl-C"


TYPED_APP = '''
from sacsock_actors import Socket, SocketServer

server = SocketServer()


@server.on("echo")
async def echo(socket: Socket, data: bytes) -> None:
    socket.emit("echo", data.decode())


@server.on_connect
def hello(socket: Socket) -> None:
    socket.join(socket.id)


reveal_type(echo)
server.roomcast("lobby", 42, "hi")   # error: an event name is a str
count: int = hello                   # error: on_connect kept the handler's type
server.on("x", echo).emit            # error: so did on(event, handler)
'''


def test_a_users_strict_mypy_sees_the_installed_types(venv: Venv, tmp_path: Path):
    """py.typed ships: mypy --strict, run on a user's app against the fresh venv, checks calls
    into sacsock_actors, and decorated handlers keep their types."""
    (tmp_path / "app.py").write_text(TYPED_APP)
    # Ray and aiohttp are not the subject here (and Ray is slow to analyse): skip into them.
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n"
        "[mypy-ray.*]\nfollow_imports = skip\n[mypy-aiohttp.*]\nfollow_imports = skip\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-executable", str(venv.bin / "python"), "app.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    found = {int(n): text for n, text in re.findall(r"^app\.py:(\d+): (.*)$", proc.stdout, flags=re.M)}
    source = TYPED_APP.splitlines()
    line = {key: source.index(next(s for s in source if s.startswith(key))) + 1
            for key in ("reveal_type", "server.roomcast", "count:", "server.on(\"x\"")}
    assert re.fullmatch(
        r'note: Revealed type is "def \(socket: sacsock_actors\.[\w.]*Socket, data: bytes\) '
        r'-> typing\.Coroutine\[Any, Any, None\]"',
        found.pop(line["reveal_type"], ""),
    ), proc.stdout
    assert 'incompatible type "int"; expected "str"' in found.pop(line["server.roomcast"], ""), proc.stdout
    assert 'variable has type "int"' in found.pop(line["count:"], ""), proc.stdout
    assert 'has no attribute "emit"' in found.pop(line["server.on(\"x\""], ""), proc.stdout
    assert found == {}, proc.stdout  # nothing else: the correct code type-checks


def test_ctrl_c_while_starting_stops_it_and_leaves_nothing(venv: Venv, serve, tmp_path: Path):
    """Ctrl-C pressed while Ray and the actors are still starting is not lost: the command
    finishes starting, then stops (exit 0), and nothing it started is left."""
    server = serve(["demo", "--port", str(free_port())], tmp_path)
    deadline = time.monotonic() + 180
    while not any("raylet" in line for line in marked(server.mark)):  # Ray is up, the app not yet
        assert server.proc.poll() is None and time.monotonic() < deadline, server.stop()
        time.sleep(0.05)
    early = " ready in " not in server.output
    print(f"Ctrl-C {'while starting' if early else 'after ready (startup was quick)'}")
    code = server.ctrl_c(bound=120)
    assert code == 0, server.output
    assert "signal SIGINT: shutting down" in server.output
    assert server.leftovers() == [], "left behind after Ctrl-C while starting"
