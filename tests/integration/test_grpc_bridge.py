"""The gRPC bridge over the real grpcio transport (PROTOCOL.md sections 4 and 7).

A cluster (served in the shared Ray session) meshes with a plain process: a GrpcBridge run in
this test process's own event loop, recording what arrives. Raw grpcio clients play peers that
misbehave. Certificates are made by the tests. Every wait is a generous bound, never a
measurement.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from bridge_app import build
from grpc_certs import PEER_NAME, make_cert
from sacclient import SacClient, free_port

from sacsock_actors.bridges import Cast, GrpcBridge

grpc = pytest.importorskip("grpc")
pb = pytest.importorskip("sacsock_actors.bridges.proto.transport_pb2")
pb_grpc = pytest.importorskip("sacsock_actors.bridges.proto.transport_pb2_grpc")

pytestmark = [pytest.mark.integration]

WAIT = 60.0  # bound on any single expected state or arrival
QUIET = 1.0  # how long "nothing more arrives" is watched
KEY = b"integration-shared-key-of-32-bytes!"
OTHER_KEY = b"another-shared-key-of-32-bytes!!!!"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: Any) -> Any:
    d = tmp_path_factory.mktemp("grpc-certs")
    return {"ours": make_cert(d, "ours"), "other": make_cert(d, "other")}


# ---- the app: casts of every kind and type, from a socket ----------------------------------




async def client(served: Any) -> tuple[SacClient, str]:
    c = await SacClient.connect(served.url)
    return c, (await c.recv_event("id")).text


async def join(c: SacClient, room: str) -> None:
    assert (await c.call("join", room, reply="joined")).text == room


async def cast(c: SacClient, how: str, to: str | None, event: str, kind: str, data: Any) -> None:
    await c.emit("cast", json.dumps({"how": how, "to": to, "event": event, "kind": kind, "data": data}))


def secure(port: int, peers: list[str], pair: Any, key: bytes = KEY, **kw: Any) -> GrpcBridge:
    return GrpcBridge(f"127.0.0.1:{port}", peers, cert_file=pair.cert, key_file=pair.key,
                      shared_key=key, reconnect_max=1.0, **kw)


def peer_of(port: int) -> str:
    return f"{PEER_NAME}@127.0.0.1:{port}"


class Plain:
    """A GrpcBridge in this test process (a plain, non-Ray fleet member)."""

    def __init__(self, bridge: GrpcBridge) -> None:
        self.bridge = bridge
        self.got: list[Cast] = []

    async def start(self) -> Plain:
        await self.bridge.start(self.got.append)
        return self

    async def stop(self) -> None:
        await self.bridge.shutdown()

    async def until(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT
        while not (value := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached in {WAIT} s; stats {self.bridge.stats()}")
            await asyncio.sleep(0.05)
        return value

    async def nothing_more(self, count: int) -> None:
        await asyncio.sleep(QUIET)
        assert len(self.got) == count, self.got[count:]


@pytest.fixture
async def plains() -> Any:
    """``await plains(bridge) -> Plain`` (started); every one is stopped after the test."""
    made: list[Plain] = []

    async def start(bridge: GrpcBridge) -> Plain:
        p = await Plain(bridge).start()
        made.append(p)
        return p

    yield start
    for p in made:
        await p.stop()


async def eventually(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.1)


async def collect(c: SacClient, events: set[str]) -> dict[str, Any]:
    """The first message of each of ``events``, in whatever order they come."""
    got: dict[str, Any] = {}
    while not events <= set(got):
        m = await c.recv()
        got.setdefault(m.event, m)
    return got


def bridge_stats(served: Any) -> dict[str, Any]:
    return served.server.stats()["bridge-0"]


def serve_with(serve: Callable, bridge: GrpcBridge, **kwargs: Any) -> Any:
    server = build()
    server.set_multihome_backend(bridge)
    return serve(server, **kwargs)


async def cluster_connected(served: Any, n: int = 1) -> dict[str, Any]:
    return await eventually(lambda: (s := bridge_stats(served))["connected"] == n and s,
                            f"{n} peer(s) connected")


# ---- tests -------------------------------------------------------------------------------------


async def test_all_kinds_and_types_both_directions_once(serve, certs, plains):
    p_cluster, p_plain = free_port(), free_port()
    plain = await plains(secure(p_plain, [peer_of(p_cluster)], certs["ours"]))  # peer first
    served = serve_with(serve, secure(p_cluster, [peer_of(p_plain)], certs["ours"]), gateways=2)
    await cluster_connected(served)
    await plain.until(lambda: plain.bridge.stats()["connected"], "plain connected")
    a, a_id = await client(served)
    b, b_id = await client(served)
    await join(a, "lobby")

    # cluster -> plain: each kind and type, in order, exactly once (however many gateways)
    await cast(a, "roomcast", "lobby", "message", "S", "hé")
    await cast(b, "broadcast", None, "bin", "B", "000102ff")
    await cast(a, "broadcast", None, "js", "J", {"x": [1, "é", None]})
    await cast(b, "socketcast", a_id, "dm", "S", "psst")
    await plain.until(lambda: len(plain.got) >= 4, "4 casts at the plain peer")
    got = {c.event: c for c in plain.got}  # a's and b's casts may interleave; each keeps its order
    assert [c.event for c in plain.got if c.event in ("message", "js")] == ["message", "js"]
    assert got["message"] == Cast("lobby", "message", "S", "hé".encode())
    assert got["bin"] == Cast(None, "bin", "B", b"\x00\x01\x02\xff")
    assert got["js"][:3] == (None, "js", "J") and json.loads(got["js"].payload) == {"x": [1, "é", None]}
    assert got["dm"] == Cast(f"__socket_id:{a_id}", "dm", "S", b"psst")
    await plain.nothing_more(4)

    # plain -> cluster: delivered to our sockets, each once, never sent back
    await plain.bridge.publish([
        Cast("lobby", "message", "S", b"from plain"),
        Cast(None, "news", "J", b'{"n":1}'),
        Cast(None, "raw", "B", b"\xff\x00"),
        Cast(f"__socket_id:{b_id}", "dm", "S", b"to b"),
    ])
    assert (await a.recv_event("message")).text == "hé"  # a's own roomcast, delivered here
    assert (await a.recv_event("message")).text == "from plain"
    for c in (a, b):
        m = await c.recv_event("news")
        assert (m.type, m.json, m.binary) == ("J", {"n": 1}, False)
        m = await c.recv_event("raw")
        assert (m.type, m.payload, m.binary) == ("B", b"\xff\x00", True)
    m = await b.recv_event("dm")
    assert (m.type, m.text) == ("S", "to b")
    assert await a.nothing("dm", QUIET) and await a.nothing("message", 0.1)
    await plain.nothing_more(4)  # what arrived from a peer is never forwarded

    s = bridge_stats(served)
    peer = s["peers"][peer_of(p_plain)]
    assert (peer["sent"], peer["failed"], peer["dropped"], peer["connected"]) == (4, 0, 0, 1)
    assert s["received"] == 4 and s["rejected"] == 0 and s["inbound"]["127.0.0.1"]["received"] == 4
    assert s["to_cluster"] == 4 and s["from_cluster"] == 4
    for c in (a, b):
        await c.close()
    await plain.stop()


def hand_token(claims: Any, key: bytes = KEY, alg: str = "HS256") -> str:
    """A compact JWS made by hand (independent of our token code)."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}.get(alg)
    return head + "." + (b64(hmac.new(key, head.encode(), digest).digest()) if digest else "")


async def test_refused_rpcs_deliver_nothing(serve, certs, plains):
    port = free_port()
    served = serve_with(serve, secure(port, [], certs["ours"]))
    a, _ = await client(served)
    await join(a, "lobby")
    target = f"127.0.0.1:{port}"
    later = int(time.time()) + 600
    request = pb.Roomcast(timestamp=7, room="lobby", event="message", data=b"bad", dataType=pb.STR)

    def channel(pair: Any) -> Any:
        creds = grpc.ssl_channel_credentials(root_certificates=open(pair.cert, "rb").read())
        return grpc.aio.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", PEER_NAME)])

    async def call(ch: Any, metadata: Any) -> Any:
        return await pb_grpc.PropagateStub(ch).DoRoomcast(request, metadata=metadata, timeout=WAIT)

    ours = channel(certs["ours"])
    refused = {
        "no_header": None,
        "bad_bearer": (("authorization", "Token " + hand_token({"iam": "x", "exp": later})),),
        "bad_signature": (("authorization", "Bearer " + hand_token({"iam": "x", "exp": later}, OTHER_KEY)),),
        "bad_algorithm": (("authorization", "Bearer " + hand_token({"iam": "x", "exp": later}, alg="none")),),
        "no_iam": (("authorization", "Bearer " + hand_token({"iam": "", "exp": later})),),
        "expired": (("authorization", "Bearer " + hand_token({"iam": "x", "exp": 0})),),
    }
    extra = [
        ("bad_algorithm",
         (("authorization", "Bearer " + hand_token({"iam": "x", "exp": later}, alg="HS512")),)),
        ("expired", (("authorization", "Bearer " + hand_token({"iam": "x", "exp": int(time.time()) - 5})),)),
    ]
    for reason, metadata in [*refused.items(), *extra]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(ours, metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, reason
        assert reason in err.value.details()

    # a certificate the server does not present, and plaintext to the TLS port: no handshake
    for ch in (channel(certs["other"]), grpc.aio.insecure_channel(target)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(ch, (("authorization", "Bearer " + hand_token({"iam": "x", "exp": later})),))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        await ch.close()

    # a fleet member with another shared key: connected, every cast refused
    p_wrong = free_port()
    wrong = await plains(secure(p_wrong, [peer_of(port)], certs["ours"], key=OTHER_KEY))
    await wrong.until(lambda: wrong.bridge.stats()["connected"], "wrong-key peer connected")
    await wrong.bridge.publish([Cast("lobby", "message", "S", b"wrong key")])
    await wrong.until(lambda: wrong.bridge.stats()["failed"] == 1, "the wrong key's cast refused")
    assert wrong.bridge.stats()["peers"][peer_of(port)]["last_error"] == "UNAUTHENTICATED"
    await wrong.stop()
    # and a fleet member with another certificate never gets a connection
    p_cert = free_port()
    other_cert = await plains(secure(p_cert, [peer_of(port)], certs["other"]))
    await other_cert.bridge.publish([Cast("lobby", "message", "S", b"wrong cert")])
    assert other_cert.bridge.stats()["connected"] == 0 and other_cert.bridge.stats()["dropped"] == 1
    await other_cert.stop()

    assert await a.nothing("message", QUIET)
    s = bridge_stats(served)
    assert s["received"] == 0 and s.get("to_cluster", 0) == 0
    assert s["rejected"] == len(refused) + len(extra) + 1
    for reason in refused:
        assert s[f"rejected_{reason}"] == (2 if reason in ("bad_algorithm", "expired") else 1) + (
            reason == "bad_signature"), reason

    # the same call with a good token goes through: the refusals were about the token alone
    good = (("authorization", "Bearer " + hand_token({"iam": "ssgrpcClient", "exp": later})),)
    result = await call(ours, good)
    assert (result.success, result.timestamp) == (True, 7)
    assert (await a.recv_event("message")).text == "bad"
    await ours.close()
    await a.close()


async def test_invalid_casts_are_refused_and_counted(serve, certs):
    port = free_port()
    served = serve_with(serve, secure(port, [], certs["ours"]))
    a, _ = await client(served)
    await join(a, "lobby")
    creds = grpc.ssl_channel_credentials(root_certificates=open(certs["ours"].cert, "rb").read())
    ch = grpc.aio.secure_channel(f"127.0.0.1:{port}", creds,
                                 options=[("grpc.ssl_target_name_override", PEER_NAME)])
    stub = pb_grpc.PropagateStub(ch)
    md = (("authorization", "Bearer " + hand_token({"iam": "x", "exp": int(time.time()) + 600})),)
    bad = [
        pb.Roomcast(room="lobby", event="m", data=b"{no", dataType=pb.JSON),
        pb.Roomcast(room="", event="m", data=b"x", dataType=pb.STR),
        pb.Roomcast(room="lobby", event="", data=b"x", dataType=pb.STR),
        pb.Roomcast(room="lobby", event="a\x01", data=b"x", dataType=pb.STR),
        pb.Roomcast(room="lobby", event="m", data=b"\xff", dataType=pb.STR),
        pb.Roomcast(room="lobby", event="m", data="[1]".encode("utf-16"), dataType=pb.JSON),  # not UTF-8
        pb.Roomcast(room="lobby", event="m", data=b"[" * 100_000, dataType=pb.JSON),  # too deep to parse
    ]
    for msg in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.DoRoomcast(msg, metadata=md, timeout=WAIT)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw = pb.Broadcast(event="m", data=b"x", dataType=pb.STR).SerializeToString() + b"\x20\x07"  # dataType 7
    call = ch.unary_unary("/transport.Propagate/DoBroadcast", request_serializer=None,
                          response_deserializer=pb.Result.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(raw, metadata=md, timeout=WAIT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await a.nothing("m", QUIET)
    await stub.DoRoomcast(pb.Roomcast(room="lobby", event="m", data=b"ok", dataType=pb.STR), metadata=md)
    assert (await a.recv_event("m")).text == "ok"
    s = bridge_stats(served)
    assert s["invalid"] == 8 and s["received"] == 1
    for reason in ("no_room", "no_event", "bad_event", "bad_utf8", "bad_data_type"):
        assert s[f"invalid_{reason}"] == 1, reason
    assert s["invalid_bad_json_payload"] == 3
    await ch.close()
    await a.close()


async def test_peer_killed_and_restarted_mid_run(serve, certs, plains):
    p_cluster, p_plain = free_port(), free_port()
    served = serve_with(serve, secure(p_cluster, [peer_of(p_plain)], certs["ours"]))  # peer later
    a, _ = await client(served)
    await join(a, "lobby")
    plain = await plains(secure(p_plain, [peer_of(p_cluster)], certs["ours"]))
    await cluster_connected(served)
    await cast(a, "roomcast", "lobby", "m", "S", "one")
    await plain.until(lambda: len(plain.got) == 1, "first cast")

    await plain.stop()
    await eventually(lambda: bridge_stats(served)["connected"] == 0, "the peer seen down")
    await cast(a, "roomcast", "lobby", "m", "S", "lost")  # dropped: the peer is down
    assert (await a.recv_event("m")).text == "one" and (await a.recv_event("m")).text == "lost"
    await eventually(lambda: bridge_stats(served)["dropped"] >= 1, "the cast for a down peer dropped")

    plain = await plains(secure(p_plain, [peer_of(p_cluster)], certs["ours"]))  # same port
    await cluster_connected(served)
    await plain.until(lambda: plain.bridge.stats()["connected"], "plain reconnected")
    await cast(a, "roomcast", "lobby", "m", "S", "two")
    await plain.until(lambda: plain.got, "a cast after the restart")
    assert [c.payload for c in plain.got] == [b"two"]
    await plain.bridge.publish([Cast("lobby", "m", "S", b"back")])
    assert (await a.recv_event("m")).text == "two" and (await a.recv_event("m")).text == "back"
    s = bridge_stats(served)["peers"][peer_of(p_plain)]
    assert s["sent"] == 2 and s["connected"] == 1
    await a.close()
    await plain.stop()


async def test_burst_of_1000_in_order_both_ways(serve, certs, plains):
    p_cluster, p_plain = free_port(), free_port()
    plain = await plains(secure(p_plain, [peer_of(p_cluster)], certs["ours"]))
    served = serve_with(serve, secure(p_cluster, [peer_of(p_plain)], certs["ours"]))
    await cluster_connected(served)
    await plain.until(lambda: plain.bridge.stats()["connected"], "plain connected")
    a, _ = await client(served)
    await join(a, "lobby")

    await a.emit("burst", "lobby:1000")
    await plain.until(lambda: len(plain.got) >= 1000, "1000 casts at the plain peer")
    assert [c.payload for c in plain.got] == [str(i).encode() for i in range(1000)]
    for i in range(1000):
        assert (await a.recv_event("seq")).text == str(i)

    await plain.bridge.publish([Cast("lobby", "seq", "S", str(i).encode()) for i in range(1000)])
    for i in range(1000):
        assert (await a.recv_event("seq")).text == str(i)
    s = bridge_stats(served)
    assert s["received"] == 1000 and s["sent"] == 1000 and s["dropped"] == s["failed"] == 0
    await a.close()
    await plain.stop()


async def test_two_clusters_mesh_insecure(serve, caplog):
    """Two clusters in development mode: the loud warning, and casts each way once."""
    p1, p2 = free_port(), free_port()
    with caplog.at_level("WARNING"):
        b1 = GrpcBridge(f"127.0.0.1:{p1}", [f"127.0.0.1:{p2}"], insecure=True, reconnect_max=1.0)
    assert "INSECURE" in caplog.text
    one = serve_with(serve, b1)
    b2 = GrpcBridge(f"127.0.0.1:{p2}", [f"127.0.0.1:{p1}"], insecure=True, reconnect_max=1.0)
    two = serve_with(serve, b2)
    await cluster_connected(one)
    await cluster_connected(two)
    a, _ = await client(one)
    b, _ = await client(two)
    await join(a, "r")
    await join(b, "r")
    await cast(a, "roomcast", "r", "m", "S", "from one")
    await cast(b, "broadcast", None, "all", "J", {"from": "two"})
    for c in (a, b):  # one's and two's casts may arrive in either order
        got = await collect(c, {"m", "all"})
        assert got["m"].text == "from one" and got["all"].json == {"from": "two"}
        assert await c.nothing("m", QUIET) and await c.nothing("all", 0.1)
    for served in (one, two):
        s = bridge_stats(served)
        assert (s["sent"], s["received"]) == (1, 1)
    await a.close()
    await b.close()


def test_configuration_errors_say_what_to_do(tmp_path, certs):
    from sacsock_actors.errors import ConfigError

    pair = certs["ours"]
    with pytest.raises(ConfigError, match="shared_key"):
        GrpcBridge("127.0.0.1:1", [], cert_file=pair.cert, key_file=pair.key)
    with pytest.raises(ConfigError, match="cert_file"):
        GrpcBridge("127.0.0.1:1", [], key_file=pair.key, shared_key=KEY)
    with pytest.raises(ConfigError, match="cannot read"):
        GrpcBridge("127.0.0.1:1", [], cert_file=str(tmp_path / "nope"), key_file=pair.key, shared_key=KEY)
    with pytest.raises(ConfigError, match="insecure=True uses no"):
        GrpcBridge("127.0.0.1:1", [], shared_key=KEY, insecure=True)
    with pytest.raises(ConfigError, match="not one string"):
        GrpcBridge("127.0.0.1:1", "h:1", insecure=True)
    with pytest.raises(ConfigError, match="listed twice"):
        GrpcBridge("127.0.0.1:1", ["h:1", "x@h:1"], insecure=True)
    bridge = GrpcBridge("127.0.0.1:1", ["h:1"], cert_file=pair.cert, key_file=pair.key, shared_key=KEY)
    assert KEY.decode() not in repr(bridge)


async def test_a_busy_listen_port_fails_start(certs):
    port = free_port()
    first = GrpcBridge(f"127.0.0.1:{port}", [], insecure=True)
    await first.start(lambda cast: None)
    second = GrpcBridge(f"127.0.0.1:{port}", [], insecure=True)
    from sacsock_actors.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot listen"):
        await second.start(lambda cast: None)
    await first.shutdown()


async def test_a_burst_of_concurrent_rpcs_is_not_cancelled(plains):
    """Upstream sends each cast from its own goroutine: thousands of RPCs at once. gRPC's
    default pending-request limits would cancel some (the Go peer logs CANCELLED)."""
    port = free_port()
    plain = await plains(GrpcBridge(f"127.0.0.1:{port}", [], insecure=True))
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.PropagateStub(ch)
    n = 3000
    results = await asyncio.gather(*(
        stub.DoBroadcast(pb.Broadcast(timestamp=i, event="e", data=b"x", dataType=pb.STR), timeout=WAIT)
        for i in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} failed, first {errors[0]!r}"
    assert sorted(r.timestamp for r in results) == list(range(n))
    assert len(plain.got) == n and plain.bridge.stats()["inbound"]["127.0.0.1"]["received"] == n
    await ch.close()
    await plain.stop()
