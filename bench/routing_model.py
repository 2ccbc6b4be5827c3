#!/usr/bin/env python
"""Messages and bytes between actors per cast, for 2-1,000 gateways and rooms of 1-100,000
members: counted from the routing code itself (a model, not a timing).

    python bench/routing_model.py                 # the full grid (~1-3 min on 2 busy cores)
    python bench/routing_model.py --gateways 2 10 --sizes 1 100

The real ``gateways.hub.Hub`` (one per gateway) and ``rooms.actor.RoomShardActor`` (the
shards, with their real Outboxes) run in one event loop; their links are counting fakes
that hand each op straight to its destination and count it (one message = one op; a
quiet system sends each op in its own Ray call, a busy one batches many per call) and
its pickled size (the op's payload: Ray adds its own call overhead on top).

Members of a room are spread round-robin over min(size, gateways - 2) gateways (at
least one), so one gateway is left to cast from outside and one to join. Per cast,
once the set-up has settled (joins confirmed, watches answered):

- member roomcast: a member's gateway casts to its room;
- outside cast, first / steady: a gateway holding none of the room casts to it (a
  socket that is not a member, a driver cast or a bridge arrival): the first one goes to
  every other gateway and asks the shard (Watch, Watched); later ones go to the holders;
- before: what the outside cast cost on every cast before watching (every other gateway);
- join: one more gateway starts holding the room while one outside gateway watches it
  (Join; the whole holder list to the newcomer, the change, HolderAdded, to every other
  holder and the watcher, which the join waits for);
- socketcast to a socket on another gateway (now one message; before: every other gateway).

Prints markdown tables and writes bench/results/routing_model.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sacsock_actors.gateways.hub import Hub  # noqa: E402
from sacsock_actors.gateways.session import Session  # noqa: E402
from sacsock_actors.protocol import encode, socket_room  # noqa: E402
from sacsock_actors.rooms.actor import RoomShardActor  # noqa: E402

PAYLOAD = "x" * 64  # a chat line


class Net:
    """Every hub and shard of one model cluster, and the counters of what they send."""

    def __init__(self, gateways: int, shards: int) -> None:
        self.ids = [f"gw-{i}" for i in range(gateways)]
        self.hubs = {gid: Hub(ModelLinks(self, gid, i, shards)) for i, gid in enumerate(self.ids)}
        self.shards = [RoomShardActor(i, ModelRt()) for i in range(shards)]
        self.queue: deque[tuple[str, Any, Any, Any]] = deque()
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.counting_bytes = False

    def count(self, kind: str, op: Any) -> None:
        self.messages[kind] += 1
        if self.counting_bytes:
            self.bytes[kind] += len(pickle.dumps(op, protocol=5))

    async def start(self) -> None:
        for shard in self.shards:
            for gid in self.ids:
                await shard.hello(gid, GatewayHandle(self, gid), [], tuple(self.ids), True)

    async def settle(self) -> None:
        """Deliver queued ops until nothing moves (shard answers included)."""
        while True:
            while self.queue:
                kind, dest, src, op = self.queue.popleft()
                if kind == "shard":
                    await self.shards[dest].apply(src, [op])
                    self.hubs[src].joins_confirmed([op])
                else:
                    self.hubs[dest].receive([op])
            for shard in self.shards:
                await shard.flush()
            for hub in self.hubs.values():
                for s in hub.sessions_to_write():
                    s.pending.clear()
            if not self.queue:
                return

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.messages), Counter(self.bytes)

    def since(self, snap: tuple[Counter[str], Counter[str]]) -> dict[str, int]:
        m = self.messages - snap[0]
        b = self.bytes - snap[1]
        return {"messages": sum(m.values()), "bytes": sum(b.values()), **{f"to_{k}": v for k, v in m.items()}}


class ModelLinks:
    """Hub.Links that queue each op on the Net, counted."""

    def __init__(self, net: Net, gid: str, index: int, shards: int) -> None:
        self.net = net
        self.gateway_id = gid
        self.socket_tag = index
        self.shard_count = shards
        self._others = [g for g in net.ids if g != gid]

    def gateway_for_tag(self, tag: int) -> str | None:
        return self.net.ids[tag] if tag < len(self.net.ids) else None

    def to_shard(self, index: int, op: Any) -> None:
        self.net.count("shard", op)
        self.net.queue.append(("shard", index, self.gateway_id, op))

    def to_gateway(self, gid: str, op: Any) -> None:
        self.net.count("gateway", op)
        self.net.queue.append(("gateway", gid, self.gateway_id, op))

    def other_gateways(self) -> list[str]:
        return self._others

    def to_bridges(self, op: Any) -> None:
        pass


class GatewayHandle:
    """What a shard's Outbox calls: ``receive.remote(batch)``, counted, into the hub."""

    def __init__(self, net: Net, gid: str) -> None:
        self.net = net
        self.gid = gid
        self.receive = self

    def remote(self, batch: list[Any]) -> Any:
        async def call() -> None:
            for op in batch:
                self.net.count("gateway_from_shard", op)
            self.net.hubs[self.gid].receive(batch)

        return call()


class ModelRt:
    """The part of ``rayio`` a shard uses."""

    @staticmethod
    def sender(handle: Any, method: str, *lead: Any) -> Any:
        remote = getattr(handle, method).remote

        async def send(batch: list[Any]) -> Any:
            return await remote(*lead, batch)

        return send


async def one_config(gateways: int, size: int, shards: int) -> dict[str, Any]:
    net = Net(gateways, shards)
    await net.start()
    room = "lobby"
    holders = min(size, max(1, gateways - 2))
    hubs = list(net.hubs.values())
    sessions: list[Session] = []
    for i in range(size):
        hub = hubs[i % holders]
        s = Session(hub.new_socket_id(), None, None)
        hub.attach(s)
        hub.join(s, room)
        sessions.append(s)
        if len(net.queue) > 10_000:
            await net.settle()
    await net.settle()
    frame = encode("chat", PAYLOAD)
    net.counting_bytes = True
    row: dict[str, Any] = {"gateways": gateways, "size": size, "holders": holders}

    snap = net.snapshot()
    hubs[0].roomcast(room, frame)
    await net.settle()
    row["member_roomcast"] = net.since(snap)

    outsider = hubs[-1] if holders < gateways else None
    if outsider is not None:
        snap = net.snapshot()
        outsider.roomcast(room, frame)
        await net.settle()
        row["outside_first"] = net.since(snap)
        snap = net.snapshot()
        outsider.roomcast(room, frame)
        await net.settle()
        row["outside_steady"] = net.since(snap)
    row["outside_before"] = gateways - 1

    newcomer = hubs[holders] if holders + 1 < gateways else None
    if newcomer is not None:
        s = Session(newcomer.new_socket_id(), None, None)
        newcomer.attach(s)
        snap = net.snapshot()
        newcomer.join(s, room)
        await net.settle()
        row["join"] = net.since(snap)

    target = sessions[-1] if holders > 1 else None
    if target is not None:
        snap = net.snapshot()
        hubs[0].roomcast(socket_room(target.id), encode("dm", PAYLOAD))
        await net.settle()
        row["socketcast"] = net.since(snap)
    row["socketcast_before"] = gateways - 1
    delivered = sum(h.stats["frames_out"] for h in hubs)
    row["frames_out"] = delivered
    return row


def fmt(cell: Any) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, dict):
        return f"{cell['messages']} ({cell['bytes']:,} B)"
    return str(cell)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| gateways | room size | holders | member roomcast | outside cast: first | outside: steady "
        "| outside: before | join of one more gateway | socketcast | socketcast: before |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['gateways']:,} | {r['size']:,} | {r['holders']:,} | {fmt(r['member_roomcast'])} "
            f"| {fmt(r.get('outside_first'))} | {fmt(r.get('outside_steady'))} | {r['outside_before']:,} "
            f"| {fmt(r.get('join'))} | {fmt(r.get('socketcast'))} | {r['socketcast_before']:,} |"
        )
    return "\n".join(lines)


async def run(gateways: list[int], sizes: list[int], shards: int) -> list[dict[str, Any]]:
    rows = []
    for g in gateways:
        for size in sizes:
            t0 = time.monotonic()
            row = await one_config(g, size, shards)
            row["model_seconds"] = round(time.monotonic() - t0, 2)
            rows.append(row)
            print(f"  {g} gateways, room of {size}: {row['model_seconds']} s", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, nargs="+", default=[2, 4, 10, 100, 1000])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000, 100_000])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--out", default=str(BENCH / "results" / "routing_model.json"))
    args = parser.parse_args()
    rows = asyncio.run(run(args.gateways, args.sizes, args.shards))
    print(table(rows))
    Path(args.out).write_text(json.dumps({"payload_bytes": len(PAYLOAD), "shards": args.shards, "rows": rows},
                                         indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
