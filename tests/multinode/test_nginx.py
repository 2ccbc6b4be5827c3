"""Debian nginx with the shipped deploy/nginx.conf in front of two Ray nodes: websocket
upgrades pass, a cast reaches clients on both nodes, a drained node's clients reconnect
through nginx to the other node, rejoin their room and get the next cast.

Runs in its own pytest process with tests/multinode (its own Ray cluster).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import ray
from ray.cluster_utils import Cluster
from sacclient import SacClient, free_port

from sacsock_actors import SocketServer
from sacsock_actors.cluster import Placement

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
JS_MEMBER = Path(__file__).with_name("js_member.mjs")


def build() -> SocketServer:
    server = SocketServer()

    @server.on("whoami")
    async def whoami(sock, data):
        import ray as _ray

        sock.emit("whoami", _ray.get_runtime_context().get_node_id())

    @server.on("join")
    async def join(sock, data):
        sock.join(data.decode())
        sock.emit("joined", data)

    return server


def shipped_config(upstreams: list[str], listen: str) -> str:
    """deploy/nginx.conf with its upstream servers and listen address replaced."""
    text = SHIPPED.read_text()
    servers = re.findall(r"^(\s*)server\s+\S+:\d+(\s[^;]*)?;\s*$", text, re.M)
    assert servers, "deploy/nginx.conf lists no upstream server"
    indent, params = servers[0][0], servers[0][1] or ""
    first = True

    def replace(match: re.Match) -> str:
        nonlocal first
        if not first:
            return ""
        first = False
        return "".join(f"{indent}server {u}{params};\n" for u in upstreams)

    text = re.sub(r"^\s*server\s+\S+:\d+(\s[^;]*)?;\s*\n", replace, text, flags=re.M)
    text, n = re.subn(r"^(\s*)listen\s+80;", rf"\1listen {listen};", text, flags=re.M)
    assert n == 1, "deploy/nginx.conf has no `listen 80;` to point at the test's port"
    return text


class Nginx:
    """nginx -g 'daemon off;' with the shipped config, in a prefix of its own."""

    def __init__(self, prefix: Path, site: str) -> None:
        self.prefix = prefix
        (prefix / "logs").mkdir(parents=True)
        (prefix / "sacsock.conf").write_text(site)
        temps = "".join(
            f"    {kind}_temp_path {prefix}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"worker_processes 1;\nuser root;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/logs/error.log info;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n    access_log {prefix}/logs/access.log;\n{temps}"
            f"    include {prefix}/sacsock.conf;\n}}\n"
        )
        conf = str(prefix / "nginx.conf")
        check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", conf], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return (self.prefix / "logs" / "error.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster():
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (scripts/setup.sh installs Debian's nginx)")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="sacsock")
    yield c
    ray.shutdown()
    c.shutdown()


async def get_until(url: str, status: int, bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as r:
                    if r.status == status:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered {status}")
            await asyncio.sleep(0.1)


class Member:
    """A browser-like client behind nginx: sends Origin, and on connect (again) joins its
    room as the JS client's onConnect handler does."""

    def __init__(self, lb: str) -> None:
        self.lb = lb
        self.client: SacClient | None = None
        self.node = ""

    async def connect(self, bound: float = 60.0) -> str:
        deadline = time.monotonic() + bound
        while True:
            try:
                self.client = await SacClient.connect(f"{self.lb}/socket", headers={"Origin": self.lb})
                break
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self.node = (await self.client.call("whoami")).text
        await self.client.call("join", "lobby", reply="joined")
        return self.node


class JsMember:
    """The JS client in Node (js_member.mjs): joins in onConnect, reconnects by itself."""

    def __init__(self, url: str) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed (the JS client tests need Node.js >= 20)")
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
        major = int(version.lstrip("v").split(".")[0])
        flags = ["--experimental-websocket"] if major < 22 else []
        self.proc = subprocess.Popen(
            [node, *flags, str(JS_MEMBER), url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: asyncio.Queue[dict] = asyncio.Queue()
        self._task = asyncio.get_running_loop().run_in_executor(None, self._read)
        self._loop = asyncio.get_running_loop()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                msg = {"event": "output", "data": line}
            self._loop.call_soon_threadsafe(self.lines.put_nowait, msg)

    async def next(self, event: str, bound: float = 60.0) -> str:
        async def find() -> str:
            while True:
                msg = await self.lines.get()
                if msg["event"] == event:
                    return msg["data"]
        return await asyncio.wait_for(find(), bound)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def test_nginx_upgrade_cast_and_drained_node_moves(cluster, tmp_path):
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    ports = [free_port(), free_port()]
    server = build()
    server.start(placements=[Placement(nodes[0], ports[0]), Placement(nodes[1], ports[1])])
    lb_port = free_port()
    site = shipped_config([f"127.0.0.1:{p}" for p in ports], f"127.0.0.1:{lb_port}")
    nginx = Nginx(tmp_path / "nginx", site)
    lb = f"http://127.0.0.1:{lb_port}"
    members: list[Member] = []
    js: JsMember | None = None
    try:
        await get_until(f"{lb}/healthz", 200)
        js = JsMember(f"ws://127.0.0.1:{lb_port}/socket")
        assert await js.next("joined") == "lobby"
        js_node = await js.next("whoami")
        for _ in range(4):
            m = Member(lb)
            await m.connect()
            members.append(m)
        assert {m.node for m in members} == set(nodes), "least_conn spreads sockets over both nodes"
        await asyncio.sleep(0.5)  # joins reach the shards (join visibility, README)
        server.roomcast("lobby", "news", "one")
        for m in members:
            assert m.client is not None
            assert (await m.client.recv_event("news")).text == "one"
        assert await js.next("news") == "one"

        drained, other = js_node, next(n for n in nodes if n != js_node)  # the JS client's node
        moving = [m for m in members if m.node == drained]
        closes = [asyncio.create_task(m.client.closed(60)) for m in moving if m.client]  # type: ignore[union-attr]
        await asyncio.to_thread(server.drain, 30, drained)
        assert await asyncio.gather(*closes) == [1001] * len(moving)
        await js.next("disconnected")
        for m in moving:
            await m.client.close()  # type: ignore[union-attr]
            assert await m.connect() == other, "a reconnect through nginx reached the drained node"
        # the JS client reconnected by itself and rejoined in its onConnect
        assert await js.next("joined") == "lobby"
        assert await js.next("whoami") == other
        await asyncio.sleep(0.5)
        server.roomcast("lobby", "news", "two")
        for m in members:
            assert (await m.client.recv_event("news")).text == "two"  # type: ignore[union-attr]
        assert await js.next("news") == "two"
    except BaseException:
        print(nginx.log())
        raise
    finally:
        for m in members:
            if m.client is not None:
                await m.client.close()
        if js is not None:
            js.stop()
        nginx.stop()
        server.shutdown()
