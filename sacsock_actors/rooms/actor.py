"""RoomShardActor: owns the ShardTable of the rooms hashed to it and tells each room's
holders who else holds it (gateways then send casts straight to each other; no cast
passes through a shard, which keeps every publisher's casts in one ordered queue).

Each incarnation has a random ``epoch`` returned by every call, so gateways notice a
restart and resend their rooms (the table is rebuilt from the gateways, never persisted).
While a new incarnation's table is incomplete it tells no gateway anything: the first
gateway to resync would otherwise hear that it alone holds its rooms and stop sending
casts to the others. It tells every room's holders once each gateway of the cluster (as
the hellos list them) has said hello, or ``REBUILD_SECONDS`` after the first hello.
A plain class: gateways are reached through ``rt`` (``rayio`` by default).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from functools import partial
from typing import Any

from ..batching import Outbox
from ..ops import Holders, Join, Leave, ShardOp, Unwatch, Watch, Watched
from .table import ShardTable

log = logging.getLogger(__name__)

REBUILD_SECONDS = 10.0


class RoomShardActor:
    def __init__(self, index: int, rt: Any = None) -> None:
        if rt is None:
            from .. import rayio as rt
        self.rt = rt
        self.index = index
        self.epoch = secrets.token_hex(8)
        self.table = ShardTable()
        self.gateways: dict[str, Any] = {}
        self.outboxes: dict[str, Outbox] = {}
        self.pushed = 0
        self.lost = 0
        self.unknown = 0
        self.expected: set[str] = set()  # every gateway of the cluster, as the hellos list them
        self.greeted: set[str] = set()
        self.deferred: set[str] | None = set()  # rooms to tell about once rebuilt (None: rebuilt)
        self._unanswered: list[tuple[str, str, int]] = []  # Watch answers held while rebuilding
        self._rebuild_timer: asyncio.TimerHandle | None = None

    async def ping(self) -> str:
        return self.epoch

    async def hello(
        self, gateway_id: str, handle: Any, rooms: list[str], gateways: tuple = (), fresh: bool = False
    ) -> str:
        """A gateway (re)introduces itself with every room of this shard it holds, and the
        ids of every gateway it knows (``gateways``); ``fresh``: a new incarnation of it
        (its start), which watches no room yet."""
        self.gateways[gateway_id] = handle
        if fresh:
            self.table.drop_watches(gateway_id)
        if gateway_id not in self.outboxes:
            self.outboxes[gateway_id] = Outbox(
                self.rt.sender(handle, "receive"), on_error=partial(self._lost, gateway_id)
            )
        self.greeted.add(gateway_id)
        self.expected.update(gateways)
        self._tell_peers(self.table.reset_gateway(gateway_id, rooms))
        if self.deferred is not None:
            if self.expected <= self.greeted:
                self._rebuilt()
            elif self._rebuild_timer is None:
                self._rebuild_timer = asyncio.get_running_loop().call_later(REBUILD_SECONDS, self._rebuilt)
        return self.epoch

    def _rebuilt(self) -> None:
        """The table is complete (or waited for long enough): tell the holders."""
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
        rooms, self.deferred = self.deferred or set(), None
        missing = self.expected - self.greeted
        if missing:
            log.warning("shard %d: rebuilt without gateways %s", self.index, sorted(missing))
        self._tell_peers(rooms)
        unanswered, self._unanswered = self._unanswered, []
        for room, gid, seq in unanswered:  # watchers until now sent those casts everywhere
            if gid in self.table.watchers(room):
                self._send(gid, Watched(room, tuple(self.table.gateways(room)), seq))

    async def drop_gateway(self, gateway_id: str) -> int:
        """Forget a gateway that is gone for good: it no longer holds any room, and the
        other holders of its rooms are told. Returns how many rooms it held."""
        self.gateways.pop(gateway_id, None)
        self.outboxes.pop(gateway_id, None)
        self.expected.discard(gateway_id)
        rooms = self.table.drop_gateway(gateway_id)
        self._tell_peers(rooms)
        if self.deferred is not None and self.expected <= self.greeted:
            self._rebuilt()
        return len(rooms)

    async def apply(self, gateway_id: str, ops: list[ShardOp]) -> str:
        """Joins, leaves, watches and unwatches from one gateway, in order.

        Returns once every other gateway holding or watching a room joined here has been
        told (the caller holds its joining sockets' frames until then; see Hub.join).
        """
        table = self.table
        changed: set[str] = set()
        joined = False
        for op in ops:
            if type(op) is Join:
                if table.add(op.room, gateway_id):
                    changed.add(op.room)
                    joined = True
            elif type(op) is Leave:
                if table.remove(op.room, gateway_id):
                    changed.add(op.room)
            elif type(op) is Watch:
                table.watch(op.room, gateway_id)
                if self.deferred is not None:  # the table is incomplete: answer once rebuilt
                    self._unanswered.append((op.room, gateway_id, op.seq))
                else:
                    self._send(gateway_id, Watched(op.room, tuple(table.gateways(op.room)), op.seq))
            elif type(op) is Unwatch:
                table.unwatch(op.room, gateway_id)
            else:
                self.unknown += 1
                log.warning("shard %d: unknown op %r from %s dropped",
                            self.index, type(op).__name__, gateway_id)
        told = self._tell_peers(changed)
        told.discard(gateway_id)
        if joined and told:
            await asyncio.gather(*(self.outboxes[g].flush() for g in told if g in self.outboxes))
        return self.epoch

    def _tell_peers(self, rooms: set[str]) -> set[str]:
        """Send each room's holders and watchers the new holder set; returns the gateways
        told. While rebuilding, only remembers the rooms (see the module doc)."""
        told: set[str] = set()
        if self.deferred is not None:
            self.deferred |= rooms
            return told
        for room in rooms:
            holders = tuple(self.table.gateways(room))
            op = Holders(room, holders)
            for gid in holders:
                self._send(gid, op)
            told.update(holders)
            watchers = self.table.watchers(room)
            for gid in watchers:
                self._send(gid, op)
            told.update(watchers)
        return told

    def _send(self, gateway_id: str, op: Holders | Watched) -> None:
        out = self.outboxes.get(gateway_id)
        if out is None:
            self.lost += 1
            return
        self.pushed += 1
        out.put(op)

    def _lost(self, gateway_id: str, batch: list, exc: BaseException) -> None:
        self.lost += len(batch)
        log.warning("shard %d: %d ops to gateway %s lost: %r", self.index, len(batch), gateway_id, exc)

    async def flush(self) -> None:
        """Wait until every op queued so far has been handed to its gateway."""
        for out in list(self.outboxes.values()):
            await out.flush()

    async def stats(self) -> dict[str, int]:
        return {
            "rooms": len(self.table), "watches": self.table.watch_count(), "pushed": self.pushed,
            "lost": self.lost, "unknown_ops": self.unknown,
        }
