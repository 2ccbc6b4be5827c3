"""The MongoDB bridge against a real MongoDB-wire server (PROTOCOL.md sections 4 and 6).

Two clusters federate through it; a raw pymongo client plays a foreign (Go) instance: it
keeps a presence document, reads the documents addressed to it and writes documents to us.
Every group name is fresh, so the tests also run against a shared real MongoDB
(``SACSOCK_TEST_MONGO_URL``). Every wait is a generous bound, never a measurement.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bridge_app import build
from sacclient import SacClient

from sacsock_actors.bridges import Cast, MongoBridge

pymongo = pytest.importorskip("pymongo")
bson = pytest.importorskip("bson")
from bson import Binary, ObjectId, json_util  # noqa: E402

pytestmark = [pytest.mark.integration]

WAIT = 30.0
QUIET = 1.0
POLL = 0.05
DB = "SSMultihome"
FIXTURES = json_util.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "mongo-documents.json").read_text(),
    json_options=json_util.JSONOptions(tz_aware=True, tzinfo=timezone.utc),
)


def group() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


# ---- the app: casts of every type, from a socket -------------------------------------------




def serve_with_bridge(
    serve: Callable, url: str, grp: str, name: str, **kwargs: Any
) -> tuple[Any, MongoBridge]:
    bridge = MongoBridge(url, server_group=grp, server_name=name, poll_interval=POLL,
                         reconnect_max=0.5, op_timeout=2.0)
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


async def eventually(check: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.05)


async def aeventually(check: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.05)


def bridge_stats(served: Any) -> dict[str, int]:
    return served.server.stats()["bridge-0"]


async def see_each_other(one: Any, two: Any) -> None:
    """Both bridges have read the other's presence (a poll after it was written)."""
    await eventually(lambda: bridge_stats(one)["peers"] == bridge_stats(two)["peers"] == 1,
                     what="both bridges see the other")


class Foreign:
    """A raw pymongo client playing another instance of the group, as upstream writes it."""

    def __init__(self, url: str, grp: str, name: str) -> None:
        self.client = pymongo.AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=20000)
        self.db = self.client[DB]
        self.group = grp
        self.name = name

    async def present(self) -> Foreign:
        await self.db["ss.activeServers"].update_one(
            {"ServerName": self.name, "ServerGroup": self.group},
            {"$set": {"ServerName": self.name, "ServerGroup": self.group,
                      "Expire": datetime.now(timezone.utc) + timedelta(minutes=5)}}, upsert=True)
        return self

    async def leave(self) -> None:
        await self.db["ss.activeServers"].delete_many({"ServerName": self.name, "ServerGroup": self.group})

    async def addressed_to_me(self, collection: str) -> list[dict[str, Any]]:
        cur = self.db[collection].find({"ServerName": self.name, "ServerGroup": self.group},
                                       sort=[("Expire", 1), ("_id", 1)])
        return await cur.to_list()

    async def insert(self, collection: str, doc: dict[str, Any]) -> ObjectId:
        return (await self.db[collection].insert_one(doc)).inserted_id

    async def servers(self) -> list[str]:
        docs = await self.db["ss.activeServers"].find({"ServerGroup": self.group}).to_list()
        return sorted(d["ServerName"] for d in docs)

    async def close(self) -> None:
        await self.client.close()


def doc_to(target: str, grp: str, collection: str, event: str, data: Any, is_json: bool = False,
           room: str | None = None) -> dict[str, Any]:
    """A document as upstream writes it (PROTOCOL.md 6), independent of our codec."""
    doc: dict[str, Any] = {"ServerName": target, "ServerGroup": grp,
                           "Expire": datetime.now(timezone.utc) + timedelta(minutes=5)}
    if collection == "ss.roomcasts":
        doc["RoomName"] = room
    doc.update({"EventName": event, "Data": data, "JSON": is_json, "Read": False})
    return doc


# ---- tests ---------------------------------------------------------------------------------------


async def test_two_clusters_all_kinds_both_ways_exactly_once(mongo_url, serve):
    grp = group()
    one, _ = serve_with_bridge(serve, mongo_url, grp, "one")
    two, _ = serve_with_bridge(serve, mongo_url, grp, "two")
    a, a_id = await client(one)
    b, b_id = await client(two)
    for c in (a, b):
        await join(c, "lobby")
    await see_each_other(one, two)

    sends = [  # (sender, how, to, event, kind, data, expected payload, binary)
        (a, "roomcast", "lobby", "rs", "S", "héllo", "héllo".encode(), False),
        (a, "roomcast", "lobby", "rb", "B", "00ff01", b"\x00\xff\x01", True),
        (a, "roomcast", "lobby", "rj", "J", {"n": [1, "é"]}, None, False),
        (b, "broadcast", None, "bs", "S", "", b"", False),
        (b, "broadcast", None, "bb", "B", "ff", b"\xff", True),
        (b, "broadcast", None, "bj", "J", [True, None], None, False),
    ]
    for sender, how, to, event, kind, data, _, _ in sends:
        await cast(sender, how, to, event, kind, data)
    for c in (a, b):  # each sender's casts in order; the two senders interleave
        got = [await c.recv() for _ in sends]
        for origin in (a, b):
            mine = [s for s in sends if s[0] is origin]
            seen = [m for m in got if m.event in {s[3] for s in mine}]
            assert [m.event for m in seen] == [s[3] for s in mine]
            for m, (_, _, _, _, kind, data, payload, binary) in zip(seen, mine, strict=True):
                assert m.type == kind and m.binary == binary
                assert m.json == data if kind == "J" else m.payload == payload
    # socketcasts both ways
    await cast(a, "socketcast", b_id, "dm", "J", {"to": "b"})
    assert (await b.recv_event("dm")).json == {"to": "b"}
    await cast(b, "socketcast", a_id, "dm", "S", "to a")
    assert (await a.recv_event("dm")).text == "to a"
    for c in (a, b):
        assert await c.nothing("rs", QUIET) and await c.nothing("dm", 0.1)

    for served in (one, two):
        s = await eventually(lambda: (st := bridge_stats(served))["delivered"] == 4 and st,  # noqa: B023
                             what="4 arrivals")
        assert (s["published"], s["invalid"], s["duplicates_skipped"]) == (4, 0, 0)
        assert s["peers"] == 1 and s["documents_inserted"] == 4
    for c in (a, b):
        await c.close()


async def test_documents_we_write_are_upstreams(mongo_url, serve):
    grp = group()
    foreign = await Foreign(mongo_url, grp, "go-raw").present()
    served, bridge = serve_with_bridge(serve, mongo_url, grp, "py")
    a, a_id = await client(served)
    await eventually(lambda: bridge_stats(served)["connected"], what="up")
    assert await aeventually(lambda: _has(foreign, "py"), what="our presence document")
    presence = await foreign.db["ss.activeServers"].find_one({"ServerName": "py", "ServerGroup": grp})
    assert list(presence) == ["_id", "ServerName", "ServerGroup", "Expire"]
    assert timedelta(minutes=4) < presence["Expire"] - datetime.now(timezone.utc) <= timedelta(minutes=5)
    indexes = await foreign.db["ss.roomcasts"].index_information()
    have = {tuple(i["key"]): i.get("expireAfterSeconds") for i in indexes.values()}
    want = {(("Expire", 1),): 1, (("ServerGroup", 1),): None, (("ServerName", 1),): None}
    assert have.items() >= want.items()

    for fx in FIXTURES["valid"]:
        c = fx["cast"]
        data = c["hex"] if "hex" in c else (json.loads(c["text"]) if c["type"] == "J" else c["text"])
        room = c["room"]
        if room and room.startswith("__socket_id:"):
            await cast(a, "socketcast", a_id, c["event"], c["type"], data)
        elif room:
            await cast(a, "roomcast", room, c["event"], c["type"], data)
        else:
            await cast(a, "broadcast", None, c["event"], c["type"], data)

    async def all_written() -> list:
        rooms = await foreign.addressed_to_me("ss.roomcasts")
        broads = await foreign.addressed_to_me("ss.broadcasts")
        return rooms + broads if len(rooms) + len(broads) == len(FIXTURES["valid"]) else []

    docs = await aeventually(all_written, what="one document per cast for go-raw")
    want = [fx["document"] for fx in FIXTURES["valid"]]
    want_rooms = [w for w in want if "RoomName" in w]
    want_broads = [w for w in want if "RoomName" not in w]
    for got, w in zip(docs, want_rooms + want_broads, strict=True):
        assert list(got) == ["_id", *w]  # upstream's fields, in its order
        expire = got.pop("Expire")
        assert timedelta(minutes=4) < expire - datetime.now(timezone.utc) <= timedelta(minutes=5)
        oid = got.pop("_id")
        assert isinstance(oid, ObjectId)
        w = {**w, "ServerName": "go-raw", "ServerGroup": grp}
        w.pop("Expire")
        if w.get("RoomName", "").startswith("__socket_id:"):
            w["RoomName"] = f"__socket_id:{a_id}"
        raw_got = bson.encode(got)  # the BSON types: string vs binary subtype 0, bools
        assert raw_got == bson.encode(w), (got, w)
    await a.close()
    await foreign.close()


async def _has(foreign: Foreign, name: str) -> bool:
    return name in await foreign.servers()


async def test_foreign_documents_are_delivered_in_order_marked_read_and_bad_ones_skipped(mongo_url, serve):
    grp = group()
    foreign = await Foreign(mongo_url, grp, "go-raw").present()
    served, _ = serve_with_bridge(serve, mongo_url, grp, "py")
    a, _ = await client(served)
    b, b_id = await client(served)
    await join(a, "lobby")
    await eventually(lambda: bridge_stats(served)["connected"], what="up")

    now = datetime.now(timezone.utc)
    ids = []
    for fx in FIXTURES["invalid"]:  # upstream's reader would crash or send junk on these
        doc = {**fx["document"], "ServerName": "py", "ServerGroup": grp, "Expire": now + timedelta(minutes=5)}
        ids.append((fx["collection"], await foreign.insert(fx["collection"], doc)))
    deep = doc_to("py", grp, "ss.roomcasts", "m", Binary(b"[" * 100_000), True, room="lobby")  # too deep
    ids.append(("ss.roomcasts", await foreign.insert("ss.roomcasts", deep)))
    good = [
        doc_to("py", grp, "ss.roomcasts", "m", "one", room="lobby"),
        doc_to("py", grp, "ss.roomcasts", "m", Binary(b"\x00two"), room="lobby"),
        doc_to("py", grp, "ss.roomcasts", "m", Binary(b'{"three":3}'), True, room="lobby"),
        doc_to("py", grp, "ss.broadcasts", "all", "to all"),
        doc_to("py", grp, "ss.roomcasts", "dm", "psst", room=f"__socket_id:{b_id}"),
        doc_to("go-raw", grp, "ss.roomcasts", "m", "not for us", room="lobby"),
        doc_to("py", "other-group", "ss.roomcasts", "m", "not our group", room="lobby"),
    ]
    for i, doc in enumerate(good):
        coll = "ss.broadcasts" if "RoomName" not in doc else "ss.roomcasts"
        oid = await foreign.insert(coll, doc)
        if i < 5:  # the last two are not ours to read
            ids.append((coll, oid))

    got = [await a.recv_event("m") for _ in range(3)]
    assert [(m.type, m.payload) for m in got] == [("S", b"one"), ("B", b"\x00two"), ("J", b'{"three":3}')]
    for c in (a, b):
        assert (await c.recv_event("all")).text == "to all"
    assert (await b.recv_event("dm")).text == "psst"
    assert await a.nothing("m", QUIET)
    assert (await a.call("echo", "still alive")).text == "still alive"

    s = await eventually(lambda: (st := bridge_stats(served))["received"] == len(ids) and st, what="all read")
    assert s["delivered"] == 5 and s["invalid"] == len(FIXTURES["invalid"]) + 1
    reasons = [fx["reason"] for fx in FIXTURES["invalid"]] + ["bad_json_payload"]  # + the deep one
    for fx_reason in set(reasons):
        assert s[f"invalid_{fx_reason}"] == reasons.count(fx_reason), fx_reason

    async def all_marked() -> bool:  # read and expired (the TTL sweep may already have removed them)
        for coll, oid in ids:
            doc = await foreign.db[coll].find_one({"_id": oid})
            if doc is not None and (doc["Read"] is not True or doc["Expire"] > datetime.now(timezone.utc)):
                return False
        return True

    await aeventually(all_marked, what="every document we read marked read with a past Expire")
    assert await foreign.db["ss.roomcasts"].count_documents({"ServerName": "go-raw", "Read": False}) == 1
    for c in (a, b):
        await c.close()
    await foreign.close()


async def test_a_member_that_leaves_gets_no_more_documents(mongo_url, serve):
    grp = group()
    stay = await Foreign(mongo_url, grp, "stays").present()
    leaver = await Foreign(mongo_url, grp, "leaves").present()
    served, _ = serve_with_bridge(serve, mongo_url, grp, "py")
    a, _ = await client(served)
    await eventually(lambda: bridge_stats(served)["connected"], what="up")

    await cast(a, "broadcast", None, "e", "S", "first")
    for f in (stay, leaver):
        await aeventually(lambda: _count(f, 1), what=f"first document for {f.name}")  # noqa: B023
    await leaver.leave()  # dropped from the next poll on
    await eventually(lambda: bridge_stats(served)["peers"] == 1, what="the bridge sees one peer left")
    await cast(a, "broadcast", None, "e", "S", "second")
    await aeventually(lambda: _count(stay, 2), what="second document for the one that stays")
    await cast(a, "broadcast", None, "e", "S", "third")
    await aeventually(lambda: _count(stay, 3), what="third document for the one that stays")
    assert [d["Data"] for d in await leaver.addressed_to_me("ss.broadcasts")] == ["first"]

    # and our own presence document goes when the cluster shuts down
    assert "py" in await stay.servers()
    await a.close()
    await asyncio.to_thread(served.server.shutdown)
    assert await stay.servers() == ["stays"]
    for f in (stay, leaver):
        await f.close()


async def _count(f: Foreign, n: int) -> bool:
    return len(await f.addressed_to_me("ss.broadcasts")) == n


async def test_mongo_restart_local_casts_go_on_and_federation_resumes(mongo_server, serve):
    grp = group()
    one, _ = serve_with_bridge(serve, mongo_server.url, grp, "one")
    two, _ = serve_with_bridge(serve, mongo_server.url, grp, "two")
    a1, _ = await client(one)
    a2, _ = await client(one)
    b, _ = await client(two)
    for c in (a1, a2, b):
        await join(c, "lobby")
    await see_each_other(one, two)
    await cast(a1, "roomcast", "lobby", "chat", "S", "before")
    for c in (a1, a2, b):
        assert (await c.recv_event("chat")).text == "before"

    await asyncio.to_thread(mongo_server.stop)
    await eventually(lambda: not bridge_stats(one)["connected"], what="bridge notices MongoDB is down")
    await cast(a1, "roomcast", "lobby", "chat", "S", "during")
    for c in (a1, a2):
        assert (await c.recv_event("chat")).text == "during"  # local serving goes on
    assert (await a1.call("echo", "local")).text == "local"

    await asyncio.to_thread(mongo_server.start)  # in memory: a fresh, empty server
    await eventually(lambda: bridge_stats(one)["connected"] and bridge_stats(two)["connected"],
                     timeout=60, what="both bridges back")
    await see_each_other(one, two)
    assert bridge_stats(one)["reconnects"] >= 1 and bridge_stats(two)["reconnects"] >= 1
    await cast(a1, "roomcast", "lobby", "chat", "S", "after")
    for c in (a1, a2):
        assert (await c.recv_event("chat")).text == "after"
    got = [(await b.recv_event("chat")).text]
    if got == ["during"]:  # buffered while down, and two was back in time to be a target
        got.append((await b.recv_event("chat")).text)
    assert got[-1] == "after"
    await cast(b, "roomcast", "lobby", "chat", "S", "back")
    for c in (a1, a2, b):
        assert (await c.recv_event("chat")).text == "back"
    assert await b.nothing("chat", QUIET)  # at most once: nothing twice after the reconnect
    for c in (a1, a2, b):
        await c.close()


async def test_mongo_paused_no_cast_lost_or_delivered_twice(mongo_server, serve):
    """SIGSTOP the server mid-run: inserts and marks time out and are retried; with the same
    _ids and the delivered set, every cast arrives exactly once when it answers again."""
    grp = group()
    one, _ = serve_with_bridge(serve, mongo_server.url, grp, "one")
    two, _ = serve_with_bridge(serve, mongo_server.url, grp, "two")
    a, _ = await client(one)
    b, _ = await client(two)
    await join(b, "lobby")
    await see_each_other(one, two)
    await cast(a, "roomcast", "lobby", "n", "S", "0")
    assert (await b.recv_event("n")).text == "0"

    sent = [str(i) for i in range(1, 41)]
    for i, text in enumerate(sent):
        if i == 10:
            await asyncio.to_thread(mongo_server.pause)
        if i == 30:
            await eventually(lambda: not (bridge_stats(one)["connected"] or bridge_stats(two)["connected"]),
                             what="both bridges see the pause")
            await asyncio.to_thread(mongo_server.resume)
        await cast(a, "roomcast", "lobby", "n", "S", text)
        await asyncio.sleep(0.02)
    got = [(await b.recv_event("n", timeout=60)).text for _ in sent]
    assert got == sent  # none lost, none twice, in order
    assert await b.nothing("n", QUIET)
    s1, s2 = bridge_stats(one), bridge_stats(two)
    assert s1["publish_errors"] + s1["poll_errors"] >= 1 and s2["poll_errors"] >= 1
    assert s1["dropped_buffer_full"] == 0
    await a.close()
    await b.close()


async def test_mongo_down_at_start_serves_locally_then_federates(mongo_server, serve):
    grp = group()
    await asyncio.to_thread(mongo_server.stop)
    began = time.monotonic()
    served, _ = serve_with_bridge(serve, mongo_server.url, grp, "late")
    assert time.monotonic() - began < 60
    a, _ = await client(served)
    b, _ = await client(served)
    await join(b, "lobby")
    assert (await a.call("echo", "local")).text == "local"
    await cast(a, "roomcast", "lobby", "chat", "S", "local cast")
    assert (await b.recv_event("chat")).text == "local cast"
    assert bridge_stats(served)["connected"] == 0

    await asyncio.to_thread(mongo_server.start)
    await eventually(lambda: bridge_stats(served)["connected"], timeout=60, what="bridge connected")
    foreign = await Foreign(mongo_server.url, grp, "go").present()
    doc = doc_to("late", grp, "ss.roomcasts", "chat", "from mongo", room="lobby")
    await foreign.insert("ss.roomcasts", doc)
    assert (await b.recv_event("chat")).text == "from mongo"
    for c in (a, b):
        await c.close()
    await foreign.close()


# ---- the bridge alone (no Ray) --------------------------------------------------------------


async def test_buffer_is_bounded_while_down_and_password_never_logged(mongo_server, caplog):
    caplog.set_level(logging.DEBUG, logger="sacsock_actors")
    await asyncio.to_thread(mongo_server.stop)
    url = f"mongodb://sa:s3cret-pw@127.0.0.1:{mongo_server.port}/?directConnection=true&authSource=admin"
    bridge = MongoBridge(url, server_group=group(), server_name="pw", buffer_limit=5, start_wait=1,
                         op_timeout=0.5, reconnect_max=0.2)
    began = time.monotonic()
    await bridge.start(lambda cast: None)
    assert time.monotonic() - began < 10 and not bridge.connected
    await bridge.publish([Cast(None, "e", "S", b"%d" % i) for i in range(8)])
    s = bridge.stats()
    assert (s["buffered"], s["dropped_buffer_full"]) == (5, 3)
    await bridge.shutdown()
    assert bridge.stats()["dropped_buffer_full"] == 8  # shutdown while down drops the rest
    text = caplog.text
    assert "mongodb://sa:***@127.0.0.1" in text
    assert "s3cret-pw" not in text


def test_bad_arguments_raise_at_once():
    from sacsock_actors.errors import ConfigError

    with pytest.raises(ConfigError, match="mongodb://"):
        MongoBridge("redis://u:pw@h")
    with pytest.raises(ConfigError) as info:
        MongoBridge("mongodb://u:pw@h:notaport")
    assert "pw" not in str(info.value).replace("***", "")
    with pytest.raises(ConfigError, match="poll_interval"):
        MongoBridge("mongodb://h", poll_interval=0)
    with pytest.raises(ConfigError, match="server_group"):
        MongoBridge("mongodb://h", server_group="")


def test_pickles_configuration_only():
    import pickle

    b = MongoBridge("mongodb://u:pw@h:1", server_group="g", server_name="n", poll_interval=0.1)
    c = pickle.loads(pickle.dumps(b))
    assert (c.url, c.server_group, c.server_name, c.poll_interval) == (b.url, "g", "n", 0.1)
    assert c.stats()["connected"] == 0 and "pw" not in repr(c)


async def test_with_the_redis_bridge_at_once_each_publishes_and_none_echoes_the_other(
    mongo_url, redis_server, serve
):
    import redis.asyncio as aioredis

    from sacsock_actors.bridges import RedisBridge
    from sacsock_actors.bridges.redis_codec import channels, encode_cast

    grp = group()
    foreign = await Foreign(mongo_url, grp, "go-raw").present()
    sub = aioredis.from_url(redis_server.url)
    pubsub = sub.pubsub()
    chans = channels(grp)
    await pubsub.subscribe(*chans)
    for _ in chans:
        assert (await pubsub.get_message(timeout=WAIT))["type"] == "subscribe"

    server = build()
    server.set_multihome_backend(RedisBridge(redis_server.url, server_group=grp, server_name="py"))
    server.set_multihome_backend(MongoBridge(mongo_url, server_group=grp, server_name="py",
                                             poll_interval=POLL))
    served = serve(server)
    a, _ = await client(served)
    await join(a, "lobby")
    await eventually(lambda: served.server.stats()["bridge-1"]["peers"] == 1, what="mongo bridge up")

    async def redis_messages(seconds: float) -> list[bytes]:
        out, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = await pubsub.get_message(timeout=0.2)
            if msg is not None and msg["type"] == "message":
                out.append(msg["data"])
        return out

    # a local cast goes out on both bridges, once each
    await cast(a, "roomcast", "lobby", "chat", "S", "local")
    assert (await a.recv_event("chat")).text == "local"
    docs = await aeventually(lambda: foreign.addressed_to_me("ss.roomcasts"), what="the mongo document")
    assert [(d["RoomName"], d["Data"]) for d in docs] == [("lobby", "local")]
    assert [json.loads(m)["e"] for m in await redis_messages(QUIET)] == ["chat"]

    # arrivals from one bridge are delivered here and handed to neither bridge
    await foreign.insert("ss.roomcasts", doc_to("py", grp, "ss.roomcasts", "chat", "via mongo", room="lobby"))
    assert (await a.recv_event("chat")).text == "via mongo"
    await sub.publish(chans.roomcasts, encode_cast(Cast("lobby", "chat", "S", b"via redis"), "go-r"))
    assert (await a.recv_event("chat")).text == "via redis"
    assert [json.loads(m)["s"] for m in await redis_messages(QUIET)] == ["go-r"]  # only its own
    assert len(await foreign.addressed_to_me("ss.roomcasts")) == 1
    await a.close()
    await pubsub.aclose()
    await sub.aclose()
    await foreign.close()
