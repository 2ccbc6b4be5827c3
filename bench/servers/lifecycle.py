"""How a single-process bench server lives under ``bench/run.py`` (procs.Server).

``await ready_until_stopped(port)`` once the server listens: it prints the ``READY {json}``
line the harness waits for, then returns on SIGTERM/SIGINT or when standard input gets a
line or closes (the harness closing its pipe), so the caller can clean up.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
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
