"""The sacsock side of the interop tests: the handlers of the Go peer
(``../shared/peers/gopeer/main.go``), so one client script drives either side.

Run it as users do: ``sacsock serve peer_app:server --redis URL`` with this directory as
the working directory (``harness.ProcessGroup.sacsock`` does that).

| event | payload | action |
|---|---|---|
| ``echo`` / ``echobin`` / ``echojson`` | text / bytes / JSON | emit it back (same event) |
| ``join`` / ``leave`` | room | join / leave, then emit ``echo`` "joined room:R" / "left room:R" |
| ``whoami`` | - | emit ``whoami`` with the socket id |
| ``roomcast`` / ``roomcastbin`` | ``{"room":R,"data":"s"}`` | roomcast string / bytes of s |
| ``roomcastjson`` | ``{"room":R,...}`` | roomcast the whole object as JSON |
| ``broadcast`` / ``broadcastbin`` | text / bytes | broadcast it |
| ``socketcast`` | ``{"socketId":ID,"data":"s"}`` | socketcast string data |
| ``close`` | - | close the socket |

As upstream, a payload that does not parse is ignored (no reply). One event more, of
ours only: ``gateway`` emits ``gateway`` with ``{"pid": <the gateway's process id>}``, so a
test can tell which gateway a socket is on.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sacsock_actors import SocketServer

server = SocketServer()


def _object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _room_and_text(data: bytes) -> tuple[str, str] | None:
    obj = _object(data)
    if obj is None or not isinstance(obj.get("room"), str) or not isinstance(obj.get("data", ""), str):
        return None
    return obj["room"], obj.get("data", "")


@server.on("echo")
async def echo(socket, data: bytes) -> None:
    socket.emit("echo", data.decode("utf-8", "replace"))


@server.on("echobin")
async def echobin(socket, data: bytes) -> None:
    socket.emit("echobin", data)


@server.on("echojson")
async def echojson(socket, data: bytes) -> None:
    try:
        socket.emit("echojson", json.loads(data))
    except ValueError:
        pass


@server.on("join")
async def join(socket, data: bytes) -> None:
    room = data.decode()
    socket.join(room)
    socket.emit("echo", "joined room:" + room)


@server.on("leave")
async def leave(socket, data: bytes) -> None:
    room = data.decode()
    socket.leave(room)
    socket.emit("echo", "left room:" + room)


@server.on("whoami")
async def whoami(socket, data: bytes) -> None:
    socket.emit("whoami", socket.id)


@server.on("roomcast")
async def roomcast(socket, data: bytes) -> None:
    parsed = _room_and_text(data)
    if parsed is not None:
        socket.roomcast(parsed[0], "roomcast", parsed[1])


@server.on("roomcastbin")
async def roomcastbin(socket, data: bytes) -> None:
    parsed = _room_and_text(data)
    if parsed is not None:
        socket.roomcast(parsed[0], "roomcastbin", parsed[1].encode())


@server.on("roomcastjson")
async def roomcastjson(socket, data: bytes) -> None:
    obj = _object(data)
    if obj is not None and isinstance(obj.get("room"), str):
        socket.roomcast(obj["room"], "roomcastjson", obj)


@server.on("broadcast")
async def broadcast(socket, data: bytes) -> None:
    socket.broadcast("broadcast", data.decode("utf-8", "replace"))


@server.on("broadcastbin")
async def broadcastbin(socket, data: bytes) -> None:
    socket.broadcast("broadcastbin", data)


@server.on("socketcast")
async def socketcast(socket, data: bytes) -> None:
    obj = _object(data)
    if obj is not None and isinstance(obj.get("socketId"), str) and isinstance(obj.get("data", ""), str):
        socket.socketcast(obj["socketId"], "socketcast", obj.get("data", ""))


@server.on("close")
async def close(socket, data: bytes) -> None:
    socket.close()


@server.on("gateway")
async def gateway(socket, data: bytes) -> None:
    socket.emit("gateway", {"pid": os.getpid()})
