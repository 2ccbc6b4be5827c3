"""Multihome: independent sacsock servers (each with its own Ray) share rooms through a bridge.

    redis-server --port 6379 &
    INSTANCE=one sacsock serve app:server --static static --port 8081 --redis redis://127.0.0.1:6379/0
    INSTANCE=two sacsock serve app:server --static static --port 8082 --redis redis://127.0.0.1:6379/0

The bridge is chosen by flag: ``--redis URL`` or ``--mongo URL`` (the same on every
instance of the group; both at once work too). This module does not know which one
carries its casts.

Open http://127.0.0.1:8081/ and http://127.0.0.1:8082/: a message sent in a room on one
server reaches the members of that room on every server of the group, and so do broadcasts
and direct messages (a socketcast is a roomcast to ``__socket_id:<id>``, so it crosses
servers too). Go Sacrificial-Socket servers using ``ssredis`` / ``ssmongo`` with the same
Redis / MongoDB and server group join the same conversation.

Events from the browser (static/app.js):

    join      "<room>"                   answered with "joined"
    leave     "<room>"                   answered with "left"
    message   {"room": r, "text": t}     the room, on every server, gets "message"
    announce  "<text>"                   every socket of every server gets "announcement"
    dm        {"to": id, "text": t}      that socket, on whichever server, gets "dm"
"""

from __future__ import annotations

import json
import os
import time

from sacsock_actors import SocketServer

# evaluated where `sacsock serve` imports the app, and shipped with the handlers
INSTANCE = os.environ.get("INSTANCE") or f"pid-{os.getpid()}"
MAX_TEXT = 2000

server = SocketServer()


def _stamp(socket, text: str) -> dict:
    return {"from": socket.id, "instance": INSTANCE, "text": text[:MAX_TEXT], "ts": int(time.time() * 1000)}


def _room(data: bytes) -> str | None:
    room = data.decode("utf-8", "replace").strip()
    return room if room and len(room) <= 40 and not room.startswith("__") else None


@server.on_connect
def hello(socket):
    socket.emit("hello", {"id": socket.id, "instance": INSTANCE})


@server.on("join")
def join(socket, data: bytes):
    room = _room(data)
    if room is not None:
        socket.join(room)
        socket.emit("joined", room)


@server.on("leave")
def leave(socket, data: bytes):
    room = _room(data)
    if room is not None:
        socket.leave(room)
        socket.emit("left", room)


@server.on("message")
def message(socket, data: bytes):
    try:
        msg = json.loads(data)
        room, text = _room(str(msg["room"]).encode()), str(msg["text"])
    except (ValueError, KeyError, TypeError):
        return
    if room is not None and socket.in_room(room) and text.strip():
        socket.roomcast(room, "message", {"room": room, **_stamp(socket, text)})


@server.on("announce")
def announce(socket, data: bytes):
    text = data.decode("utf-8", "replace")
    if text.strip():
        socket.broadcast("announcement", _stamp(socket, text))


@server.on("dm")
def dm(socket, data: bytes):
    try:
        msg = json.loads(data)
        to, text = str(msg["to"]), str(msg["text"])
    except (ValueError, KeyError, TypeError):
        return
    if to and text.strip():
        socket.socketcast(to, "dm", _stamp(socket, text))
