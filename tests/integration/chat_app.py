"""The app the integration tests serve: one handler per behaviour under test."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

from sacsock_actors import SacSockError, SocketServer


def build(**options) -> SocketServer:
    server = SocketServer(**options)

    @server.on_connect
    def welcome(socket):
        socket.emit("welcome", {"id": socket.id, "rooms": socket.get_rooms()})

    @server.on_disconnect
    def gone(socket):
        socket.broadcast("gone", {"id": socket.id, "rooms": socket.get_rooms()})

    @server.on("echo")
    def echo(socket, data):
        socket.emit("echo", data.decode())

    @server.on("echobin")
    async def echobin(socket, data):
        socket.emit("echobin", data)

    @server.on("echojson")
    def echojson(socket, data):
        socket.emit("echojson", json.loads(data))

    @server.on("type")
    async def type_of(socket, data):
        socket.emit("type", type(data).__name__)

    @server.on("big")
    def big(socket, data):
        socket.emit("big", b"x" * int(data))

    @server.on("where")
    async def where(socket, data):
        socket.emit("where", {"pid": os.getpid(), "thread": threading.current_thread().name})

    @server.on("where_plain")
    def where_plain(socket, data):
        socket.emit("where_plain", {"thread": threading.current_thread().name})

    @server.on("where_blocking", blocking=True)
    def where_blocking(socket, data):
        socket.emit("where_blocking", {"thread": threading.current_thread().name})

    @server.on("block", blocking=True)
    def block(socket, data):
        time.sleep(float(data))
        socket.emit("unblocked", "")

    @server.on("slow")  # not declared blocking: moves to the pool after its first slow call
    def slow(socket, data):
        time.sleep(float(data))
        socket.emit("slow", data.decode())

    @server.on("fail")
    def fail(socket, data):
        raise RuntimeError("handler failure on purpose")

    @server.on("afail")
    async def afail(socket, data):
        raise RuntimeError("async handler failure on purpose")

    @server.on("misuse")
    def misuse(socket, data):
        try:
            socket.emit("bad\x01name", "x")
        except SacSockError as exc:
            socket.emit("misuse", f"{type(exc).__name__}: {exc}")

    @server.on("unencodable")
    async def unencodable(socket, data):
        try:
            socket.emit("x", object())
        except SacSockError as exc:
            socket.emit("unencodable", type(exc).__name__)

    @server.on("join")
    def join(socket, data):
        room = data.decode()
        socket.join(room)
        socket.emit("join", {"room": room, "in_room": socket.in_room(room), "rooms": socket.get_rooms()})

    @server.on("leave")
    async def leave(socket, data):
        room = data.decode()
        socket.leave(room)
        socket.emit("leave", {"room": room, "in_room": socket.in_room(room), "rooms": socket.get_rooms()})

    @server.on("roomcast")
    def roomcast(socket, data):
        msg = json.loads(data)
        socket.roomcast(msg["room"], msg["event"], msg["data"])

    @server.on("burst")
    async def burst(socket, data):
        msg = json.loads(data)
        for i in range(msg["n"]):
            socket.roomcast(msg["room"], "burst", i)

    @server.on("burst_join")
    async def burst_join(socket, data):
        """Roomcasts, joining the room half way: the route may change, the order must not."""
        msg = json.loads(data)
        for i in range(msg["n"]):
            if i == msg["n"] // 2:
                socket.join(msg["room"])
            socket.roomcast(msg["room"], "burst", i)
            await asyncio.sleep(0)

    @server.on("mixed")
    async def mixed(socket, data):
        """Interleaved roomcasts to two rooms and broadcasts, numbered."""
        msg = json.loads(data)
        for i in range(msg["n"]):
            if i % 3 == 2:
                socket.broadcast("m", i)
            else:
                socket.roomcast(msg["rooms"][i % 3], "m", i)

    @server.on("cast_mark")
    async def cast_mark(socket, data):
        """A roomcast, then a socketcast marker: one publisher, so they arrive in this order."""
        msg = json.loads(data)
        socket.roomcast(msg["room"], "rc", msg["i"])
        socket.socketcast(msg["to"], "mark", msg["i"])

    @server.on("broadcast")
    async def broadcast(socket, data):
        socket.broadcast("broadcast", data.decode())

    @server.on("socketcast")
    def socketcast(socket, data):
        msg = json.loads(data)
        socket.socketcast(msg["to"], "dm", {"from": socket.id, "text": msg["text"]})

    @server.on("close")
    def close(socket, data):
        socket.close()
        socket.close()

    @server.on("flood")
    async def flood(socket, data):
        chunk = b"f" * 65536
        for _ in range(int(data)):
            socket.emit("flood", chunk)

    return server
