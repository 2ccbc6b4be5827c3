"""The app the fault and volume tests serve: a publisher floods a room with numbered casts."""

from __future__ import annotations

import asyncio
import json
import os

from sacsock_actors import SocketServer

_stop: set[str] = set()  # tags of floods told to stop (per gateway process)


def build(**options) -> SocketServer:
    server = SocketServer(**options)

    @server.on_connect
    def hello(socket):
        socket.emit("id", {"id": socket.id, "pid": os.getpid()})

    @server.on("join")
    async def join(socket, data):
        socket.join(data.decode())
        socket.emit("joined", data.decode())

    @server.on("echo")
    async def echo(socket, data):
        socket.emit("echo", data.decode())

    @server.on("flood")
    async def flood(socket, data):
        """{"room", "tag", "n", "per_tick", "interval"}: casts "<tag>:<i>" for i = 0..n-1
        (fewer when told to stop), ``per_tick`` every ``interval`` seconds; then
        "flood_done" with the count."""
        msg = json.loads(data)
        room, tag, per_tick = msg["room"], msg["tag"], msg.get("per_tick", 20)
        interval = msg.get("interval", 0.002)
        sent = 0
        while sent < msg["n"] and tag not in _stop:
            for _ in range(per_tick):
                socket.roomcast(room, "f", f"{tag}:{sent}")
                sent += 1
            await asyncio.sleep(interval)
        _stop.discard(tag)
        socket.emit("flood_done", {"tag": tag, "sent": sent})

    @server.on("stop")
    async def stop(socket, data):
        _stop.add(data.decode())
        socket.emit("stopping", data.decode())

    @server.on("cast")
    async def cast(socket, data):
        msg = json.loads(data)
        socket.roomcast(msg["room"], msg["event"], msg["data"])

    return server
