"""The app the bridge tests (Redis, MongoDB, gRPC) serve on each cluster of a fleet.

``cast`` takes ``{"how": roomcast|broadcast|socketcast, "to": room/id, "event", "kind":
S|B|J, "data"}`` and makes that cast, so one client script drives every cast kind;
``burst`` makes many in a row (order tests).
"""

from __future__ import annotations

import json
from typing import Any

from sacsock_actors import SocketServer


def build() -> SocketServer:
    server = SocketServer()

    @server.on_connect
    def hello(socket):
        socket.emit("id", socket.id)

    @server.on("join")
    async def join(socket, data):
        socket.join(data.decode())
        socket.emit("joined", data.decode())

    @server.on("cast")
    async def cast(socket, data):
        """{"how": roomcast|broadcast|socketcast, "to": room/id, "event", "kind": S|B|J, "data"}"""
        msg = json.loads(data)
        value: Any = msg["data"]
        if msg["kind"] == "B":
            value = bytes.fromhex(value)
        elif msg["kind"] == "S":
            value = str(value)
        if msg["how"] == "roomcast":
            socket.roomcast(msg["to"], msg["event"], value)
        elif msg["how"] == "socketcast":
            socket.socketcast(msg["to"], msg["event"], value)
        else:
            socket.broadcast(msg["event"], value)

    @server.on("burst")
    async def burst(socket, data):
        """``room:n``: n roomcasts of ``seq`` "0".."n-1", back to back."""
        room, n = data.decode().split(":")
        for i in range(int(n)):
            socket.roomcast(room, "seq", str(i))

    @server.on("echo")
    async def echo(socket, data):
        socket.emit("echo", data.decode())

    return server
