"""server.drain(): health 503 at once, new upgrades refused, every frame accepted before
the drain reaches its socket before the 1001 close, even mid-flood and for a slow reader."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest
from sacclient import SacClient
from waits import holders_known

from sacsock_actors import SocketServer
from sacsock_actors.errors import ConfigError

pytestmark = pytest.mark.integration

CASTS = 3000  # driver casts accepted before the drain, ~4 KiB each: beyond the kernel buffers
PAD = "x" * 4000
CLOSE_WAIT = 5  # s a plain close waits for the client's close frame before aborting (endpoint.py)


def build(**options) -> SocketServer:
    server = SocketServer(**options)

    @server.on("join")
    async def join(sock, data):
        sock.join(data.decode())
        sock.emit("joined", data)

    @server.on("ping")  # the clients' own flood: one echo per message, in order
    async def ping(sock, data):
        sock.emit("echo", data)

    @server.on("shout")  # a socket's roomcasts, crossing to the other gateway
    async def shout(sock, data):
        sock.roomcast("flood", "shout", data)

    return server


Got = tuple[dict[str, list[int]], "int | None"]


async def read_until_close(client: SacClient, start: asyncio.Event) -> Got:
    """Every message until the server's close; returns the sequence numbers per event."""
    await start.wait()
    got: dict[str, list[int]] = {"n": [], "echo": []}
    while True:
        msg = await asyncio.wait_for(client.ws.receive(), 60)
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raw = msg.data.encode() if isinstance(msg.data, str) else msg.data
            event, _, rest = raw.partition(b"\x01")
            payload = rest.partition(b"\x02")[2]
            seq, sender, _ = payload.split(b":", 2)
            key = event.decode() if event != b"shout" else f"shout-{sender.decode()}"
            got.setdefault(key, []).append(int(seq))
        elif msg.type is aiohttp.WSMsgType.CLOSE:
            return got, msg.data
        else:
            return got, client.ws.close_code


async def every_holder_known(served, room: str, sockets: int) -> None:
    """Wait until the joins reached the shards and each gateway with members of ``room`` was
    told which others hold it: casts from either gateway then reach every member."""
    import ray

    gateways = served.server._runtime.gateways
    ids = await asyncio.to_thread(ray.get, [gateways[g].socket_ids.remote() for g in gateways])
    assert sum(map(len, ids)) == sockets
    members = {g for g, here in zip(gateways, ids, strict=True) if here}
    await holders_known(served.server, room, {g: members - {g} for g in members})


def contiguous(seqs: list[int]) -> bool:
    return seqs == list(range(len(seqs)))


async def test_drain_mid_flood_loses_no_accepted_frame(serve):
    served = serve(build(max_outgoing_buffer=64 << 20), gateways=2)
    clients = [await SacClient.connect(served.url) for _ in range(6)]
    for c in clients:
        await c.call("join", "flood", reply="joined")
    await every_holder_known(served, "flood", sockets=len(clients))
    fast, slow = asyncio.Event(), asyncio.Event()
    readers = [
        asyncio.create_task(read_until_close(c, slow if i < 2 else fast)) for i, c in enumerate(clients)
    ]
    fast.set()

    async def flood(c: SacClient, event: str, sender: int) -> int:  # keeps sending during the drain
        sent = 0
        try:
            for i in range(400):
                await c.emit(event, f"{i}:{sender}:{PAD[:50]}")
                sent += 1
                if i % 20 == 0:
                    await asyncio.sleep(0)
        except (ConnectionError, RuntimeError):
            pass
        return sent

    floods = [
        asyncio.create_task(flood(c, "ping" if i % 2 else "shout", i)) for i, c in enumerate(clients)
    ]
    for i in range(CASTS):  # accepted: each call returned before the drain begins
        served.server.roomcast("flood", "n", f"{i}:d:{PAD}")
    drained = threading.Event()

    def drain() -> None:
        served.server.drain(timeout=60)
        drained.set()

    drainer = asyncio.create_task(asyncio.to_thread(drain))
    async with aiohttp.ClientSession() as http:
        for _ in range(600):  # the slow readers hold the drain open: health says 503
            async with http.get(f"{served.http}/healthz") as r:
                if r.status == 503:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("/healthz never answered 503 during the drain")
        # slow readers: reading only after a plain close would have given up on them
        await asyncio.sleep(CLOSE_WAIT + 1)
        assert not drained.is_set(), "the drain did not wait for the slow readers"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(served.url, protocols=("sac-sock",))
        assert refused.value.status == 503
    slow.set()
    results = await asyncio.gather(*readers)
    await drainer
    await asyncio.gather(*floods)
    for got, code in results:
        assert code == 1001
        assert got["n"] == list(range(CASTS)), "a driver cast accepted before the drain was lost"
        for key, seqs in got.items():  # each sender's shouts: in order, none missing between
            if key.startswith("shout-"):
                assert contiguous(seqs), f"{key}: {seqs[:5]}..."
    for i, (got, _) in enumerate(results):
        if i % 2:
            assert contiguous(got["echo"]), f"client {i} lost an echo: {got['echo'][:5]}..."
    for c in clients:
        await c.close()
    assert not served.server.serving


async def test_drain_one_node_needs_another_node(serve):
    served = serve(build(), gateways=2)
    node = served.infos[0]["node_id"]
    with pytest.raises(ConfigError, match="without node_id"):
        served.server.drain(5, node_id=node)
    with pytest.raises(ConfigError, match="no gateway runs on node"):
        served.server.drain(5, node_id="f" * 56)
    with pytest.raises(ConfigError, match=">= 0"):
        served.server.drain(-1)
    assert served.server.serving
    async with aiohttp.ClientSession() as http, http.get(f"{served.http}/healthz") as r:
        assert r.status == 200 and await r.text() == "ok\n"
