"""The Redis bridge against a real redis-server (PROTOCOL.md sections 4-5).

A raw redis client plays a foreign (Go) instance: it publishes the shared vectors and reads
what our cluster publishes. Every wait is a generous bound, never a measurement.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bridge_app import build
from sacclient import SacClient

from sacsock_actors.bridges import Cast, RedisBridge
from sacsock_actors.bridges.redis_codec import channels, encode_cast

redis_asyncio = pytest.importorskip("redis.asyncio")

pytestmark = [pytest.mark.integration, pytest.mark.redis]

WAIT = 30.0  # bound on any single expected arrival
QUIET = 1.0  # how long "nothing more arrives" is watched
VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "sacsock-vectors.json").read_text()
)["redis"]
VALID = {v["name"]: v for v in VECTORS if v["decoded"] is not None}
INVALID = [v for v in VECTORS if v["decoded"] is None]
CH = channels()
UPSTREAM_KEYS_ROOM = list(json.loads(VALID["roomcast string"]["message"]))  # d e r p s
UPSTREAM_KEYS_ALL = list(json.loads(VALID["broadcast json"]["message"]))  # d e p s


# ---- the app: casts of every type, from a socket -------------------------------------------




def serve_with_bridge(serve: Callable, url: str, name: str, **kwargs: Any) -> tuple[Any, RedisBridge]:
    bridge = RedisBridge(url, server_name=name, reconnect_max=1.0)
    server = build()
    server.set_multihome_backend(bridge)
    return serve(server, **kwargs), bridge


async def client(served: Any) -> tuple[SacClient, str]:
    c = await SacClient.connect(served.url)
    return c, (await c.recv_event("id")).text


async def join(c: SacClient, room: str) -> None:
    assert (await c.call("join", room, reply="joined")).text == room


async def cast(c: SacClient, how: str, to: str | None, event: str, kind: str, data: Any) -> None:
    await c.emit("cast", json.dumps({"how": how, "to": to, "event": event, "kind": kind, "data": data}))


class Foreign:
    """A raw redis client playing another instance of the group."""

    def __init__(self, url: str) -> None:
        self.r = redis_asyncio.from_url(url)
        self.pubsub = self.r.pubsub()

    async def listen(self) -> Foreign:
        await self.pubsub.subscribe(*CH)
        for _ in CH:
            assert (await self.pubsub.get_message(timeout=WAIT))["type"] == "subscribe"
        return self

    async def next(self, timeout: float = WAIT) -> tuple[str, bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = await self.pubsub.get_message(timeout=1.0)
            if msg is not None and msg["type"] == "message":
                return msg["channel"].decode(), msg["data"]
        raise AssertionError("nothing published in time")

    async def nothing(self, seconds: float = QUIET) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = await self.pubsub.get_message(timeout=0.2)
            assert msg is None or msg["type"] != "message", f"unexpected publish {msg!r}"

    async def publish(self, channel: str, message: str | bytes) -> None:
        await self.r.publish(channel, message)

    async def close(self) -> None:
        await self.pubsub.aclose()
        await self.r.aclose()


async def eventually(check: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.1)


def bridge_stats(served: Any) -> dict[str, int]:
    return served.server.stats()["bridge-0"]


def upstream_decode(channel: str, raw: bytes) -> dict[str, Any]:
    """PROTOCOL.md section 5 read by hand (independent of our codec)."""
    obj = json.loads(raw)
    keys = list(obj)
    assert keys == (UPSTREAM_KEYS_ROOM if "r" in obj else UPSTREAM_KEYS_ALL), keys
    assert channel == (CH.roomcasts if "r" in obj else CH.broadcasts)
    payload = base64.b64decode(obj["p"], validate=True)
    assert base64.b64encode(payload).decode() == obj["p"]  # std alphabet, padded
    return {**obj, "p": payload}


# ---- tests -------------------------------------------------------------------------------------


async def test_foreign_casts_reach_our_sockets(serve, redis_server):
    served, _ = serve_with_bridge(serve, redis_server.url, "ours")
    a, _ = await client(served)
    b, b_id = await client(served)
    await join(a, "lobby")

    foreign = Foreign(redis_server.url)
    v = VALID["roomcast string"]
    await foreign.publish(v["channel"], v["message"])
    m = await a.recv()
    assert (m.event, m.type, m.payload, m.binary) == ("message", "S", b"hi", False)

    v = VALID["broadcast json"]
    await foreign.publish(v["channel"], v["message"])
    for c in (a, b):
        m = await c.recv()
        assert (m.event, m.type, m.json, m.binary) == ("broadcastjson", "J", {"message": "yo"}, False)

    v = VALID["broadcast binary"]
    await foreign.publish(v["channel"], v["message"])
    for c in (a, b):
        m = await c.recv()
        assert (m.event, m.type, m.payload, m.binary) == ("broadcastbin", "B", b"\x00\x01\x02\xff", True)

    v = VALID["socketcast is a roomcast"]
    await foreign.publish(v["channel"], v["message"].replace("A" * 32, b_id))
    m = await b.recv()
    assert (m.event, m.type, m.payload) == ("dm", "S", b"psst")
    assert await a.nothing(QUIET) and await b.nothing(0.1)

    s = bridge_stats(served)
    assert (s["delivered"], s["invalid"], s["own_echoes"], s["connected"]) == (4, 0, 0, 1)
    for c in (a, b):
        await c.close()
    await foreign.close()


async def test_what_we_publish_is_upstream_format(serve, redis_server):
    foreign = await Foreign(redis_server.url).listen()
    served, bridge = serve_with_bridge(serve, redis_server.url, "a1b2")
    a, a_id = await client(served)

    # the roomcast of the PROTOCOL.md example is byte for byte the upstream message
    await cast(a, "roomcast", "lobby", "message", "S", "hi")
    assert await foreign.next() == (CH.roomcasts, VALID["roomcast string"]["message"].encode())

    await cast(a, "broadcast", None, "broadcastbin", "B", "000102ff")
    assert await foreign.next() == (CH.broadcasts, VALID["broadcast binary"]["message"].encode())

    await cast(a, "broadcast", None, "broadcastjson", "J", {"message": "yo"})
    assert await foreign.next() == (CH.broadcasts, VALID["broadcast json"]["message"].encode())

    await cast(a, "socketcast", a_id, "dm", "S", "psst")
    ch, raw = await foreign.next()
    msg = upstream_decode(ch, raw)
    want = (1, "dm", f"__socket_id:{a_id}", b"psst", "a1b2")
    assert (msg["d"], msg["e"], msg["r"], msg["p"], msg["s"]) == want
    assert (await a.recv_event("dm")).text == "psst"  # and locally, once

    # names Go's encoder escapes, non-ASCII, and a JSON payload
    await cast(a, "roomcast", "r<&>é", "ev\"<x>", "J", [1, "é", None])
    ch, raw = await foreign.next()
    assert b"\\u003c" in raw and b"\\u0026" in raw and "é".encode() in raw
    msg = upstream_decode(ch, raw)
    assert (msg["d"], msg["e"], msg["r"], json.loads(msg["p"])) == (3, 'ev"<x>', "r<&>é", [1, "é", None])

    # the driver's casts are published too, as this server
    served.server.broadcast("fromdriver", "x")
    ch, raw = await foreign.next()
    assert raw == encode_cast(Cast(None, "fromdriver", "S", b"x"), bridge.server_name)
    await foreign.nothing()

    s = await eventually(lambda: (st := bridge_stats(served))["own_echoes"] == 6 and st, what="6 echoes")
    assert s["published"] == 6 and s["delivered"] == 0  # every publish came back and was dropped
    await a.close()
    await foreign.close()


async def test_own_echo_and_invalid_messages_are_counted_and_dropped(serve, redis_server):
    served, bridge = serve_with_bridge(serve, redis_server.url, "me-self")
    a, _ = await client(served)
    await join(a, "lobby")
    foreign = Foreign(redis_server.url)

    # our own roomcast: delivered locally once, its echo from Redis dropped
    await cast(a, "roomcast", "lobby", "message", "S", "once")
    assert (await a.recv_event("message")).text == "once"
    # a message claiming our server name is an echo too, whoever sent it
    await foreign.publish(CH.roomcasts, encode_cast(Cast("lobby", "message", "S", b"echo"), "me-self"))
    for vec in INVALID:
        await foreign.publish(vec["channel"], vec["message"])
    # and a roomcast without a room, and an event name that would corrupt the frame
    await foreign.publish(CH.roomcasts, b'{"d":1,"e":"x","p":"","s":"zz"}')
    await foreign.publish(CH.broadcasts, b'{"d":1,"e":"a\\u0001b","p":"","s":"zz"}')
    # JSON data nested too deeply to parse (was a RecursionError that restarted the subscriber)
    await foreign.publish(CH.roomcasts, encode_cast(Cast("lobby", "message", "J", b"[" * 100_000), "zz"))
    await foreign.publish(CH.roomcasts, encode_cast(Cast("lobby", "message", "S", b"after"), "zz"))
    assert (await a.recv_event("message")).text == "after"
    assert await a.nothing(QUIET)
    assert (await a.call("echo", "still alive")).text == "still alive"

    s = await eventually(lambda: (st := bridge_stats(served))["own_echoes"] == 2 and st, what="2 echoes")
    assert s["delivered"] == 1 and s["published"] == 1
    assert s["invalid"] == len(INVALID) + 3
    assert s["invalid_bad_data_type"] == 2 and s["invalid_bad_json"] == 1
    assert s["invalid_no_event"] == s["invalid_bad_base64"] == 1 and s["invalid_bad_json_payload"] == 2
    assert s["invalid_no_room"] == s["invalid_bad_event"] == 1
    assert s["received"] == 1 + 1 + len(INVALID) + 4
    await a.close()
    await foreign.close()


async def test_two_gateways_publish_once_and_deliver_once(serve, redis_server):
    foreign = await Foreign(redis_server.url).listen()
    served, bridge = serve_with_bridge(serve, redis_server.url, "twogw", gateways=2)
    clients: list[tuple[SacClient, str]] = []

    def per_gateway() -> list[int]:
        st = served.server.stats()
        return [st[g]["sockets"] for g in ("gw-0", "gw-1")]

    # SO_REUSEPORT spreads connections; connect until both gateways hold sockets
    while len(clients) < 40 and (len(clients) < 4 or min(await asyncio.to_thread(per_gateway)) < 2):
        clients.append(await client(served))
        await join(clients[-1][0], "lobby")
    assert min(await asyncio.to_thread(per_gateway)) >= 1, "all sockets on one gateway"

    sender = clients[0][0]
    await cast(sender, "roomcast", "lobby", "fromsock", "S", "one")
    await cast(sender, "broadcast", None, "fromsockall", "B", "01")
    for c, _ in clients:
        assert (await c.recv_event("fromsock")).text == "one"
        assert (await c.recv_event("fromsockall")).payload == b"\x01"
    published = [await foreign.next(), await foreign.next()]
    assert [ch for ch, _ in published] == [CH.roomcasts, CH.broadcasts]
    await foreign.nothing()  # exactly once, not once per gateway

    # arrivals reach every member on both gateways exactly once, and are never republished
    await foreign.publish(CH.roomcasts, encode_cast(Cast("lobby", "arrival", "S", b"r"), "go1"))
    await foreign.publish(CH.broadcasts, encode_cast(Cast(None, "arrivalall", "J", b'{"n":1}'), "go1"))
    last_id = clients[-1][1]
    await foreign.publish(CH.roomcasts, encode_cast(Cast(f"__socket_id:{last_id}", "dm", "S", b"p"), "go1"))
    for ch_expected in (CH.roomcasts, CH.broadcasts, CH.roomcasts):
        assert (await foreign.next())[0] == ch_expected  # the raw client's own three
    await foreign.nothing()
    for c, cid in clients:  # the three take different paths, so their order may differ
        want = {("arrival", b"r"), ("arrivalall", b'{"n":1}')} | ({("dm", b"p")} if cid == last_id else set())
        got = [await c.recv() for _ in want]
        assert {(m.event, m.payload) for m in got} == want
    for c, _ in clients:
        assert await c.nothing(0.2)

    s = await eventually(lambda: (st := bridge_stats(served))["own_echoes"] == 2 and st, what="2 echoes")
    assert s["delivered"] == 3 and s["published"] == 2
    for c, _ in clients:
        await c.close()
    await foreign.close()


async def test_two_servers_federate_both_ways(serve, redis_server):
    one, b1 = serve_with_bridge(serve, redis_server.url, "server-one")
    two, b2 = serve_with_bridge(serve, redis_server.url, "server-two")
    a, a_id = await client(one)
    b, b_id = await client(two)
    await join(a, "lobby")
    await join(b, "lobby")

    await cast(a, "roomcast", "lobby", "chat", "S", "from one")
    for c in (a, b):
        assert (await c.recv_event("chat")).text == "from one"
    await cast(b, "broadcast", None, "bin", "B", "00ff")
    for c in (a, b):
        m = await c.recv_event("bin")
        assert (m.payload, m.binary) == (b"\x00\xff", True)
    await cast(b, "socketcast", a_id, "dm", "J", {"to": "a"})
    assert (await a.recv_event("dm")).json == {"to": "a"}
    await cast(a, "socketcast", b_id, "dm", "S", "to b")
    assert (await b.recv_event("dm")).text == "to b"
    assert await a.nothing(QUIET) and await b.nothing(0.1)

    for served in (one, two):
        s = await eventually(lambda: (st := bridge_stats(served))["own_echoes"] == 2 and st, what="echoes")  # noqa: B023
        assert (s["published"], s["delivered"]) == (2, 2)
    for c in (a, b):
        await c.close()


async def test_redis_restart_local_casts_keep_working_and_federation_resumes(serve, redis_server):
    one, _ = serve_with_bridge(serve, redis_server.url, "res-one")
    two, _ = serve_with_bridge(serve, redis_server.url, "res-two")
    a1, _ = await client(one)
    a2, _ = await client(one)
    b, _ = await client(two)
    for c in (a1, a2, b):
        await join(c, "lobby")
    await cast(a1, "roomcast", "lobby", "chat", "S", "before")
    for c in (a1, a2, b):
        assert (await c.recv_event("chat")).text == "before"

    await asyncio.to_thread(redis_server.stop)
    await eventually(lambda: bridge_stats(one)["connected"] == 0, what="bridge notices Redis is down")
    await cast(a1, "roomcast", "lobby", "chat", "S", "during")
    for c in (a1, a2):
        assert (await c.recv_event("chat")).text == "during"
    await eventually(lambda: bridge_stats(one)["dropped_while_down"] >= 1, what="drop counted")
    assert await b.nothing(QUIET)

    await asyncio.to_thread(redis_server.start)
    await eventually(
        lambda: bridge_stats(one)["connected"] and bridge_stats(two)["connected"], timeout=60,
        what="both bridges resubscribed",
    )
    await cast(a1, "roomcast", "lobby", "chat", "S", "after")
    for c in (a1, a2, b):
        assert (await c.recv_event("chat")).text == "after"
    await cast(b, "roomcast", "lobby", "chat", "S", "back")
    for c in (a1, a2, b):
        assert (await c.recv_event("chat")).text == "back"
    assert bridge_stats(one)["reconnects"] >= 1 and bridge_stats(two)["reconnects"] >= 1
    for c in (a1, a2, b):
        await c.close()


async def test_redis_down_at_start_serves_local_sockets_then_federates(serve, redis_server):
    await asyncio.to_thread(redis_server.stop)
    began = time.monotonic()
    served, _ = serve_with_bridge(serve, redis_server.url, "late")
    assert time.monotonic() - began < 60
    a, _ = await client(served)
    b, _ = await client(served)
    await join(b, "lobby")
    assert (await a.call("echo", "local")).text == "local"
    await cast(a, "roomcast", "lobby", "chat", "S", "local cast")
    assert (await b.recv_event("chat")).text == "local cast"
    s = await eventually(lambda: (st := bridge_stats(served))["dropped_while_down"] == 1 and st, what="drop")
    assert s["connected"] == 0

    await asyncio.to_thread(redis_server.start)
    foreign = Foreign(redis_server.url)
    await eventually(lambda: bridge_stats(served)["connected"], timeout=60, what="bridge subscribed")
    await foreign.publish(CH.roomcasts, encode_cast(Cast("lobby", "chat", "S", b"from redis"), "go"))
    assert (await b.recv_event("chat")).text == "from redis"
    for c in (a, b):
        await c.close()
    await foreign.close()


# ---- the bridge alone (no Ray): logging and credentials ---------------------------------------


async def test_password_is_never_logged(redis_server, caplog):
    admin = redis_asyncio.from_url(redis_server.url)
    await admin.config_set("requirepass", "s3cret-pw")
    await admin.aclose()
    url = redis_server.url.replace("redis://", "redis://:s3cret-pw@")
    caplog.set_level(logging.DEBUG, logger="sacsock_actors")

    got: list[Cast] = []
    good = RedisBridge(url, server_name="pw")
    await good.start(got.append)
    assert good.connected
    foreign = Foreign(url)
    await foreign.publish(CH.broadcasts, "not json at all")
    await foreign.publish(CH.broadcasts, encode_cast(Cast(None, "e", "S", b"ok"), "other"))
    await eventually(lambda: got, what="delivery")
    assert got == [Cast(None, "e", "S", b"ok")]
    await good.shutdown()

    wrong = RedisBridge(url.replace("s3cret-pw", "wr0ng-pw"), server_name="pw2", start_wait=5)
    began = time.monotonic()
    await wrong.start(got.append)
    assert not wrong.connected and time.monotonic() - began < 10
    await wrong.publish([Cast(None, "e", "S", b"x")])
    assert wrong.stats()["dropped_while_down"] == 1
    await wrong.shutdown()
    await foreign.close()

    text = caplog.text
    assert "redis://:***@127.0.0.1" in text and "dropped an invalid message" in text
    assert "s3cret-pw" not in text and "wr0ng-pw" not in text


async def test_publish_never_waits_longer_than_its_timeout(redis_server):
    got: list[Cast] = []
    bridge = RedisBridge(redis_server.url, server_name="slow", publish_timeout=1.0, reconnect_max=0.5)
    await bridge.start(got.append)
    assert bridge.connected
    admin = redis_asyncio.from_url(redis_server.url)
    await admin.execute_command("CLIENT", "PAUSE", "4000", "ALL")  # Redis answers nobody for 4 s
    began = time.monotonic()
    await bridge.publish([Cast("r", "e", "S", b"1"), Cast(None, "e", "S", b"2")])
    assert time.monotonic() - began < 3
    await bridge.publish([Cast(None, "e", "S", b"3")])  # dropped at once: known down
    assert time.monotonic() - began < 3
    s = bridge.stats()
    assert (s["dropped_while_down"], s["publish_errors"], s["published"]) == (3, 1, 0)

    await eventually(lambda: bridge.connected, what="reconnected after the pause")
    await bridge.publish([Cast(None, "e", "S", b"4")])
    s = bridge.stats()
    assert s["published"] == 1 and s["reconnects"] >= 1
    await bridge.shutdown()
    await admin.aclose()


async def test_arrivals_fail_over_when_the_first_gateway_is_gone(serve, redis_server):
    import ray

    foreign = await Foreign(redis_server.url).listen()
    served, _ = serve_with_bridge(serve, redis_server.url, "failover", gateways=2)
    survivors: list[SacClient] = []
    for _ in range(100):  # a socket on gw-1 (SO_REUSEPORT spreads connections)
        c, sid = await client(served)
        if sid in await asyncio.to_thread(
            lambda: ray.get(served.server._runtime.gateways["gw-1"].socket_ids.remote())
        ):
            survivors.append(c)
            break
        await c.close()
    assert survivors, "no socket landed on gw-1"
    ray.kill(served.server._runtime.gateways["gw-0"], no_restart=True)
    await foreign.publish(CH.broadcasts, encode_cast(Cast(None, "late", "S", b"still here"), "go1"))
    assert (await survivors[0].recv_event("late")).text == "still here"
    await survivors[0].close()
    await foreign.close()
