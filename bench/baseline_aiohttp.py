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
from rawserver import answer, leave_all, ready_until_stopped  # noqa: E402


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
            answer(raw, transport, mine)
    finally:
        leave_all(transport, mine)
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
