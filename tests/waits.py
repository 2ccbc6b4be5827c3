"""Bounded polls for observable states: what tests wait on instead of fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

WAIT = 30.0  # a generous bound, never a measurement


async def until(check: Callable[[], Any], timeout: float = WAIT, what: str = "state",
                interval: float = 0.05) -> Any:
    """Call ``check`` (in a thread: it may block on Ray) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(interval)


def gateway_of(served: Any, pid: int) -> str:
    """The gateway id serving in process ``pid``."""
    return next(i["gateway_id"] for i in served.infos if i["pid"] == pid)


async def holders_known(server: Any, room: str, expected: dict[str, set[str]]) -> None:
    """Wait until each gateway in ``expected`` knows exactly those other gateways hold
    ``room`` (what the room's shard tells them after joins and leaves)."""
    import ray

    gateways = server._runtime.gateways

    def check() -> bool:
        got = ray.get([gateways[g].holders.remote(room) for g in expected])
        return all(h is not None and set(h) == want for h, want in zip(got, expected.values(), strict=True))

    await until(check, what=f"holders of {room!r} = {expected}")


async def roomcast_before_mark(client: Any, i: int) -> bool:
    """Read ``client``'s messages up to the marker ``mark`` = ``i`` (socketcast after the
    roomcast ``rc`` = ``i`` by the same publisher, so ordered behind it); True if the
    roomcast came before it (the join-race tests' check)."""
    got = False
    while True:
        m = await client.recv()
        if m.event == "rc" and m.json == i:
            got = True
        elif m.event == "mark" and m.json == i:
            return got
