"""What the single-process bench servers (raw aiohttp, python-socketio, the uvloop floor)
share.

- ``await ready_until_stopped(port)`` once the server listens: prints the ``READY {json}``
  line ``bench/run.py`` (procs.Server) waits for, then returns on SIGTERM/SIGINT or when
  standard input gets a line or closes (the harness closing its pipe).
- ``ws_frame(payload, binary)``: one unmasked server frame, as the raw servers write it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import sys


async def ready_until_stopped(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fd = sys.stdin.fileno()

    def on_stdin() -> None:  # any line, or EOF: stop
        os.read(fd, 4096)
        loop.remove_reader(fd)
        stop.set()

    loop.add_reader(fd, on_stdin)
    print("READY " + json.dumps({"pid": os.getpid(), "port": port, "pids": {"server": os.getpid()}}),
          flush=True)
    await stop.wait()


def ws_frame(payload: bytes, binary: bool) -> bytes:
    first = 0x82 if binary else 0x81
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload
