"""The messages actors send each other: one small immutable type per meaning. Pure.

Ops travel in batches (lists), one Ray call per batch (see ``batching.Outbox``).

    gateway -> shard:    Join(room)  Leave(room)  Watch(room, seq)  Unwatch(room)
    shard -> gateway:    Holders(room, gateways)  Watched(room, gateways, seq)
                         HolderAdded(room, gateway)  HolderRemoved(room, gateway)
    gateway -> gateway:  Deliver(room, wire)  DeliverAll(wire)
    driver or bridge
      -> a gateway:      StartRoomcast(room, frame, publish)  StartBroadcast(frame, publish)
    gateway -> bridge:   Publish(room, frame)

``wire`` is a complete websocket frame (the exact bytes written to every member); a
``frame`` is the sac-sock :class:`~sacsock_actors.protocol.Frame` a cast was encoded to.
Each receiver dispatches its ops in one place (``Hub.receive``, ``RoomShardActor.apply``,
``BridgeActor.publish``) and counts an op it does not know.

NamedTuples: built and pickled a few microseconds slower than bare tuples, and sent once
per cast and destination gateway, never per member (measured in docs/architecture.md).
"""

from __future__ import annotations

from typing import NamedTuple

from .protocol import Frame


class Join(NamedTuple):
    """The sending gateway now holds members of ``room``."""

    room: str


class Leave(NamedTuple):
    """The sending gateway no longer holds members of ``room``."""

    room: str


class Holders(NamedTuple):
    """The shard's word on every gateway that holds ``room`` (the receiver included): the
    base list, sent to a gateway that holds the room anew, resyncs, or hears from a rebuilt
    shard; later changes come as :class:`HolderAdded` / :class:`HolderRemoved`."""

    room: str
    gateways: tuple[str, ...]


class HolderAdded(NamedTuple):
    """A change to a room's holders the receiver already has a base list for (a
    :class:`Holders` or :class:`Watched` from the same shard): ``gateway`` now holds it.
    A receiver without a base list ignores it (it still casts to every gateway, and the
    shard sends it a full list first)."""

    room: str
    gateway: str


class HolderRemoved(NamedTuple):
    """As :class:`HolderAdded`: ``gateway`` no longer holds ``room``."""

    room: str
    gateway: str


class Watch(NamedTuple):
    """The sending gateway casts to ``room`` without holding it: keep it told of the
    room's holders (answer with :class:`Watched`, then :class:`Holders` on each change).
    ``seq`` tells the answer to this request from an older one's."""

    room: str
    seq: int


class Unwatch(NamedTuple):
    """The sending gateway no longer watches ``room`` (evicted from its bounded cache)."""

    room: str


class Watched(NamedTuple):
    """The shard's answer to ``Watch(room, seq)``: every gateway holding ``room`` now."""

    room: str
    gateways: tuple[str, ...]
    seq: int


class Deliver(NamedTuple):
    """A roomcast made on another gateway: write ``wire`` to the local members of ``room``."""

    room: str
    wire: bytes


class DeliverAll(NamedTuple):
    """A broadcast made on another gateway: write ``wire`` to every local socket."""

    wire: bytes


class StartRoomcast(NamedTuple):
    """A roomcast from the driver or a bridge, routed as if made on the receiving gateway;
    ``publish`` False for what came from a bridge (never handed back to one)."""

    room: str
    frame: Frame
    publish: bool


class StartBroadcast(NamedTuple):
    """A broadcast from the driver or a bridge (see :class:`StartRoomcast`)."""

    frame: Frame
    publish: bool


class Publish(NamedTuple):
    """A cast made in this cluster, for the bridges: ``room`` None for a broadcast."""

    room: str | None
    frame: Frame


ShardOp = Join | Leave | Watch | Unwatch
GatewayOp = (
    Holders | HolderAdded | HolderRemoved | Watched | Deliver | DeliverAll | StartRoomcast | StartBroadcast
)
BridgeOp = Publish
Op = ShardOp | GatewayOp | BridgeOp

CASTS: frozenset[type] = frozenset({Deliver, DeliverAll, StartRoomcast, StartBroadcast, Publish})


def count_casts(ops: list) -> int:
    """How many of ``ops`` are casts (what a lost batch costs the sockets)."""
    return sum(1 for op in ops if type(op) in CASTS)
