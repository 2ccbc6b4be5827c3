"""Volume: two publishers (one per gateway) flood one room spread over two gateways; every
member gets every cast of each publisher exactly once and in order. CI makes
SACSOCK_VOLUME_DELIVERIES (default 100,000) deliveries; 1,000,000 for the issue's size."""

from __future__ import annotations

import json
import os

import pytest
from flood_app import build
from test_faults_load import ROOM, member_on, room_of
from waits import until

pytestmark = pytest.mark.integration

DELIVERIES = int(os.environ.get("SACSOCK_VOLUME_DELIVERIES", "100000"))
MEMBERS = 50
RATE = 30000.0  # deliveries per second the test process reads comfortably


async def flood_and_check(pubs: dict, members: list, per_publisher: int, casts_per_s: float) -> int:
    """Each publisher (tag "A"/"B") floods ROOM with ``per_publisher`` numbered casts at
    ``casts_per_s``; every member must get each one's casts exactly once and in order.
    Returns the deliveries counted."""
    per_tick = max(1, int(casts_per_s / 200))
    for tag, pub in pubs.items():
        await pub.send("flood", json.dumps({"room": ROOM, "tag": tag, "n": per_publisher,
                                            "per_tick": per_tick, "interval": per_tick / casts_per_s}))
    for pub in pubs.values():
        done = json.loads(await pub.reply("flood_done", 600))
        assert done["sent"] == per_publisher

    def complete() -> bool:
        return all(len(m.got.get(t, [])) >= per_publisher for m in members for t in pubs)

    await until(complete, timeout=120, what="every delivery")
    for m in members:
        for tag in pubs:
            assert m.got[tag] == list(range(per_publisher)), f"{m.sid}: publisher {tag} lost/dup/disorder"
    total = sum(len(m.got[t]) for m in members for t in pubs)
    assert total == len(pubs) * per_publisher * len(members)
    return total


async def test_no_loss_duplicate_or_disorder_per_publisher(serve):
    served = serve(build(), gateways=2)
    pub_a, members = await room_of(served, MEMBERS)
    other_pid = next(i["pid"] for i in served.infos if i["pid"] != pub_a.pid)
    pub_b = await member_on(served, other_pid)
    per_publisher = DELIVERIES // (2 * MEMBERS)
    casts_per_s = RATE / MEMBERS / 2
    total = await flood_and_check({"A": pub_a, "B": pub_b}, members, per_publisher, casts_per_s)
    print(f"\nvolume: {total} deliveries over 2 gateways, 0 lost, 0 duplicated, 0 out of order")
    for m in [pub_a, pub_b, *members]:
        await m.close()
