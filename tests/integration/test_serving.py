"""Every SocketServer/Socket API item and PROTOCOL.md behaviour over real websockets, on Ray."""

from __future__ import annotations

import asyncio
import json
import os
import socket as stdsocket
import threading

import aiohttp
import pytest
from chat_app import build
from sacclient import SacClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(ray_session):
    from conftest import Served
    from sacclient import free_port

    server = build(max_message_size=4096)
    port = free_port()
    infos = server.start(port=port)
    yield Served(server, port, infos, "/socket")
    server.shutdown()


async def connect(served) -> tuple[SacClient, dict]:
    c = await SacClient.connect(served.url)
    hello = await c.recv_event("welcome")
    return c, hello.json


def _processes_titled(prefix: str) -> list[int]:
    """Pids whose command line (a Ray worker's process title) starts with ``prefix``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().startswith(prefix.encode()):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_gateways_and_shards_run_at_normal_priority(served):
    # Ray starts workers at niceness 15: a gateway there starves next to any busy process
    gateways = [info["pid"] for info in served.infos]
    shards = _processes_titled("ray::RoomShardActor")
    assert gateways and shards
    assert {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in gateways + shards} == {
        pid: 0 for pid in gateways + shards}


async def test_connect_order_id_room_before_on_connect(served):
    c, hello = await connect(served)
    assert len(hello["id"]) == 32
    assert hello["rooms"] == [f"__socket_id:{hello['id']}"]
    await c.close()


async def test_subprotocol_selected(served):
    c, _ = await connect(served)
    assert c.ws.protocol == "sac-sock"
    await c.close()


async def test_no_subprotocol_is_accepted(served):
    async with aiohttp.ClientSession() as s, s.ws_connect(served.url) as ws:
        assert ws.protocol is None
        client = SacClient(ws, s)  # other tests' sockets may broadcast "gone" meanwhile
        assert (await client.recv_event("welcome")).type == "J"


async def test_echo_of_each_type(served):
    c, _ = await connect(served)
    m = await c.call("echo", "héllo")
    assert (m.type, m.text, m.binary) == ("S", "héllo", False)
    m = await c.call("echobin", b"\x00\x01\xff")
    assert (m.type, m.payload, m.binary) == ("B", b"\x00\x01\xff", True)
    m = await c.call("echojson", '{"a": [1, null]}')
    assert (m.type, m.json, m.binary) == ("J", {"a": [1, None]}, False)
    await c.close()


async def test_handlers_get_raw_bytes_for_text_and_binary_frames(served):
    c, _ = await connect(served)
    assert (await c.call("type", "text")).text == "bytes"
    assert (await c.call("type", b"bin")).text == "bytes"
    await c.close()


async def test_big_outbound_payload_framed_right(served):
    c, _ = await connect(served)
    m = await c.call("big", "70000")
    assert m.payload == b"x" * 70000
    await c.close()


async def test_plain_handlers_run_inline_blocking_ones_in_pool(served):
    c, _ = await connect(served)
    loop_thread = (await c.call("where")).json["thread"]
    assert not loop_thread.startswith("sacsock-handler")
    assert (await c.call("where_plain")).json["thread"] == loop_thread
    assert (await c.call("where_blocking")).json["thread"].startswith("sacsock-handler")
    await c.close()


async def test_slow_plain_handler_moves_to_pool_after_its_first_slow_call(served):
    a, _ = await connect(served)
    b, _ = await connect(served)
    moved = served.server.stats()["gw-0"].get("handlers_moved_to_pool", 0)
    assert (await a.call("slow", "0.05")).text == "0.05"  # inline: 50 ms over the 10 ms budget
    assert served.server.stats()["gw-0"]["handlers_moved_to_pool"] == moved + 1
    await a.emit("slow", "3")
    assert (await b.call("echo", "still here")).text == "still here"
    assert await a.nothing("slow", 0.2)  # a's call still sleeps in the pool: b was served meanwhile
    assert (await a.recv_event("slow", timeout=30)).text == "3"
    await a.close()
    await b.close()


async def test_socket_calls_keep_arrival_order_across_pool_and_loop(served):
    c, _ = await connect(served)
    await c.emit("block", "0.3")  # in the pool; the plain and async calls after it wait their turn
    for i in range(20):
        await c.emit("echo" if i % 2 else "echobin", str(i))
    got = []
    while len(got) < 21:
        m = await c.recv(timeout=30)
        if m.event != "gone":  # other tests' sockets closing
            got.append(m)
    assert [m.event for m in got] == ["unblocked"] + ["echobin" if i % 2 == 0 else "echo" for i in range(20)]
    assert [m.payload for m in got[1:]] == [str(i).encode() for i in range(20)]
    await c.close()


async def test_blocking_plain_handler_does_not_stall_other_sockets(served):
    a, _ = await connect(served)
    b, _ = await connect(served)
    await a.emit("block", "3")
    assert (await b.call("echo", "still here")).text == "still here"
    assert await a.nothing("unblocked", 0.2)  # a's handler is still sleeping: b was served meanwhile
    assert (await a.recv_event("unblocked")).event == "unblocked"
    await a.close()
    await b.close()


async def test_ignored_frames_and_unknown_events_keep_socket_open(served):
    c, _ = await connect(served)
    before = served.server.stats()["gw-0"]
    await c.ws.send_str("no separator")
    await c.ws.send_str("\x02empty event name")
    await c.ws.send_bytes(b"\xff\xfe\x02bad utf8 event")
    await c.emit("no_such_event", "x")
    assert (await c.call("echo", "alive")).text == "alive"
    after = served.server.stats()["gw-0"]
    assert after["ignored_frames"] - before.get("ignored_frames", 0) == 3
    assert after["unknown_events"] - before.get("unknown_events", 0) == 1
    await c.close()


async def test_failing_handlers_are_survived_and_counted(served):
    a, _ = await connect(served)
    b, _ = await connect(served)
    before = served.server.stats()["gw-0"].get("handler_errors", 0)
    await a.emit("fail")
    await a.emit("afail")
    assert (await a.call("echo", "ok")).text == "ok"
    assert (await b.call("echo", "ok")).text == "ok"
    assert served.server.stats()["gw-0"]["handler_errors"] - before == 2
    await a.close()
    await b.close()


async def test_misuse_raises_clear_errors_in_the_handler(served):
    c, _ = await connect(served)
    m = await c.call("misuse")
    assert m.text.startswith("InvalidEventName") and "0x01" in m.text
    assert (await c.call("unencodable")).text == "EncodeError"
    await c.close()


async def test_oversized_message_closes_that_socket_with_1009(served):
    a, _ = await connect(served)
    b, _ = await connect(served)
    await a.emit("echo", "x" * 5000)
    assert await a.closed() == 1009
    assert (await b.call("echo", "fine")).text == "fine"
    await b.close()
    await a.close()


async def test_cross_origin_upgrade_refused_same_origin_allowed(served):
    host = f"127.0.0.1:{served.port}"
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(served.url, headers={"Origin": "http://evil.example"})
        assert err.value.status == 403
        async with s.ws_connect(served.url, headers={"Origin": f"http://{host}"}) as ws:
            assert (await asyncio.wait_for(ws.receive(), 20)).type is aiohttp.WSMsgType.TEXT


async def test_join_leave_rooms_and_roomcast(served):
    a, ha = await connect(served)
    b, _ = await connect(served)
    c, _ = await connect(served)
    j = (await a.call("join", "lobby")).json
    assert j["in_room"] and set(j["rooms"]) == {"lobby", f"__socket_id:{ha['id']}"}
    await b.call("join", "lobby")
    await a.emit("roomcast", json.dumps({"room": "lobby", "event": "chat", "data": "hi all"}))
    for client in (a, b):  # the sender is a member, so it gets it too
        m = await client.recv_event("chat")
        assert (m.type, m.text) == ("S", "hi all")
    assert await c.nothing("chat", 0.3)
    left = (await b.call("leave", "lobby")).json
    assert not left["in_room"] and "lobby" not in left["rooms"]
    assert not (await c.call("leave", "never-joined")).json["in_room"]
    own = (await a.call("leave", f"__socket_id:{ha['id']}")).json
    assert own["in_room"], "the id room cannot be left"
    await c.emit("roomcast", json.dumps({"room": "lobby", "event": "chat", "data": {"n": 1}}))
    assert (await a.recv_event("chat")).json == {"n": 1}
    assert await b.nothing("chat", 0.3)
    for client in (a, b, c):
        await client.close()


async def test_socketcast_and_broadcast(served):
    a, _ = await connect(served)
    b, hb = await connect(served)
    await a.emit("socketcast", json.dumps({"to": hb["id"], "text": "psst"}))
    m = await b.recv_event("dm")
    assert m.json["text"] == "psst"
    assert await a.nothing("dm", 0.3)
    await b.emit("broadcast", "to everyone")
    for client in (a, b):
        assert (await client.recv_event("broadcast")).text == "to everyone"
    await a.close()
    await b.close()


async def test_close_from_handler_cleans_up_and_is_idempotent(served):
    a, ha = await connect(served)
    b, _ = await connect(served)
    await a.call("join", "closers")
    await a.emit("close")
    assert await a.closed() == 1000
    gone = await b.recv_event("gone")
    assert gone.json == {"id": ha["id"], "rooms": []}  # rooms left before on_disconnect
    await b.emit("roomcast", json.dumps({"room": "closers", "event": "x", "data": 1}))
    assert await b.nothing("x", 0.3)
    assert ha["id"] not in served.server.socket_ids()
    await b.close()
    await a.close()


async def test_client_disconnect_runs_on_disconnect(served):
    a, ha = await connect(served)
    b, _ = await connect(served)
    await a.close()
    assert (await b.recv_event("gone")).json["id"] == ha["id"]
    await b.close()


async def test_driver_side_casts_from_a_thread(served):
    a, ha = await connect(served)
    b, _ = await connect(served)
    await a.call("join", "news")

    def from_thread():
        served.server.roomcast("news", "news", {"headline": 1})
        served.server.broadcast("all", b"\x00bin")
        served.server.socketcast(ha["id"], "direct", "just you")

    t = threading.Thread(target=from_thread)
    t.start()
    t.join()
    assert (await a.recv_event("news")).json == {"headline": 1}
    for client in (a, b):
        m = await client.recv_event("all")
        assert (m.type, m.payload) == ("B", b"\x00bin")
    assert (await a.recv_event("direct")).text == "just you"
    assert await b.nothing("news", 0.3)
    await a.close()
    await b.close()


async def test_static_client_js_is_served(served):
    async with aiohttp.ClientSession() as s, s.get(served.http + "/sacsock.js") as r:
        assert r.status == 200
        assert "javascript" in r.headers["Content-Type"]


def raw_ws_connect(port: int) -> stdsocket.socket:
    """A websocket that completes the handshake and then never reads."""
    s = stdsocket.create_connection(("127.0.0.1", port))
    s.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    s.sendall(
        b"GET /socket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0]
    return s


async def test_slow_consumer_is_closed_and_others_unaffected(serve):
    served = serve(build(max_outgoing_buffer=256 * 1024, slow_consumer_grace=0.5))
    stalled = await asyncio.to_thread(raw_ws_connect, served.port)
    stalled.sendall(bytes([0x81, 0x80 | 9, 0, 0, 0, 0]) + b"flood\x02200")  # masked text frame
    other, _ = await connect(served)
    for _ in range(200):
        await asyncio.sleep(0.1)
        if served.server.stats()["gw-0"].get("slow_consumers_closed"):
            break
    assert served.server.stats()["gw-0"]["slow_consumers_closed"] == 1
    assert (await other.call("echo", "unaffected")).text == "unaffected"
    stalled.close()
    await other.close()


async def test_shutdown_closes_sockets_with_1001(serve):
    served = serve(build())
    a, _ = await connect(served)
    await asyncio.to_thread(served.server.shutdown)
    assert await a.closed() == 1001
    assert not served.server.serving
    await a.close()
