"""RoomShardActor: owns the ShardTable of the rooms hashed to it and tells each room's
holders who else holds it (gateways then send casts straight to each other; no cast
passes through a shard, which keeps every publisher's casts in one ordered queue).

Each incarnation has a random ``epoch`` returned by every call, so gateways notice a
restart and resend their rooms (the table is rebuilt from the gateways, never persisted).
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

    async def ping(self) -> str:
        return self.epoch

    async def hello(self, gateway_id: str, handle: Any, rooms: list[str], fresh: bool = False) -> str:
        """A gateway (re)introduces itself with every room of this shard it holds;
        ``fresh``: a new incarnation of it (its start), which watches no room yet."""
        self.gateways[gateway_id] = handle
        if fresh:
            self.table.drop_watches(gateway_id)
        if gateway_id not in self.outboxes:
            self.outboxes[gateway_id] = Outbox(
                self.rt.sender(handle, "receive"), on_error=partial(self._lost, gateway_id)
            )
        self._tell_peers(self.table.reset_gateway(gateway_id, rooms))
        return self.epoch

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
                self._send(gateway_id, Watched(op.room, tuple(table.gateways(op.room)), op.seq))
            elif type(op) is Unwatch:
                table.unwatch(op.room, gateway_id)
            else:
                self.unknown += 1
                log.warning(
                    "shard %d: unknown op %r from %s dropped", self.index, type(op).__name__, gateway_id
                )
        told = self._tell_peers(changed)
        told.discard(gateway_id)
        if joined and told:
            await asyncio.gather(*(self.outboxes[g].flush() for g in told if g in self.outboxes))
        return self.epoch

    def _tell_peers(self, rooms: set[str]) -> set[str]:
        """Send each room's holders and watchers the new holder set; returns the gateways told."""
        told: set[str] = set()
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
