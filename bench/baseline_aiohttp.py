"""A minimal raw aiohttp sac-sock server: the benchmarks' "Python limit" (no Ray).

It speaks the same wire format and the same benchmark app as sacsock_actors
(``join`` -> joins and emits ``joined``; ``pub`` ``room|data`` -> roomcast ``m``;
``echo`` -> emits ``echo`` back) with nothing but one aiohttp process: each cast is
encoded once (sac-sock frame and websocket frame) and the same bytes are written to
every member's transport. No batching across casts, no shards, no actors.

    python bench/baseline_aiohttp.py --port 8081

Prints ``READY {"pid": ..., "port": ...}`` once listening; stops on SIGTERM/SIGINT or
when its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
from rawserver import ready_until_stopped, ws_frame  # noqa: E402

ROOMS: dict[bytes, set] = {}


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("sac-sock",), heartbeat=30.0, compress=False,
                               max_msg_size=1 << 20)
    await ws.prepare(request)
    transport = request.transport
    mine: list[bytes] = []
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                raw = msg.data
            elif msg.type is WSMsgType.TEXT:
                raw = msg.data.encode()
            else:
                break
            cut = raw.find(b"\x02")
            if cut <= 0:
                continue
            event, payload = raw[:cut], raw[cut + 1:]
            if event == b"pub":
                room, _, data = payload.partition(b"|")
                members = ROOMS.get(room)
                if members:
                    wire = ws_frame(b"m\x01B\x02" + data, True)
                    for t in members:
                        t.write(wire)
            elif event == b"echo":
                transport.write(ws_frame(b"echo\x01B\x02" + payload, True))
            elif event == b"join":
                ROOMS.setdefault(payload, set()).add(transport)
                mine.append(payload)
                transport.write(ws_frame(b"joined\x01S\x02" + payload, False))
    finally:
        for room in mine:
            members = ROOMS.get(room)
            if members is not None:
                members.discard(transport)
                if not members:
                    del ROOMS[room]
    return ws


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_get("/socket", websocket)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await ready_until_stopped(port)
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    asyncio.run(main(parser.parse_args().port))
