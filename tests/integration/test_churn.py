"""Churn: connect / join / leave / disconnect cycles leave nothing behind: no sockets or
rooms in the gateway, no stale rooms in the shards, no file descriptors, memory back to
within 10% of where it started. CI runs SACSOCK_CHURN_CYCLES (default 3,000);
`SACSOCK_CHURN_CYCLES=100000 pytest tests/integration/test_churn.py` runs the issue's size."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import ray
from chat_app import build
from rawws import RawWS, frame
from waits import until

pytestmark = pytest.mark.integration

CYCLES = int(os.environ.get("SACSOCK_CHURN_CYCLES", "3000"))
AT_ONCE = 50


def proc(pid: int) -> tuple[int, int]:
    """(open file descriptors, resident KiB) of a process on this machine."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


async def cycle(port: int, i: int) -> None:
    ws = await RawWS.connect(port)
    await ws.read_frame()  # welcome
    room = f"churn-{i % 500}"
    await ws.send(frame(0x1, b"join\x02" + room.encode()))
    while not (await ws.read_frame())[1].startswith(b"join\x01"):
        pass
    await ws.send(frame(0x1, b"leave\x02" + room.encode()))
    while not (await ws.read_frame())[1].startswith(b"leave\x01"):
        pass
    await ws.send(frame(0x8, b"\x03\xe8"))  # close 1000
    await ws.close_code()
    ws.close()


async def churn(port: int, n: int) -> None:
    for start in range(0, n, AT_ONCE):
        await asyncio.gather(*(cycle(port, i) for i in range(start, min(n, start + AT_ONCE))))


async def test_churn_leaves_nothing_behind(serve):
    served = serve(build(room_shards=2))
    pid = served.infos[0]["pid"]
    shards = served.server._runtime.shards
    await churn(served.port, 500)  # warm up: imports, pools, allocator arenas

    def settled() -> dict:
        s = served.server.stats()["gw-0"]
        return s if s["sockets"] == 0 and s["rooms"] == 0 else {}

    await until(settled, what="warm-up sockets gone")
    fds0, rss0 = proc(pid)
    began = time.monotonic()
    await churn(served.port, CYCLES)
    took = time.monotonic() - began
    stats = await until(settled, what="every churned socket gone")
    assert stats["connected"] - stats["disconnected"] == 0
    assert ray.get([s.stats.remote() for s in shards]) and all(
        s["rooms"] == 0 for s in ray.get([s.stats.remote() for s in shards])
    ), "shards keep stale rooms"
    fds1, rss1 = await until(lambda: (lambda p: p if p[0] <= fds0 else None)(proc(pid)),
                             what=f"gateway fds back to {fds0}")
    assert fds1 <= fds0
    assert rss1 <= rss0 * 1.10, f"gateway RSS {rss0} KiB -> {rss1} KiB after {CYCLES} cycles"
    print(f"\nchurn: {CYCLES} cycles in {took:.1f} s; gateway fds {fds0}->{fds1}, RSS {rss0}->{rss1} KiB")
