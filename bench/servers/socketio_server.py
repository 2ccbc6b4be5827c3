"""The benchmark app on python-socketio's AsyncServer (aiohttp, websocket transport only).

Same app as the sac-sock servers, in Socket.IO v5 events (string payloads):
``join`` room -> enter_room + emit ``joined``; ``pub`` "room|data" -> emit ``m`` to the
room; ``echo`` data -> emit ``echo`` back. Library defaults otherwise (async_handlers,
ping interval 25 s).

    python bench/servers/socketio_server.py --port 8082

Prints ``READY {...}`` once listening; stops on SIGTERM/SIGINT or stdin EOF.
"""

from __future__ import annotations

import argparse
import asyncio

import socketio
from aiohttp import web
from rawserver import ready_until_stopped

sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"], logger=False,
                           engineio_logger=False)


@sio.on("join")
async def join(sid: str, room: str) -> None:
    await sio.enter_room(sid, room)
    await sio.emit("joined", room, to=sid)


@sio.on("pub")
async def pub(sid: str, data: str) -> None:
    room, _, body = data.partition("|")
    await sio.emit("m", body, room=room)


@sio.on("echo")
async def echo(sid: str, data: str) -> None:
    await sio.emit("echo", data, to=sid)


async def main(port: int) -> None:
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await ready_until_stopped(port)
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8082)
    asyncio.run(main(parser.parse_args().port))
