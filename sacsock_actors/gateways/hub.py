"""The routing brain of one gateway: local rooms, casts, delivery. No ray/aiohttp import.

A cast arrives as a sac-sock :class:`~sacsock_actors.protocol.Frame` (encoded once by the
caller), is framed once as a websocket frame, written to this gateway's members, and sent
onward over :class:`Links`, straight to other gateways, only where they may hold members:

- a room we hold: to the gateways the room's shard told us also hold it (none: the
  cast never leaves this process);
- a socket id room: nowhere else when the socket is here, else to the gateway whose index
  the id carries (``protocol.new_socket_id``), else (a foreign id) to every other gateway;
- a room we do not hold: we "watch" it: the first cast goes to every other gateway and
  asks the room's shard (``Watch``); its answer (``Watched``) and every later change
  (``HolderAdded``/``HolderRemoved``) tell us the holders, and later casts go only to them. A bounded LRU of
  ``watch_limit`` rooms (an evicted one is ``Unwatch``-ed);
- a room we hold whose holders we have not heard yet: to every other gateway.

The join guarantee (see ``join``) covers watchers: the shard confirms a join only once
every holder and every watcher of the room has been told (docs/routing.md).

Casts never pass through a shard: shards only track which gateways hold which rooms and
tell the holders. So every cast from this gateway to another one, of any room or a
broadcast, goes through one ordered queue (an Outbox), and a publisher's casts reach
each socket in the order they were made.

Ops to and from other actors are the types of ``ops.py``, batched per destination by
the Links; ``receive`` dispatches the ones a gateway gets.

Sans-I/O: the hub never touches a socket or the event loop. Frames for a socket collect
in its ``Session.pending``; the hub calls ``wake()`` once when there is something to
write, and its driver (the Endpoint) then takes ``sessions_to_write()`` and writes
each one's pending frames.
Unit tests drive it without an event loop.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..ops import (
    Deliver,
    DeliverAll,
    GatewayOp,
    HolderAdded,
    HolderRemoved,
    Holders,
    Join,
    Leave,
    Op,
    Publish,
    StartBroadcast,
    StartRoomcast,
    Unwatch,
    Watch,
    Watched,
)
from ..protocol import SOCKET_ID_ROOM_PREFIX, Frame, new_socket_id, socket_id_tag, socket_room
from ..rooms.table import RoomTable, shard_for
from .session import Session
from .wsframe import ws_frame

log = logging.getLogger(__name__)

#: rooms a gateway watches (casts to without holding them) at most, by default
WATCH_LIMIT = 10_000


class Links(Protocol):
    """Where a hub queues ops for other actors: each method only enqueues (the
    GatewayActor's Outboxes send them later); a test records them.

    ``socket_tag`` is this gateway's index, put in the ids of its sockets (None: plain
    random ids); ``gateway_for_tag`` maps an index back to a gateway id (None: unknown).
    An optional ``publishing`` attribute, False while there are no bridges, spares the
    hub building ``Publish`` ops for nobody (absent: True)."""

    gateway_id: str
    shard_count: int
    socket_tag: int | None

    def gateway_for_tag(self, tag: int) -> str | None: ...

    def to_shard(self, index: int, op: Op) -> None: ...
    def to_gateway(self, gateway_id: str, op: Op) -> None: ...
    def other_gateways(self) -> list[str]: ...
    def to_bridges(self, op: Op) -> None: ...


class Hub:
    """Local sockets, their rooms, and the routing of casts. Not thread-safe: call it from
    one thread (the gateway's event loop; handler threads go through Endpoint.call)."""

    def __init__(
        self, links: Links, wake: Callable[[], None] | None = None, watch_limit: int = WATCH_LIMIT
    ) -> None:
        if watch_limit < 1:
            raise ValueError(f"watch_limit must be at least 1, got {watch_limit!r}")
        self.links = links
        self.watch_limit = watch_limit
        #: called once when frames become ready to write (until ``sessions_to_write``)
        self.wake: Callable[[], None] = wake or _nothing
        self.sessions: dict[str, Session] = {}
        self.rooms: RoomTable[Session] = RoomTable()
        self._members_of = self.rooms.lookup  # room -> its member set or None (hot path)
        # for rooms held here: the other gateways that hold them too (from the shards)
        self.holders: dict[str, frozenset[str]] = {}
        self._stats: Counter[str] = Counter()
        # hot counters as plain ints (a Counter update costs more than a cast's routing
        # here); folded into ``stats`` whenever it is read
        self._frames_out = 0
        self._roomcasts = 0
        self._dirty: set[Session] = set()
        self._woken = False
        # rooms announced to their shard and not confirmed yet: (the join op, held sessions)
        self._joining: dict[str, tuple[Join, list[Session]]] = {}
        # rooms cast to and not held here, LRU first: (seq of our Watch, the holders the
        # shard told us, or None until its Watched answers that very Watch)
        self.watched: OrderedDict[str, tuple[int, frozenset[str] | None]] = OrderedDict()
        self._watch_seq = 0

    @property
    def stats(self) -> Counter[str]:
        """This gateway's counters (the Endpoint and Dispatcher add theirs to it too)."""
        stats = self._stats
        if self._frames_out:
            stats["frames_out"] += self._frames_out
            self._frames_out = 0
        if self._roomcasts:
            stats["roomcasts"] += self._roomcasts
            self._roomcasts = 0
        return stats

    def new_socket_id(self) -> str:
        """An id for a new socket here: carries this gateway's index (see Links)."""
        return new_socket_id(self.links.socket_tag)

    # ---- membership -------------------------------------------------------------------

    def attach(self, session: Session) -> None:
        """A new socket: registered and joined to its id room."""
        self.sessions[session.id] = session
        # The id room is found through self.sessions (see members): no table entry, which
        # saves a one-member set and a dict slot per socket (~0.3 KiB of ~16 KiB).
        session.rooms.add(socket_room(session.id))
        self.stats["connected"] += 1

    def leave_all(self, session: Session) -> None:
        """Leave every room, the id room included (the first step of closing)."""
        for room in list(session.rooms):
            self._leave_table(session, room)
        session.rooms.clear()

    def detach(self, session: Session) -> None:
        """A closed socket leaves every room and is forgotten."""
        self.leave_all(session)
        self.sessions.pop(session.id, None)
        self._dirty.discard(session)
        self.stats["disconnected"] += 1

    def join(self, session: Session, room: str) -> None:
        """Add ``session`` to ``room``. A room new to this gateway is announced to its shard,
        and the socket's outgoing frames are held until the shard confirms that every other
        gateway holding the room knows (``joins_confirmed``): so once the socket receives
        anything sent after its join, every later cast to the room, from anywhere, reaches it.
        """
        if session.closed:
            return
        session.rooms.add(room)
        if room.startswith(SOCKET_ID_ROOM_PREFIX):
            self.rooms.add(room, session)
            return
        if session in self.rooms.members(room):
            return
        if self.rooms.add(room, session):
            if self.watched.pop(room, None) is not None:  # held now: told as a holder
                self.links.to_shard(shard_for(room, self.links.shard_count), Unwatch(room))
            op = Join(room)
            self._joining[room] = (op, [session])
            session.held += 1
            self.links.to_shard(shard_for(room, self.links.shard_count), op)
            return
        pending = self._joining.get(room)
        if pending is not None:  # announced, not confirmed yet: wait with the others
            pending[1].append(session)
            session.held += 1

    def joins_confirmed(self, ops: list[Op]) -> None:
        """The shard has applied ``ops`` (or the call failed): release the sockets held by
        the joins among them. A join superseded by a leave and a new join is ignored."""
        for op in ops:
            if type(op) is Join:
                pending = self._joining.get(op.room)
                if pending is not None and pending[0] is op:
                    del self._joining[op.room]
                    self._release(pending[1])

    def _release(self, sessions: list[Session]) -> None:
        for session in sessions:
            session.held -= 1
            if session.held == 0 and session.pending:
                self._dirty.add(session)
                self._wake_once()

    def leave(self, session: Session, room: str) -> None:
        if room == socket_room(session.id):
            return
        session.rooms.discard(room)
        self._leave_table(session, room)

    def _leave_table(self, session: Session, room: str) -> None:
        if self.rooms.discard(room, session):
            self.holders.pop(room, None)
            pending = self._joining.pop(room, None)
            if pending is not None:  # nobody here waits for that join any more
                self._release(pending[1])
            if not room.startswith(SOCKET_ID_ROOM_PREFIX):
                self.links.to_shard(shard_for(room, self.links.shard_count), Leave(room))

    def members(self, room: str) -> Any:
        """Local members of ``room``; an id room's owner comes from ``sessions``."""
        if not room.startswith(SOCKET_ID_ROOM_PREFIX):
            return self.rooms.members(room)
        extra = self.rooms.members(room)  # others who joined someone's id room (rare)
        owner = self.sessions.get(room[len(SOCKET_ID_ROOM_PREFIX) :])
        if owner is None or room not in owner.rooms:
            return extra
        return {owner, *extra} if extra else (owner,)

    def rooms_for_shard(self, index: int) -> list[str]:
        """Rooms held here that hash to shard ``index`` (what a restarted shard needs)."""
        n = self.links.shard_count
        return [
            r
            for r in self.rooms.rooms()
            if not r.startswith(SOCKET_ID_ROOM_PREFIX) and shard_for(r, n) == index
        ]

    # ---- casts that start here -----------------------------------------------------------

    def emit(self, session: Session, frame: Frame) -> None:
        """One frame to one local socket."""
        if session.closed:
            return
        data = frame.data
        n = len(data)
        # _queue with ws_frame inlined (the short header from the table): once per echo
        session.pending.append((_SHORT_BIN if frame.binary else _SHORT_TEXT)[n] + data
                               if n < 126 else ws_frame(data, frame.binary))
        self._dirty.add(session)
        self._frames_out += 1
        if not self._woken:
            self._wake_once()

    def roomcast(self, room: str, frame: Frame, publish: bool = True) -> None:
        """A roomcast originating in this gateway (from a socket, the driver or a bridge)."""
        data = frame.data
        n = len(data)
        # the websocket frame, built once (ws_frame, with the common short header inlined)
        if n < 126:
            wire = (_SHORT_BIN if frame.binary else _SHORT_TEXT)[n] + data
        else:
            wire = ws_frame(data, frame.binary)
        to_id = room.startswith(SOCKET_ID_ROOM_PREFIX)
        local = self.members(room) if to_id else self._members_of(room)
        if local:  # _deliver, inlined: a few members is the common case
            for session in local:
                session.pending.append(wire)
            self._dirty.update(local)
            self._frames_out += len(local)
            if not self._woken:
                self._wake_once()
        self._roomcasts += 1
        if publish and getattr(self.links, "publishing", True):
            self.links.to_bridges(Publish(room, frame))
        targets: Iterable[str] | None
        if local:
            if to_id:
                return
            targets = self.holders.get(room)
            if not targets and targets is not None:  # nobody else holds it: stays here
                return
        elif to_id:
            targets = self._socket_owner(room)
        else:
            targets = self._watch(room)
        if targets is None:
            targets = self.links.other_gateways()
            self._stats["casts_to_all"] += 1
        if targets:
            op = Deliver(room, wire)
            for gid in targets:
                self.links.to_gateway(gid, op)

    def _socket_owner(self, room: str) -> tuple[str, ...] | None:
        """Where a socket id room not here goes: its owner (none when that is us: the
        socket is gone), or None (every other gateway) for an id of unknown format."""
        tag = socket_id_tag(room[len(SOCKET_ID_ROOM_PREFIX) :])
        owner = None if tag is None else self.links.gateway_for_tag(tag)
        if owner is None:
            return None
        return () if owner == self.links.gateway_id else (owner,)

    def _watch(self, room: str) -> frozenset[str] | None:
        """The holders of a room not held here, as far as its shard told us; None (every
        other gateway) until the shard answered. Starts watching the room if need be."""
        entry = self.watched.get(room)
        if entry is not None:
            self.watched.move_to_end(room)
            return entry[1]
        if not self.links.other_gateways():  # alone: nobody to ask about
            return frozenset()
        self._watch_seq += 1
        self.watched[room] = (self._watch_seq, None)
        n = self.links.shard_count
        self.links.to_shard(shard_for(room, n), Watch(room, self._watch_seq))
        if len(self.watched) > self.watch_limit:
            old, _ = self.watched.popitem(last=False)
            self.links.to_shard(shard_for(old, n), Unwatch(old))
            self.stats["watches_evicted"] += 1
        return None

    def forget_watches(self, shard_index: int) -> None:
        """A shard restarted (it knows no watcher): forget what it told us about its rooms;
        casts to them go everywhere until a new Watch is answered."""
        n = self.links.shard_count
        for room in [r for r in self.watched if shard_for(r, n) == shard_index]:
            del self.watched[room]

    def broadcast(self, frame: Frame, publish: bool = True) -> None:
        """A broadcast originating in this gateway: every socket of the cluster."""
        wire = ws_frame(frame.data, frame.binary)
        self._deliver(self.sessions.values(), wire)
        self._stats["broadcasts"] += 1
        if publish and getattr(self.links, "publishing", True):
            self.links.to_bridges(Publish(None, frame))
        op = DeliverAll(wire)
        for gid in self.links.other_gateways():
            self.links.to_gateway(gid, op)

    # ---- ops from other actors ---------------------------------------------------------

    def receive(self, ops: list[GatewayOp]) -> None:
        """Apply a batch of ops sent by shards, gateways, bridges or the driver."""
        self._stats["ops_in"] += len(ops)
        for op in ops:  # type(op) is ...: exact types, fastest first (mypy narrows these)
            if type(op) is Deliver:
                room = op.room
                if room.startswith(SOCKET_ID_ROOM_PREFIX):
                    self._deliver(self.members(room), op.wire)
                else:
                    self._deliver(self._members_of(room) or (), op.wire)
            elif type(op) is DeliverAll:
                self._deliver(self.sessions.values(), op.wire)
            elif type(op) is Holders:
                if op.room in self.rooms:
                    self.holders[op.room] = frozenset(op.gateways) - {self.links.gateway_id}
                else:
                    entry = self.watched.get(op.room)
                    if entry is not None and entry[1] is not None:  # answered: keep it current
                        self.watched[op.room] = (entry[0], frozenset(op.gateways) - {self.links.gateway_id})
            elif type(op) is Watched:
                entry = self.watched.get(op.room)
                if entry is not None and entry[0] == op.seq:  # the answer to our latest Watch
                    self.watched[op.room] = (op.seq, frozenset(op.gateways) - {self.links.gateway_id})
                    self.stats["watches_answered"] += 1
            elif type(op) is HolderAdded or type(op) is HolderRemoved:
                self._holder_changed(op)
            elif type(op) is StartRoomcast:
                self.roomcast(op.room, op.frame, publish=op.publish)
            elif type(op) is StartBroadcast:
                self.broadcast(op.frame, publish=op.publish)
            else:
                self.stats["unknown_ops"] += 1
                log.warning("gateway %s: unknown op %r dropped", self.links.gateway_id, type(op).__name__)

    def _holder_changed(self, op: HolderAdded | HolderRemoved) -> None:
        """A change to a room's holders, applied to the list the shard sent before (the
        shard's ops to us are in order). No list yet (a join not answered, a watch not
        answered, a room left meanwhile): ignored, and casts still go to every gateway."""
        room, gid = op.room, op.gateway
        if gid == self.links.gateway_id:
            return
        if room in self.rooms:
            known = self.holders.get(room)
            if known is None:
                self.stats["holder_changes_ignored"] += 1
                return
            self.holders[room] = known | {gid} if type(op) is HolderAdded else known - {gid}
            return
        entry = self.watched.get(room)
        if entry is None or entry[1] is None:
            self.stats["holder_changes_ignored"] += 1
            return
        known = entry[1]
        self.watched[room] = (entry[0], known | {gid} if type(op) is HolderAdded else known - {gid})

    # ---- writing ---------------------------------------------------------------------------

    def _deliver(self, sessions: Any, wire: bytes) -> None:
        """Queue the same frame bytes for every session (hot path: no per-member await)."""
        dirty = self._dirty
        count = 0
        for session in sessions:
            session.pending.append(wire)
            dirty.add(session)
            count += 1
        if count:
            self._frames_out += count
            if not self._woken:
                self._wake_once()

    def _queue(self, session: Session, wire: bytes) -> None:
        session.pending.append(wire)
        self._dirty.add(session)
        self._frames_out += 1
        if not self._woken:
            self._wake_once()

    def _wake_once(self) -> None:
        if not self._woken:
            self._woken = True
            self.wake()

    def sessions_to_write(self) -> Iterable[Session]:
        """Take the sockets with frames ready to write: each one's ``Session.pending`` (the
        frames, in order) is for its writer to take. Sockets held by a join (see ``join``)
        are left out; they come back when released. Hot path: no per-socket work unless
        a join is pending."""
        self._woken = False
        dirty, self._dirty = self._dirty, set()
        if self._joining:  # some sockets may be held
            return [s for s in dirty if not s.held]
        return dirty


def _nothing() -> None:
    pass


# websocket headers of final text / binary frames of 0..125 bytes (see wsframe.frame_header)
_SHORT_TEXT = tuple(bytes((0x81, n)) for n in range(126))
_SHORT_BIN = tuple(bytes((0x82, n)) for n in range(126))
