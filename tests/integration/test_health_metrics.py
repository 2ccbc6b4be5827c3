"""/healthz on the public port and the driver's /metrics: values move with sockets and messages."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sacclient import SacClient, free_port

from sacsock_actors import SocketServer

pytestmark = pytest.mark.integration


def build() -> SocketServer:
    server = SocketServer()

    @server.on("echo")
    async def echo(sock, data):
        sock.emit("echo", data)

    @server.on("boom")
    async def boom(sock, data):
        raise ValueError("handler error on purpose")

    return server


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return samples(await r.text())


async def until(http: aiohttp.ClientSession, url: str, check, bound: float = 30.0) -> dict[str, float]:
    """Scrape until ``check(samples)`` holds (bounded poll: stats travel through Ray)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while True:
        got = await scrape(http, url)
        if check(got) or loop.time() > deadline:
            return got
        await asyncio.sleep(0.1)


async def test_health_and_metrics_move_with_traffic(serve):
    mport = free_port()
    served = serve(build(), gateways=2, metrics_port=mport)
    metrics = f"http://127.0.0.1:{mport}/metrics"
    gws = [i["gateway_id"] for i in served.infos]

    def total(got: dict[str, float], name: str) -> float:
        return sum(got.get(f'sacsock_{name}{{gateway="{g}"}}', 0) for g in gws)

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served.http}/healthz") as r:
            assert r.status == 200 and await r.text() == "ok\n"
        before = await scrape(http, metrics)
        assert total(before, "sockets") == 0
        assert all(before[f'sacsock_up{{gateway="{g}"}}'] == 1 for g in gws)
        async with http.get(f"{served.http.replace(str(served.port), str(mport))}/healthz") as r:
            assert r.status == 404  # the metrics port serves metrics only

        clients = [await SacClient.connect(served.url) for _ in range(4)]
        for c in clients:
            for _ in range(5):
                await c.call("echo", "hi")
        await clients[0].emit("boom", "x")
        got = await until(http, metrics, lambda g: total(g, "handler_errors_total") >= 1)
        assert total(got, "sockets") == 4
        assert total(got, "connected_total") == 4
        assert total(got, "messages_in_total") == 21
        assert total(got, "frames_out_total") >= 20
        assert total(got, "handler_errors_total") == 1
        for c in clients[:3]:
            await c.close()
        got = await until(http, metrics, lambda g: total(g, "sockets") == 1)
        assert total(got, "sockets") == 1
        assert total(got, "disconnected_total") == 3
        await clients[3].close()
