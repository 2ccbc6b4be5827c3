#!/usr/bin/env python
"""The gateway's hot path in one process, without sockets or Ray (a benchmark, not a test).

    python bench/hotpath.py            # prints a table, writes bench/results/hotpath.json

What a gateway does per cast, driven the way the endpoint drives it (``Hub`` routes,
then the endpoint's flush writes each socket's frames), into fake transports that
only count writes, so the kernel's share (most of a real fan-out) is left out and
small changes in the Python path show:

- ``fanout``: one roomcast to K local members, then the flush (ns per delivery);
- ``remote``: a ``Deliver`` op from another gateway to K members, then the flush;
- ``echo``: one emit to one socket, then the flush (ns per message);
- ``rooms``: ``Socket.roomcast`` (as a handler calls it: encode, onto the loop, route)
  to each of 1,000 rooms of 3 members out of the same 1,000 sockets, then the flush
  (ns per cast): the many-rooms scenario's per-cast path;
- ``rooms remote``: the same casts arriving as ``Deliver`` ops from another gateway;
- ``op``: building one ``Deliver`` and one cloudpickle round trip (what Ray does to a
  batch), next to a bare tuple of the same fields (ns per op).

Best of several repetitions (the least disturbed), timed in the thread's CPU time (so a
busy machine's descheduling does not count), so it compares code, not machines.
"""

from __future__ import annotations

import json
import sys
import time
import timeit
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sacsock_actors.app import AppSpec  # noqa: E402
from sacsock_actors.gateways.endpoint import Endpoint  # noqa: E402
from sacsock_actors.gateways.hub import Hub  # noqa: E402
from sacsock_actors.gateways.session import Session  # noqa: E402
from sacsock_actors.gateways.socket import Socket  # noqa: E402
from sacsock_actors.gateways.wsframe import ws_frame  # noqa: E402
from sacsock_actors.ops import Deliver  # noqa: E402
from sacsock_actors.protocol import encode  # noqa: E402

K = 1000
REPEAT = 7


class CountingTransport:
    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


class NoLinks:
    """A lone gateway: nothing leaves it; what it tells shards is kept to confirm."""

    gateway_id = "g0"
    shard_count = 2
    socket_tag = None
    publishing = False  # no bridges

    def __init__(self) -> None:
        self.shard_ops: list = []

    def to_shard(self, index, op):
        self.shard_ops.append(op)

    def to_gateway(self, gateway_id, op):
        pass

    def other_gateways(self):
        return []

    def to_bridges(self, op):
        pass


def gateway(k: int) -> tuple[Hub, Endpoint, list[Session]]:
    links = NoLinks()
    hub = Hub(links)
    endpoint = Endpoint(AppSpec(), hub, "/socket")
    hub.wake = lambda: None  # flushed by hand, as the loop would once per tick
    sessions = []
    for i in range(k):
        s = Session(f"s{i}", None, CountingTransport())
        hub.attach(s)
        hub.join(s, "room")
        sessions.append(s)
    hub.joins_confirmed(links.shard_ops)  # as the shard would: nothing is held
    return hub, endpoint, sessions


def best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=REPEAT, timer=time.thread_time)) / number


def many_rooms(rooms: int = 1000, size: int = 3) -> tuple[Socket, Hub, Endpoint, list[str]]:
    """A gateway whose 1,000 sockets are in ``rooms`` rooms of ``size`` (random, fixed seed)."""
    import random
    import threading

    hub, endpoint, sessions = gateway(1000)
    endpoint._loop_thread = threading.get_ident()  # calls from "the loop" run at once
    rng = random.Random(1)
    names = [f"r{i}" for i in range(rooms)]
    for name in names:
        for s in rng.sample(sessions, size):
            hub.join(s, name)
    hub.joins_confirmed(hub.links.shard_ops)  # type: ignore[attr-defined]
    return Socket(sessions[0], hub, endpoint), hub, endpoint, names


def main() -> None:
    from ray import cloudpickle

    hub, endpoint, sessions = gateway(K)
    frame = encode("m", b"x" * 64)
    wire = ws_frame(frame.data, frame.binary)

    def fanout() -> None:
        hub.roomcast("room", frame)
        endpoint.flush()

    def remote() -> None:
        hub.receive([Deliver("room", wire)])
        endpoint.flush()

    one = sessions[0]

    def echo() -> None:
        hub.emit(one, frame)
        endpoint.flush()

    caster, rhub, rendpoint, names = many_rooms()
    body = b"x" * 64

    def rooms() -> None:
        for name in names:
            caster.roomcast(name, "m", body)
        rendpoint.flush()

    arriving = [Deliver(name, ws_frame(b"m\x01B\x02" + body, True)) for name in names]

    def rooms_remote() -> None:
        rhub.receive(arriving)
        rendpoint.flush()

    wires = [bytes([i % 256]) * 90 for i in range(100)]
    ops = [Deliver("room", w) for w in wires]
    tuples = [("room", "room", w) for w in wires]
    rows = {
        "fanout ns/delivery": best(fanout, 100) / K * 1e9,
        "remote ns/delivery": best(remote, 100) / K * 1e9,
        "echo ns/message": best(echo, 20_000) * 1e9,
        "rooms ns/cast": best(rooms, 20) / len(names) * 1e9,
        "rooms remote ns/cast": best(rooms_remote, 20) / len(names) * 1e9,
        "op Deliver build+pickle ns": (
            best(lambda: [Deliver("room", w) for w in wires], 200)
            + best(lambda: cloudpickle.loads(cloudpickle.dumps(ops)), 200)
        ) / 100 * 1e9,
        "op bare tuple build+pickle ns": (
            best(lambda: [("room", "room", w) for w in wires], 200)
            + best(lambda: cloudpickle.loads(cloudpickle.dumps(tuples)), 200)
        ) / 100 * 1e9,
    }
    assert sum(s.transport.writes for s in sessions) > 0
    for name, value in rows.items():
        print(f"{name:<34} {value:10.0f}")
    out = BENCH / "results" / "hotpath.json"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.write_text(json.dumps({"k": K, "repeat": REPEAT, "when": when, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
