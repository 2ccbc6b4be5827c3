"""What the single-process bench servers (raw aiohttp, python-socketio, the uvloop floor)
share.

- ``await ready_until_stopped(port)`` once the server listens: prints the ``READY {json}``
  line ``bench/run.py`` (procs.Server) waits for, then returns on SIGTERM/SIGINT or when
  standard input gets a line or closes (the harness closing its pipe).
- ``ws_frame(payload, binary)``: one unmasked server frame, as the raw servers write it.
- ``answer(raw, transport, mine)`` / ``leave_all(transport, mine)``: the bench app over a
  bare transport, for the raw servers: ``join`` -> joins and emits ``joined``; ``pub``
  ``room|data`` -> the ``m`` frame built once, written to every member; ``echo`` -> emits
  ``echo`` back. ``mine`` is the list of rooms the connection joined.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import sys
from typing import Any

ROOMS: dict[bytes, set[Any]] = {}


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


def answer(raw: bytes, transport: Any, mine: list[bytes]) -> None:
    cut = raw.find(b"\x02")
    if cut <= 0:
        return
    event, payload = raw[:cut], raw[cut + 1:]
    if event == b"echo":
        transport.write(ws_frame(b"echo\x01B\x02" + payload, True))
    elif event == b"pub":
        room, _, data = payload.partition(b"|")
        members = ROOMS.get(room)
        if members:
            wire = ws_frame(b"m\x01B\x02" + data, True)
            for t in members:
                t.write(wire)
    elif event == b"join":
        ROOMS.setdefault(payload, set()).add(transport)
        mine.append(payload)
        transport.write(ws_frame(b"joined\x01S\x02" + payload, False))


def leave_all(transport: Any, mine: list[bytes]) -> None:
    for room in mine:
        members = ROOMS.get(room)
        if members is not None:
            members.discard(transport)
            if not members:
                del ROOMS[room]
