"""A mixed fleet on one Redis: the unmodified upstream Go server with ``ssredis`` and
``sacsock serve --redis`` (the CLI, as users run it), every cast kind both ways, asserted
per socket.

The module's fleet: one redis-server, two Go peers (``go-a``, ``go-b``) and a cluster of 2
gateways (``py``), all in server group ``GROUP``. Each test uses its own rooms and sockets;
the last one restarts the fleet's Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from conftest import missing
from harness import (
    APP_DIR,
    PEER_APP,
    REPO,
    GoPeer,
    PeerClient,
    ProcessGroup,
    RedisProc,
    Sacsock,
    free_port,
    peers_dir,
    settle,
)

GROUP = "interop-redis"  # not the default: the group setting must match on both sides
BURST = 1000


@dataclass
class Fleet:
    redis: RedisProc
    go_a: GoPeer
    go_b: GoPeer
    py: Sacsock


@pytest.fixture(scope="module")
def fleet(module_procs: ProcessGroup) -> Fleet:
    redis = module_procs.redis()
    go_a = module_procs.go_peer(backend="redis", redis=redis, group=GROUP, server_name="go-a", name="go-a")
    go_b = module_procs.go_peer(backend="redis", redis=redis, group=GROUP, server_name="go-b", name="go-b")
    py = module_procs.sacsock(PEER_APP, "--redis", redis.url, "--server-group", GROUP,
                              "--server-name", "py-cluster", "--static", str(APP_DIR / "static"),
                              gateways=2, name="py")
    redis.wait_subscribers(3, GROUP)
    return Fleet(redis, go_a, go_b, py)


def room_name(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


async def joined(client: Any, url: str, room: str, n: int) -> list[PeerClient]:
    out = [await client(url) for _ in range(n)]
    for c in out:
        await c.join(room)
    return out


async def on_both_gateways(client: Any, url: str, room: str, per_gateway: int = 1,
                           tries: int = 40) -> list[PeerClient]:
    """Sockets of the cluster joined to ``room``, ``per_gateway`` on each of its 2 gateways
    (connections are spread by the kernel; extra ones are closed)."""
    by_pid: dict[int, list[PeerClient]] = {}
    for _ in range(tries):
        c = await client(url)
        await c.emit("gateway")
        pid = (await c.next("gateway")).json["pid"]
        if len(by_pid.setdefault(pid, [])) < per_gateway:
            by_pid[pid].append(c)
            await c.join(room)
        else:
            await c.close()
        if len(by_pid) == 2 and all(len(v) == per_gateway for v in by_pid.values()):
            return [c for v in by_pid.values() for c in v]
    raise AssertionError(f"{tries} connections did not reach 2 gateways: {list(by_pid)}")


def frame(m: Any) -> tuple[str, bool]:
    return m.type, m.binary


# ---- every cast kind, both ways ---------------------------------------------------------------------

TEXT = "hello <é> & \u2028 \U0001f600"
JSON_DOC = {"v": [1, 2.5, "x", None, True], "nested": {"k": "<&>"}, "u": "é\u2028"}


@pytest.mark.parametrize("direction", ["cluster->go", "go->cluster"])
async def test_every_cast_kind_reaches_a_room_held_only_on_the_far_side(fleet: Fleet, client: Any,
                                                                         direction: str) -> None:
    near, far = (fleet.py, fleet.go_a) if direction == "cluster->go" else (fleet.go_a, fleet.py)
    room = room_name("far")
    sender = await client(near.url)
    members = await joined(client, far.url, room, 2)
    await settle(sender, room, members)

    await sender.roomcast(room, TEXT)
    await sender.roomcast(room, "bytes \x00\x01\x02 too", kind="bin")
    await sender.emit("roomcastjson", {"room": room, **JSON_DOC})
    for m in members:
        got = await m.next("roomcast")
        assert (got.text, frame(got)) == (TEXT, ("S", False))
        got = await m.next("roomcastbin")
        assert (got.payload, frame(got)) == (b"bytes \x00\x01\x02 too", ("B", True))
        got = await m.next("roomcastjson")  # Go re-serialises JSON: compare values
        assert (got.json, frame(got)) == ({"room": room, **JSON_DOC}, ("J", False))

    await sender.emit("broadcast", TEXT)
    await sender.emit("broadcastbin", b"\xff\x00 all")
    for m in [*members, sender]:  # the sender's own server too
        got = await m.next("broadcast")
        assert (got.text, frame(got)) == (TEXT, ("S", False))
        got = await m.next("broadcastbin")
        assert (got.payload, frame(got)) == (b"\xff\x00 all", ("B", True))

    target, other = members
    target_id = await target.whoami()
    await sender.emit("socketcast", {"socketId": target_id, "data": "only you"})
    got = await target.next("socketcast")
    assert (got.text, frame(got)) == ("only you", ("S", False))

    # the sender is not in the room; nobody got anything twice; the other got no socketcast
    assert await sender.extra("roomcast", 0.5) == []
    for m in members:
        for event in ("roomcast", "roomcastbin", "roomcastjson", "broadcast", "broadcastbin"):
            assert await m.extra(event, 0) == [], (event, m.url)
    assert other.of("socketcast") == []
    assert await target.extra("socketcast", 0) == []


async def test_socketcast_to_a_go_socket_and_back(fleet: Fleet, client: Any) -> None:
    py, go = await client(fleet.py.url), await client(fleet.go_a.url)
    py_id, go_id = await py.whoami(), await go.whoami()
    await py.emit("socketcast", {"socketId": go_id, "data": "py to go"})
    await go.emit("socketcast", {"socketId": py_id, "data": "go to py"})
    assert (await go.next("socketcast")).text == "py to go"
    assert (await py.next("socketcast")).text == "go to py"
    assert await go.extra("socketcast", 0.5) == [] and await py.extra("socketcast", 0) == []


# ---- a room held on both sides: exactly once, the sender's side included ------------------------------


async def test_room_on_both_sides_each_member_gets_each_cast_once(fleet: Fleet, client: Any) -> None:
    room = room_name("both")
    py_members = await on_both_gateways(client, fleet.py.url, room)
    go_members = await joined(client, fleet.go_a.url, room, 2)
    everyone = py_members + go_members
    for sender in (py_members[0], go_members[0]):
        await settle(sender, room, everyone)
    casts = 0
    for sender in (py_members[0], py_members[1], go_members[0]):
        for i in range(5):
            await sender.roomcast(room, f"s{i}-{sender.url}-{id(sender)}")
            await sender.roomcast(room, f"b{i}", kind="bin")
            await sender.emit("roomcastjson", {"room": room, "i": i, "by": id(sender)})
            casts += 1
    for m in everyone:
        texts = [f.text for f in await m.take("roomcast", casts)]
        bins = [f.payload for f in await m.take("roomcastbin", casts)]
        docs = [f.json["i"] for f in await m.take("roomcastjson", casts)]
        assert len(set(texts)) == casts, texts  # each distinct cast once
        assert sorted(bins) == sorted(f"b{i}".encode() for i in range(5) for _ in range(3))
        assert sorted(docs) == sorted(i for i in range(5) for _ in range(3))
    for m in everyone:
        for event in ("roomcast", "roomcastbin", "roomcastjson"):
            assert await m.extra(event, 1.0 if m is everyone[0] else 0) == [], (event, m.url)


# ---- bursts ---------------------------------------------------------------------------------------------


async def test_a_burst_from_the_cluster_reaches_go_sockets_complete_and_in_order(fleet: Fleet,
                                                                                client: Any) -> None:
    room = room_name("burst-py")
    sender = await client(fleet.py.url)
    go_members = await joined(client, fleet.go_a.url, room, 2)
    py_members = await on_both_gateways(client, fleet.py.url, room)
    await settle(sender, room, go_members + py_members)
    want = [f"{i:04d}" for i in range(BURST)]
    for text in want:  # back to back, not waiting for anything
        await sender.roomcast(room, text)
    for m in go_members + py_members:
        got = [f.text for f in await m.take("roomcast", BURST, timeout=120)]
        assert got == want, _first_difference(got, want)
    for m in go_members:
        assert await m.extra("roomcast", 0.5) == []


async def test_a_burst_from_go_reaches_cluster_sockets_complete(fleet: Fleet, client: Any) -> None:
    """Upstream publishes each cast in its own goroutine: order is not ours to assert."""
    room = room_name("burst-go")
    sender = await client(fleet.go_a.url)
    py_members = await on_both_gateways(client, fleet.py.url, room)
    await settle(sender, room, py_members)
    want = [f"{i:04d}" for i in range(BURST)]
    for text in want:
        await sender.roomcast(room, text)
    for m in py_members:
        got = [f.text for f in await m.take("roomcast", BURST, timeout=120)]
        assert sorted(got) == want  # every one, none twice
    for m in py_members:
        assert await m.extra("roomcast", 0.5) == []


def _first_difference(got: list[str], want: list[str]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"first difference at {i}: got {got[i:i + 5]}, want {want[i:i + 5]}"
    return f"lengths {len(got)} vs {len(want)}"


# ---- a fleet of three ------------------------------------------------------------------------------------


async def test_fleet_of_three_delivers_every_cast_exactly_once_to_every_member(fleet: Fleet,
                                                                              client: Any) -> None:
    room = room_name("three")
    py_members = await on_both_gateways(client, fleet.py.url, room)
    a_members = await joined(client, fleet.go_a.url, room, 2)
    b_members = await joined(client, fleet.go_b.url, room, 2)
    everyone = py_members + a_members + b_members
    senders = [py_members[0], py_members[1], a_members[0], b_members[0]]  # both gateways, both Go
    for sender in senders:
        await settle(sender, room, everyone)
    n = 10
    for s, sender in enumerate(senders):
        for i in range(n):
            await sender.roomcast(room, f"{s}:{i}")
        await sender.emit("broadcast", f"all from {s}")
        await sender.emit("broadcastbin", f"bin from {s}".encode())
    want = sorted(f"{s}:{i}" for s in range(len(senders)) for i in range(n))
    for m in everyone:
        assert sorted(f.text for f in await m.take("roomcast", len(want))) == want, m.url
        assert sorted(f.text for f in await m.take("broadcast", len(senders))) == sorted(
            f"all from {s}" for s in range(len(senders)))
        assert sorted(f.payload for f in await m.take("broadcastbin", len(senders))) == sorted(
            f"bin from {s}".encode() for s in range(len(senders)))
    await asyncio.sleep(1.0)  # then nothing more may arrive
    for m in everyone:
        for event in ("roomcast", "broadcast", "broadcastbin"):
            assert await m.extra(event, 0) == [], (event, m.url)


async def test_go_json_reserialisation_is_compared_by_value(fleet: Fleet, client: Any) -> None:
    """Go re-encodes a JSON roomcast (sorted keys, its own escaping): values survive both ways."""
    room = room_name("json")
    py, go = await client(fleet.py.url), await client(fleet.go_a.url)
    await py.join(room)
    await go.join(room)
    await settle(py, room, [py, go])
    await settle(go, room, [py, go])
    doc = {"room": room, "z": 1, "a": "<tag> & \u2028", "big": 12345678901, "f": 0.1}
    await go.emit("roomcastjson", json.dumps(doc))
    got = [await c.next("roomcastjson") for c in (py, go)]
    assert [g.json for g in got] == [doc, doc]
    assert got[0].payload == got[1].payload  # the cluster delivers Go's bytes as they came


# ---- browser clients in headless Chromium ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def upstream_page_server(upstream_js: Path) -> AsyncIterator[str]:
    """static/interop.html and upstream's sacrificial-socket.js (read from ../shared at run
    time) served on 127.0.0.1 (the Go peer serves only /socket); yields the base URL."""
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(APP_DIR / "static" / "interop.html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(upstream_js)

    app = web.Application()
    app.router.add_get("/interop.html", page)
    app.router.add_get("/sacrificial-socket.js", script)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_browser_clients_receive_roomcasts_from_the_other_side(fleet: Fleet, client: Any) -> None:
    """Upstream's sacrificial-socket.js in headless Chromium, connected to the Go peer, gets a
    roomcast made by a socket of the cluster; our sacsock.js, on a page the cluster serves,
    gets one made on the Go side."""
    node, chromium = shutil.which("node"), os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    if node is None or not Path(chromium).is_file() or not (REPO / PLAYWRIGHT).is_dir():
        missing(f"the browser test needs node, {chromium} and {PLAYWRIGHT} (scripts/setup.sh)")
    upstream_js = peers_dir() / "src/sacrificial-socket/client/sacrificial-socket.js"
    go_room, py_room = room_name("browser-go"), room_name("browser-py")
    async with upstream_page_server(upstream_js) as base:
        go_ws = f"ws://127.0.0.1:{fleet.go_a.port}/socket"
        pages = [
            {"name": "upstream", "url": f"{base}/interop.html?" + urlencode(
                {"client": "/sacrificial-socket.js", "room": go_room, "ws": go_ws})},
            {"name": "ours", "url": f"{fleet.py.http}/interop.html?" + urlencode(
                {"client": "/sacsock.js", "room": py_room})},
        ]
        await _browser_round(node, pages, fleet, client, go_room, py_room)


PLAYWRIGHT = "clientjs/node_modules/playwright-core"


async def _browser_round(node: str, pages: list[dict[str, str]], fleet: Fleet, client: Any,
                         go_room: str, py_room: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        node, str(APP_DIR / "browser.mjs"), json.dumps({"timeoutMs": 150_000, "pages": pages}),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines: list[dict[str, Any]] = []
    assert proc.stdout is not None and proc.stdin is not None

    async def read_until(done: Any, bound: float) -> bool:
        """Read report lines until ``done()``; False when ``bound`` seconds passed first."""
        deadline = asyncio.get_running_loop().time() + bound
        while not done():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                raw = await asyncio.wait_for(proc.stdout.readline(), left)
            except asyncio.TimeoutError:
                return False
            if not raw:
                raise AssertionError(f"the browser script ended ({await proc.wait()}): {lines}")
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"output": raw.decode(errors="replace")})
            assert "error" not in lines[-1], lines
        return True

    def got(name: str) -> list[str]:
        return [x["data"] for x in lines if x.get("got") == name]

    try:
        assert await read_until(lambda: {x.get("ready") for x in lines} >= {"upstream", "ours"}, 150), lines
        py_sender, go_sender = await client(fleet.py.url), await client(fleet.go_a.url)
        # a join is asynchronous to a cast made on the far side: repeat until the first arrives
        for k in range(60):
            if not got("upstream"):
                await py_sender.roomcast(go_room, f"from the cluster {k}")
            if not got("ours"):
                await go_sender.roomcast(py_room, f"from go {k}")
            if await read_until(lambda: bool(got("upstream") and got("ours")), 1.0):
                break
        assert got("upstream") and got("upstream")[0].startswith("from the cluster "), lines
        assert got("ours") and got("ours")[0].startswith("from go "), lines
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


# ---- Redis restarted mid-run ------------------------------------------------------------------------------

RESUME_BOUND = 5.0  # the requirement: both ways within 5 s of Redis being back
DOWN_CASTS = 10  # ~2 s down: the reconnect backoff has grown to 1.6-3.2 s, under the 5 s bound


async def _first_arrival(sender: PeerClient, receiver: PeerClient, room: str, tag: str,
                         bound: float) -> tuple[float, set[str]]:
    """Roomcast ``tag:k`` every 0.1 s until one reaches ``receiver``; (seconds taken, sent)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    sent: set[str] = set()
    k = 0
    while not any(f.text.startswith(tag) for f in receiver.of("roomcast")):
        if loop.time() - began > bound:
            raise AssertionError(f"{tag}: nothing arrived within {bound} s of Redis being back")
        k += 1
        sent.add(f"{tag}:{k}")
        await sender.roomcast(room, f"{tag}:{k}")
        await asyncio.sleep(0.1)
    return loop.time() - began, sent


async def test_federation_resumes_both_ways_after_redis_restarts(fleet: Fleet, client: Any) -> None:
    """The module's last test: it restarts the fleet's Redis under it (mid-run)."""
    redis, go, py = fleet.redis, fleet.go_a, fleet.py
    room = room_name("restart")
    py_c, go_c = await client(py.url), await client(go.url)
    await py_c.join(room)
    await go_c.join(room)
    await settle(py_c, room, [go_c])
    await settle(go_c, room, [py_c])

    redis.stop()  # casts made while it is down are dropped (best effort, as upstream)
    down_sent: set[str] = set()
    for k in range(DOWN_CASTS):  # both sides keep casting; their reconnect backoff grows meanwhile
        for side, c in (("py", py_c), ("go", go_c)):
            down_sent.add(f"{side}-down:{k}")
            await c.roomcast(room, f"{side}-down:{k}")
        await asyncio.sleep(0.2)
    redis.start()  # same port, empty
    py_took, py_sent = await _first_arrival(py_c, go_c, room, "py", RESUME_BOUND + 10)
    go_took, go_sent = await _first_arrival(go_c, py_c, room, "go", RESUME_BOUND + 10)
    print(f"resumed after Redis came back: cluster -> Go {py_took:.2f} s, "
          f"Go -> cluster {go_took:.2f} s later")
    # both ways measured from Redis being back; the second includes the first's wait
    assert py_took <= RESUME_BOUND, f"cluster -> Go resumed after {py_took:.1f} s"
    assert go_took <= RESUME_BOUND + py_took, f"Go -> cluster resumed after {go_took:.1f} s"

    # after resuming: no duplicates of anything, and a fresh round arrives exactly once
    for text in ("after-1", "after-2", "after-3"):
        await py_c.roomcast(room, "py-" + text)
        await go_c.roomcast(room, "go-" + text)
    for c in (py_c, go_c):
        await c.until(lambda c=c: sum(f.text.endswith("after-3") for f in c.of("roomcast")) >= 2,
                      "the casts made after resuming")
    await asyncio.sleep(1.0)
    for c in (py_c, go_c):
        texts = [f.text for f in c.of("roomcast")]
        assert len(texts) == len(set(texts)), f"duplicates at {c.url}: {texts}"
        assert {t for t in texts if "after" in t} == {
            f"{side}-after-{i}" for side in ("py", "go") for i in (1, 2, 3)}
        assert set(texts) <= py_sent | go_sent | down_sent | {
            f"{side}-after-{i}" for side in ("py", "go") for i in (1, 2, 3)}
