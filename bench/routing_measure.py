#!/usr/bin/env python
"""Real Ray ops per cast on 4 gateways over 2 simulated nodes, to check bench/routing_model.py.

    python bench/routing_measure.py [--casts 50] [--port 24000]

A ``ray.cluster_utils.Cluster`` of 2 nodes on this machine (as ``bench/servers/
sacsock_server.py --nodes`` makes), 2 gateways pinned to each (ports PORT..PORT+3), the
benchmark app (bench/servers/sacsock_app.py). Clients connect to chosen gateways: 5
members of ``lobby`` on gw-0 and 5 on gw-1 (2 holders, as the model's 4-gateway row of
room size 10), an outsider on gw-3 and a newcomer on gw-2. Each step waits for its
observable result (every member got the cast, the join reply), then ``server.flush()``,
and counts the ops the actors sent: every gateway's ``ray_ops_out`` and ``ray_calls_out``
(server.stats()) plus every shard's ``pushed``. Steady steps are averaged over
``--casts`` casts. Prints the table next to the model's numbers (run in-process) and
writes bench/results/routing_measure.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH / "servers"))

BOUND = 60.0  # seconds any one wait may take (a bound, not a measurement)


class Client:
    """A bare sac-sock client: emit, and read frames of one event."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws

    @classmethod
    async def connect(cls, port: int) -> Client:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(f"http://127.0.0.1:{port}/socket", protocols=("sac-sock",))
        return cls(session, ws)

    async def emit(self, event: str, data: str) -> None:
        await self.ws.send_str(f"{event}\x02{data}")

    async def expect(self, event: str, n: int = 1) -> None:
        got = 0
        while got < n:
            msg = await asyncio.wait_for(self.ws.receive(), BOUND)
            raw = msg.data.encode() if isinstance(msg.data, str) else msg.data
            if raw.split(b"\x01", 1)[0].decode() == event:
                got += 1

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


def totals(server: Any) -> dict[str, int]:
    from sacsock_actors import rayio

    stats = server.stats()
    gws = [v for k, v in stats.items() if k.startswith("gw-")]
    shards = rayio.call_each(list(server._runtime.shards), "stats")
    return {
        "ops": sum(g.get("ray_ops_out", 0) for g in gws) + sum(s.get("pushed", 0) for s in shards),
        "calls": sum(g.get("ray_calls_out", 0) for g in gws) + sum(s.get("pushed", 0) for s in shards),
        "watches_answered": sum(g.get("watches_answered", 0) for g in gws),
    }


async def measure(server: Any, port: int, casts: int) -> dict[str, dict[str, float]]:
    loop = asyncio.get_running_loop()

    async def snap() -> dict[str, int]:
        await loop.run_in_executor(None, server.flush)
        return await loop.run_in_executor(None, totals, server)

    members = [await Client.connect(port + (i % 2)) for i in range(10)]
    outsider = await Client.connect(port + 3)
    newcomer = await Client.connect(port + 2)
    for c in members:
        await c.emit("join", "lobby")
        await c.expect("joined")
    out: dict[str, dict[str, float]] = {}

    async def step(name: str, n: int, act: Any, wait: Any) -> None:
        before = await snap()
        for _ in range(n):
            await act()
        await wait(n)
        after = await snap()
        out[name] = {k: (after[k] - before[k]) / n for k in ("ops", "calls")}

    async def all_members(n: int) -> None:
        await asyncio.gather(*(c.expect("m", n) for c in members))

    await step("member roomcast", casts, lambda: members[0].emit("pub", "lobby|x"), all_members)
    await step("outside cast: first", 1, lambda: outsider.emit("pub", "lobby|x"), all_members)
    deadline = time.monotonic() + BOUND
    while (await snap())["watches_answered"] < 1:  # the shard's answer has been applied
        assert time.monotonic() < deadline, "the watch was never answered"
    await step("outside cast: steady", casts, lambda: outsider.emit("pub", "lobby|x"), all_members)

    async def joined(n: int) -> None:
        await newcomer.expect("joined")

    await step("join of one more gateway", 1, lambda: newcomer.emit("join", "lobby"), joined)
    ids = await loop.run_in_executor(None, server.socket_ids)
    from sacsock_actors.protocol import socket_id_tag

    target = next(i for i in ids if socket_id_tag(i) == 3)  # the outsider's id (alone on gw-3)
    await step(
        "socketcast", casts, lambda: members[0].emit("pub", f"__socket_id:{target}|x"),
        lambda n: outsider.expect("m", n),
    )
    for c in [*members, outsider, newcomer]:
        await c.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--casts", type=int, default=50)
    parser.add_argument("--port", type=int, default=24100)
    parser.add_argument("--out", default=str(BENCH / "results" / "routing_measure.json"))
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster
    from routing_model import one_config
    from sacsock_app import server

    from sacsock_actors import cluster

    model = asyncio.run(one_config(4, 10, 2))
    sim = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        sim.add_node(num_cpus=1)
        sim.wait_for_nodes()
        ray.init(address=sim.address, namespace=cluster.NAMESPACE, logging_level=logging.WARNING)
        nodes = cluster.alive_nodes()
        placements = [cluster.Placement(nodes[i // 2], args.port + i) for i in range(4)]
        server.start(port=args.port, placements=placements)
        try:
            measured = asyncio.run(measure(server, args.port, args.casts))
        finally:
            server.shutdown()
    finally:
        ray.shutdown()
        sim.shutdown()
    keys = {
        "member roomcast": "member_roomcast", "outside cast: first": "outside_first",
        "outside cast: steady": "outside_steady", "join of one more gateway": "join",
        "socketcast": "socketcast",
    }
    print("| per cast (4 gateways, 2 nodes, room of 10 on 2 gateways) | model: messages | Ray ops "
          "| Ray calls |")
    print("|---|---|---|---|")
    rows = []
    for name, m in measured.items():
        expected = model[keys[name]]["messages"]
        rows.append({"step": name, "model": expected, **m})
        print(f"| {name} | {expected} | {m['ops']:.2f} | {m['calls']:.2f} |")
    Path(args.out).write_text(json.dumps({"casts": args.casts, "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
