"""The server side of the client's end-to-end tests.

Run by the tests as ``sacsock serve e2e_app:server --static static`` from this folder.
Every handler answers with an event the browser can wait for.
"""

from __future__ import annotations

import json

from sacsock_actors import SocketServer

server = SocketServer()


@server.on_connect
def welcome(socket):
    socket.emit("welcome", socket.id)


@server.on_disconnect
def gone(socket):
    socket.broadcast("gone", socket.id)


@server.on("echo")
def echo(socket, data: bytes):
    socket.emit("echo", data.decode("utf-8"))


@server.on("echobin")
def echobin(socket, data: bytes):
    socket.emit("echobin", data)


@server.on("echojson")
async def echojson(socket, data: bytes):  # an async handler, run on the gateway's loop
    socket.emit("echojson", json.loads(data))


@server.on("join")
def join(socket, data: bytes):
    room = data.decode("utf-8")
    socket.join(room)
    socket.emit("joined", {"room": room, "rooms": sorted(socket.get_rooms())})


@server.on("leave")
def leave(socket, data: bytes):
    room = data.decode("utf-8")
    socket.leave(room)
    socket.emit("left", {"room": room, "rooms": sorted(socket.get_rooms()), "in_room": socket.in_room(room)})


@server.on("roomcast")
def roomcast(socket, data: bytes):
    msg = json.loads(data)
    socket.roomcast(msg["room"], "roomcast", {"room": msg["room"], "from": socket.id, "data": msg["data"]})


@server.on("broadcast")
def broadcast(socket, data: bytes):
    socket.broadcast("broadcast", {"from": socket.id, "data": data.decode("utf-8")})


@server.on("socketcast")
def socketcast(socket, data: bytes):
    msg = json.loads(data)
    socket.socketcast(msg["to"], "socketcast", {"from": socket.id, "data": msg["data"]})


@server.on("kick")
def kick(socket, data: bytes):
    socket.close()
