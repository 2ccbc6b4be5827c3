"""Faults under load, real processes: a publisher floods a room whose members are spread
over two gateways while a gateway, a shard, the bridge actor or redis-server is killed.

CI runs small sizes; `bash scripts/faults.sh` runs the issue's sizes (200+ sockets) and
prints the recovery times. Waits are generous bounds, never measurements.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field

import aiohttp
import pytest
import ray
from flood_app import build
from sacclient import parse
from waits import gateway_of, holders_known, until

pytestmark = pytest.mark.integration

SOCKETS = int(os.environ.get("SACSOCK_FAULT_SOCKETS", "40"))
CASTS = 10**9  # floods run until stopped
ROOM = "flood-room"
REPORT: dict[str, float] = {}
# what this test process can read (all members share one asyncio loop): the flood's rate
# is set so the members take about this many deliveries per second in all
DELIVERIES = float(os.environ.get("SACSOCK_FAULT_DELIVERIES", "30000"))
# how long clients of a killed gateway may take to get casts again, and federation to
# resume, from an observable event (their close; the kill; redis up). In the suite a
# generous bound (a restarted Ray worker imports everything again: on a starved machine
# the bridge actor's restart took over 5 s); scripts/faults.sh checks the 5 s on
# the full-size run and writes the times measured to bench/results/faults.txt
RECOVERY_S = float(os.environ.get("SACSOCK_FAULT_RECOVERY_S", "30.0"))


def flood_msg(tag: str) -> str:
    casts_per_s = DELIVERIES / SOCKETS
    per_tick = max(1, int(casts_per_s / 200))  # ticks of at least 5 ms
    return json.dumps({"room": ROOM, "tag": tag, "n": CASTS, "per_tick": per_tick,
                       "interval": per_tick / casts_per_s})


@pytest.fixture(scope="module", autouse=True)
def report():
    """Write what the faults measured to $SACSOCK_FAULT_REPORT (scripts/faults.sh)."""
    yield
    path = os.environ.get("SACSOCK_FAULT_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"sockets": SOCKETS, **REPORT}, f, indent=2)
            f.write("\n")


@dataclass
class Member:
    """One socket of the room: what it received of each flood, and when it was closed."""

    url: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    session: aiohttp.ClientSession | None = None
    sid: str = ""
    pid: int = 0
    got: dict[str, list[int]] = field(default_factory=dict)
    closed_at: float | None = None
    task: asyncio.Task | None = None
    events: asyncio.Queue = field(default_factory=asyncio.Queue)

    async def connect(self) -> None:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url, protocols=("sac-sock",))
        hello = await self.next("id")
        self.sid, self.pid = hello["id"], hello["pid"]
        self.closed_at = None
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def next(self, event: str, timeout: float = 30.0):
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise ConnectionError(f"closed: {msg.type.name}")
            data = msg.data.encode() if msg.type is aiohttp.WSMsgType.TEXT else msg.data
            m = parse(data, msg.type is aiohttp.WSMsgType.BINARY)
            if m.event == event:
                return m.json

    async def _read(self) -> None:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                m = parse(msg.data.encode(), False)
                if m.event == "f":
                    tag, _, i = m.text.partition(":")
                    self.got.setdefault(tag, []).append(int(i))
                else:
                    self.events.put_nowait((m.event, m.payload))
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                self.closed_at = time.monotonic()
                return

    async def send(self, event: str, data: str) -> None:
        await self.ws.send_str(f"{event}\x02{data}")

    async def reply(self, event: str, timeout: float = 30.0) -> bytes:
        while True:
            name, payload = await asyncio.wait_for(self.events.get(), timeout)
            if name == event:
                return payload

    async def join(self, room: str) -> None:
        await self.send("join", room)
        assert await self.reply("joined") == room.encode()

    async def reconnect(self, backoff: float = 0.1, cap: float = 1.0, bound: float = 60.0) -> None:
        """Reconnect as the JS client does: growing backoff up to ``cap``."""
        await self.close()
        deadline = time.monotonic() + bound
        while True:
            try:
                await self.connect()
                return
            except (aiohttp.ClientError, OSError, ConnectionError, asyncio.TimeoutError):
                await self.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(cap, backoff * 2)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        self.ws = self.session = self.task = None


async def room_of(served, n: int) -> tuple[Member, list[Member]]:
    """``n`` members of ROOM over both gateways, plus a publisher (not a member)."""
    members = []
    for _ in range(n):
        m = Member(served.url)
        await m.connect()
        await m.join(ROOM)
        members.append(m)
    pids = {m.pid for m in members}
    assert len(pids) == 2, "SO_REUSEPORT should spread the members over both gateways"
    gids = [gateway_of(served, p) for p in pids]
    await holders_known(served.server, ROOM, {gids[0]: {gids[1]}, gids[1]: {gids[0]}})
    publisher = Member(served.url)
    await publisher.connect()
    return publisher, members


async def member_on(served, pid: int) -> Member:
    """A socket on the gateway in process ``pid`` (SO_REUSEPORT picks: retry, bounded)."""
    for _ in range(100):
        m = Member(served.url)
        await m.connect()
        if m.pid == pid:
            return m
        await m.close()
    raise AssertionError(f"no connection landed on gateway pid {pid}")


def contiguous(values: list[int]) -> bool:
    return values == list(range(len(values)))


async def flood_until(publisher: Member, tag: str, fault, members: list[Member]) -> int:
    """Start a flood, run ``fault()`` once a fifth of the first members' casts are in, let it
    run a little longer, stop it, and return how many casts were made."""
    await publisher.send("flood", flood_msg(tag))
    await until(lambda: len(members[0].got.get(tag, [])) >= 100, what="flood under way")
    await fault()
    return tag


async def stop_flood(publisher: Member, tag: str, helper: Member) -> int:
    await helper.send("stop", tag)
    done = json.loads(await publisher.reply("flood_done", 60))
    assert done["tag"] == tag
    return done["sent"]


async def test_gateway_kill_under_flood(serve):
    served = serve(build(), gateways=2)
    publisher, members = await room_of(served, SOCKETS)
    survivor_pid = publisher.pid
    victim_gid = next(i["gateway_id"] for i in served.infos if i["pid"] != survivor_pid)
    survivors = [m for m in members if m.pid == survivor_pid]
    victims = [m for m in members if m.pid != survivor_pid]
    helper = await member_on(served, survivor_pid)  # tells the publisher to stop

    killed_at = 0.0

    async def kill() -> None:
        nonlocal killed_at
        killed_at = time.monotonic()
        ray.kill(served.server._runtime.gateways[victim_gid], no_restart=False)

    await flood_until(publisher, "g", kill, survivors)
    # the killed gateway's clients are closed, reconnect (to whichever gateway listens),
    # rejoin, and receive casts of the flood again
    await until(lambda: all(v.closed_at for v in victims), what="victims closed")
    recovered: list[float] = []

    async def come_back(v: Member) -> None:
        before, closed = len(v.got.get("g", [])), v.closed_at or killed_at
        await v.reconnect()
        await v.join(ROOM)
        await until(lambda: len(v.got.get("g", [])) > before, what="casts after reconnecting")
        recovered.append(time.monotonic() - closed)

    await asyncio.gather(*(come_back(v) for v in victims))
    # the supervisor restarts the gateway and it listens again
    await until(lambda: "sockets" in served.server.stats()[victim_gid], what="gateway restarted")
    sent = await stop_flood(publisher, "g", helper)
    await until(lambda: all(len(m.got.get("g", [])) >= sent for m in survivors), what="survivors got all")
    for m in survivors:  # nothing lost, duplicated or out of order on the other gateway
        assert contiguous(m.got["g"]), f"gap or disorder at {m.sid}"
    REPORT["gateway kill: worst reconnect-to-cast s"] = max(recovered)
    assert max(recovered) < RECOVERY_S, (
        f"a killed gateway's client took {max(recovered):.2f} s from its close to a cast")
    REPORT["gateway kill: casts intact per survivor"] = sent
    print(f"\ngateway kill: {len(survivors)} survivors x {sent} casts intact; "
          f"{len(victims)} victims back in {max(recovered):.2f} s (worst)")
    for m in [publisher, helper, *members]:
        await m.close()


async def test_shard_kill_under_flood(serve):
    served = serve(build(room_shards=1), gateways=2)
    publisher, members = await room_of(served, SOCKETS)
    helper = await member_on(served, publisher.pid)
    shard = served.server._runtime.shards[0]
    epoch = ray.get(shard.ping.remote())

    async def kill() -> None:
        ray.kill(shard, no_restart=False)

    await flood_until(publisher, "s", kill, members)

    def rebuilt() -> bool:
        try:
            return ray.get(shard.ping.remote(), timeout=5) != epoch and ray.get(shard.stats.remote())["rooms"]
        except Exception:  # noqa: BLE001 - restarting
            return False

    await until(rebuilt, what="shard restarted and rebuilt from the gateways (nobody rejoined)")
    # a join made after the restart works across gateways
    other_pid = next(i["pid"] for i in served.infos if i["pid"] != publisher.pid)
    late = await member_on(served, other_pid)  # the casts must cross to reach it
    await late.join(ROOM)
    before = len(late.got.get("s", []))
    await until(lambda: len(late.got.get("s", [])) > before + 10, what="late joiner receives the flood")
    sent = await stop_flood(publisher, "s", helper)
    try:
        await until(lambda: all(len(m.got.get("s", [])) >= sent for m in members), what="all members got all")
    except AssertionError:
        for m in members:
            got = m.got.get("s", [])
            missing = sorted(set(range(sent)) - set(got))
            print(m.pid, len(got), sent, missing[:5], missing[-5:] if missing else "")
        raise
    for m in members:  # casts never pass through a shard: none lost while it restarted
        assert contiguous(m.got["s"]), f"gap or disorder at {m.sid}"
    REPORT["shard kill: casts intact per member"] = sent
    print(f"\nshard kill: {len(members)} members x {sent} casts intact")
    for m in [publisher, helper, late, *members]:
        await m.close()


# ---- federation: the bridge actor and redis-server die under flood -------------------------


class ForeignPublisher:
    """A raw redis client playing a Go instance: roomcasts "x:<i>" into ROOM, steadily."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis_asyncio

        self.r = redis_asyncio.from_url(url)
        self.sent = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        from sacsock_actors.bridges import Cast
        from sacsock_actors.bridges.redis_codec import channels, encode_cast

        channel = channels().roomcasts

        async def run() -> None:
            while True:
                raw = encode_cast(Cast(ROOM, "f", "S", f"x:{self.sent}".encode()), "foreign")
                try:
                    await self.r.publish(channel, raw)
                    self.sent += 1
                except Exception:  # noqa: BLE001 - redis is down on purpose; go on trying
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.005)

        self.task = asyncio.get_running_loop().create_task(run())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.r.aclose()


async def federation_resumes(members: list[Member], what: str) -> float:
    """Seconds until every member received a new foreign cast (bounded)."""
    began = time.monotonic()
    marks = [len(m.got.get("x", [])) for m in members]
    await until(lambda: all(len(m.got.get("x", [])) > k for m, k in zip(members, marks, strict=True)),
                what=what)
    return time.monotonic() - began


def bridged(serve, url: str):
    from sacsock_actors.bridges import RedisBridge

    server = build()
    server.set_multihome_backend(RedisBridge(url, server_name="ours", reconnect_max=1.0))
    return serve(server, gateways=2)


@pytest.mark.redis
async def test_bridge_actor_kill_under_flood(serve, redis_server):
    served = bridged(serve, redis_server.url)
    publisher, members = await room_of(served, max(4, SOCKETS // 4))
    foreign = ForeignPublisher(redis_server.url)
    foreign.start()
    await federation_resumes(members, "foreign casts arrive")
    ray.kill(served.server._runtime.bridges[0], no_restart=False)
    took = await federation_resumes(members, "federation resumes after the bridge actor restarted")
    await until(lambda: served.server.stats()["bridge-0"].get("connected") == 1, what="bridge reconnected")
    REPORT["bridge kill: federation back s"] = took
    assert took < RECOVERY_S, f"federation took {took:.2f} s to resume after the bridge actor kill"
    print(f"\nbridge actor kill: federation back for {len(members)} members in {took:.2f} s")
    await foreign.close()
    for m in [publisher, *members]:
        await m.close()


@pytest.mark.redis
async def test_redis_kill_under_flood(serve, redis_server):
    served = bridged(serve, redis_server.url)
    publisher, members = await room_of(served, max(4, SOCKETS // 4))
    helper = await member_on(served, publisher.pid)
    foreign = ForeignPublisher(redis_server.url)
    foreign.start()
    await federation_resumes(members, "foreign casts arrive")
    # a local flood too: it goes on while redis is down, and the bridge's publishes fail
    await publisher.send("flood", flood_msg("r"))
    await until(lambda: len(members[0].got.get("r", [])) >= 100, what="local flood under way")
    redis_server.stop()
    await until(lambda: served.server.stats()["bridge-0"].get("connected") == 0, what="bridge saw redis go")
    # the gateways stay responsive the whole time: round trips from every member
    for m in members:
        await m.send("echo", "alive")
        assert await m.reply("echo", 30) == b"alive"
    redis_server.start()
    took = await federation_resumes(members, "federation resumes after redis restarted")
    sent = await stop_flood(publisher, "r", helper)
    await until(lambda: all(len(m.got.get("r", [])) >= sent for m in members), what="local flood complete")
    for m in members:  # the local flood never depended on redis
        assert contiguous(m.got["r"]), f"gap or disorder at {m.sid}"
    REPORT["redis kill: federation back s"] = took
    assert took < RECOVERY_S, f"federation took {took:.2f} s to resume after redis restarted"
    print(f"\nredis kill: local flood of {sent} intact for {len(members)} members; "
          f"federation back in {took:.2f} s")
    await foreign.close()
    for m in [publisher, helper, *members]:
        await m.close()
