"""RoomShardActor: owns the ShardTable of the rooms hashed to it and tells each room's
holders who else holds it (gateways then send casts straight to each other; no cast
passes through a shard, which keeps every publisher's casts in one ordered queue).

What it tells: a gateway that starts holding a room (or resyncs, or hears from a rebuilt
shard) gets the room's full holder list (``Holders``); every other holder and watcher gets
only the change (``HolderAdded`` / ``HolderRemoved``), so a join costs O(holders) bytes,
not O(holders^2). A watcher's first word is its ``Watched`` answer (a full list). Each
gateway's ops leave through one ordered Outbox, so a change never overtakes the list it
applies to; a gateway that has no list for a room ignores changes to it (it casts to every
gateway meanwhile).

Each incarnation has a random ``epoch`` returned by every call, so gateways notice a
restart and resend their rooms (the table is rebuilt from the gateways, never persisted).
While a new incarnation's table is incomplete it tells no gateway anything: the first
gateway to resync would otherwise hear that it alone holds its rooms and stop sending
casts to the others. It tells every room's holders once each gateway of the cluster (as
the hellos list them) has said hello, or ``REBUILD_SECONDS`` after the first hello (or
the first join). A join applied meanwhile is confirmed (``apply`` returns) only once the
rebuild is complete and the room's holders were told, so the join guarantee holds across
a restart; ``hello`` and ``ping`` never wait, so a gateway's resync (which its 1 s ping
starts) is never stuck behind its own deferred join.
A plain class: gateways are reached through ``rt`` (``rayio`` by default).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable
from functools import partial
from typing import Any

from ..batching import Outbox
from ..ops import HolderAdded, HolderRemoved, Holders, Join, Leave, ShardOp, Unwatch, Watch, Watched
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
        self.joins_deferred = 0  # joins confirmed only once the rebuild was complete
        self.expected: set[str] = set()  # every gateway of the cluster, as the hellos list them
        self.greeted: set[str] = set()
        self.deferred: set[str] | None = set()  # rooms to tell about once rebuilt (None: rebuilt)
        self._unanswered: list[tuple[str, str, int]] = []  # Watch answers held while rebuilding
        self._rebuild_timer: asyncio.TimerHandle | None = None
        self._rebuilt_event: asyncio.Event | None = None  # made by the first join that waits

    async def ping(self) -> str:
        return self.epoch

    async def node_id(self) -> str:
        """The Ray node this incarnation runs on (for operators and tests)."""
        return str(self.rt.node_id())

    async def hello(
        self, gateway_id: str, handle: Any, rooms: list[str], gateways: tuple = (), fresh: bool = False
    ) -> str:
        """A gateway (re)introduces itself with every room of this shard it holds, and the
        ids of every gateway it knows (``gateways``); ``fresh``: a new incarnation of it
        (its start), which watches no room yet. Never waits."""
        self.gateways[gateway_id] = handle
        if fresh:
            self.table.drop_watches(gateway_id)
        if gateway_id not in self.outboxes:
            self.outboxes[gateway_id] = Outbox(
                self.rt.sender(handle, "receive"), on_error=partial(self._lost, gateway_id)
            )
        self.greeted.add(gateway_id)
        self.expected.update(gateways)
        changed = self.table.reset_gateway(gateway_id, rooms)
        if self.deferred is not None:
            self.deferred |= changed
            if self.expected <= self.greeted:
                self._rebuilt()
            else:
                self._start_rebuild_timer()
            return self.epoch
        self._tell_change(gateway_id, {room: self.table.holds(room, gateway_id) for room in changed})
        for room in set(rooms):  # its lists may be stale or missing: the whole list, to it only
            self._send(gateway_id, Holders(room, tuple(self.table.gateways(room))))
        return self.epoch

    def _start_rebuild_timer(self) -> None:
        if self._rebuild_timer is None:
            self._rebuild_timer = asyncio.get_running_loop().call_later(REBUILD_SECONDS, self._rebuilt)

    def _rebuilt(self) -> None:
        """The table is complete (or waited for long enough): tell each room's holders the
        whole list, answer the watches made meanwhile, confirm the joins made meanwhile."""
        if self.deferred is None:
            return
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
        rooms, self.deferred = self.deferred, None
        missing = self.expected - self.greeted
        if missing:
            log.warning("shard %d: rebuilt without gateways %s", self.index, sorted(missing))
        for room in rooms:  # every watch of this incarnation is answered below (a full list)
            holders = tuple(self.table.gateways(room))
            op = Holders(room, holders)
            for gid in holders:
                self._send(gid, op)
        unanswered, self._unanswered = self._unanswered, []
        for room, gid, seq in unanswered:  # watchers until now sent those casts everywhere
            if gid in self.table.watchers(room):
                self._send(gid, Watched(room, tuple(self.table.gateways(room)), seq))
        if self._rebuilt_event is not None:
            self._rebuilt_event.set()

    async def drop_gateway(self, gateway_id: str) -> int:
        """Forget a gateway that is gone for good: it no longer holds nor watches any room,
        and the other holders of its rooms are told. Returns how many rooms it held."""
        self.gateways.pop(gateway_id, None)
        self.outboxes.pop(gateway_id, None)
        self.expected.discard(gateway_id)
        self.table.drop_watches(gateway_id)
        rooms = self.table.drop_gateway(gateway_id)
        if self.deferred is not None:
            self.deferred |= rooms
            if self.expected <= self.greeted:
                self._rebuilt()
        else:
            self._tell_change(gateway_id, dict.fromkeys(rooms, False))
        return len(rooms)

    async def apply(self, gateway_id: str, ops: list[ShardOp]) -> str:
        """Joins, leaves, watches and unwatches from one gateway, in order.

        Returns once every other gateway holding or watching a room joined here has been
        told (the caller holds its joining sockets' frames until then; see Hub.join); while
        the table is being rebuilt, that is once it is rebuilt.
        """
        table = self.table
        held_before: dict[str, bool] = {}  # rooms whose holders changed: held by the caller before?
        joined: set[str] = set()
        for op in ops:
            if type(op) is Join:
                if table.add(op.room, gateway_id):
                    held_before.setdefault(op.room, False)
                    joined.add(op.room)
            elif type(op) is Leave:
                if table.remove(op.room, gateway_id):
                    held_before.setdefault(op.room, True)
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
        # every join the caller holds the room of now, new here or not: its resync hello may
        # have listed a room whose Join was still queued behind it (add() is then False),
        # and the others must know of it all the same before its sockets hear back
        confirm = {op.room for op in ops if type(op) is Join and table.holds(op.room, gateway_id)}
        if self.deferred is not None:
            self.deferred.update(held_before)
            if confirm:  # confirmed once every holder is known and told (never before hello)
                self.joins_deferred += 1
                self._start_rebuild_timer()
                if self._rebuilt_event is None:
                    self._rebuilt_event = asyncio.Event()
                await self._rebuilt_event.wait()
                await self._flush(self._concerned(confirm, gateway_id))
            return self.epoch
        now = {room: table.holds(room, gateway_id) for room in held_before}
        told = self._tell_change(gateway_id, {r: h for r, h in now.items() if h != held_before[r]})
        for room in joined:
            if now[room]:  # held anew (its hub dropped any list it had): the whole list
                self._send(gateway_id, Holders(room, tuple(table.gateways(room))))
        if confirm:
            await self._flush(told | self._concerned(confirm, gateway_id))
        return self.epoch

    def _concerned(self, rooms: Iterable[str], gateway_id: str) -> set[str]:
        """Every gateway but ``gateway_id`` holding or watching one of ``rooms``."""
        out: set[str] = set()
        for room in rooms:
            out.update(self.table.gateways(room))
            out.update(self.table.watchers(room))
        out.discard(gateway_id)
        return out

    def _tell_change(self, gateway_id: str, changes: dict[str, bool]) -> set[str]:
        """Tell the other holders and the watchers of each room that ``gateway_id`` now
        holds it (True) or no longer does (False); returns the gateways told."""
        told: set[str] = set()
        for room, added in changes.items():
            op = HolderAdded(room, gateway_id) if added else HolderRemoved(room, gateway_id)
            dests = self._concerned((room,), gateway_id)
            for gid in dests:
                self._send(gid, op)
            told |= dests
        return told

    async def _flush(self, gateways: set[str]) -> None:
        await asyncio.gather(*(self.outboxes[g].flush() for g in gateways if g in self.outboxes))

    def _send(self, gateway_id: str, op: Holders | HolderAdded | HolderRemoved | Watched) -> None:
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
            "lost": self.lost, "unknown_ops": self.unknown, "rebuilding": int(self.deferred is not None),
            "joins_deferred": self.joins_deferred,
        }
