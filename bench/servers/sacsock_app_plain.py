"""The benchmark app with plain ``def`` handlers: what most users write (upstream's style).

Same events as sacsock_app.py (join, pub, echo), plus ``block`` (sleeps 0.2 s: a handler
that blocks, for the scenario that checks it does not stall other sockets).
``cd bench/servers && sacsock serve sacsock_app_plain:server`` serves it too.
"""

from __future__ import annotations

import time

from sacsock_actors import SocketServer

server = SocketServer()


@server.on("join")
def join(socket, data: bytes) -> None:
    room = data.decode()
    socket.join(room)
    socket.emit("joined", room)


@server.on("pub")
def pub(socket, data: bytes) -> None:
    room, _, body = data.partition(b"|")
    socket.roomcast(room.decode(), "m", body)


@server.on("echo")
def echo(socket, data: bytes) -> None:
    socket.emit("echo", data)


@server.on("block")
def block(socket, data: bytes) -> None:
    time.sleep(0.2)
    socket.emit("blocked", data)
