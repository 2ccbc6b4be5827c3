"""Room membership tables and the room -> shard mapping. Pure: no I/O.

Two levels (docs/architecture.md): a gateway keeps a :class:`RoomTable` of its own
members per room; a room shard keeps, for its rooms, which gateways hold members
(:class:`ShardTable`). A cast therefore crosses Ray once per gateway, not once per socket.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

M = TypeVar("M", bound=Hashable)


def shard_for(room: str, shards: int) -> int:
    """Index of the shard that owns ``room``: stable across processes (crc32, not hash())."""
    return zlib.crc32(room.encode("utf-8")) % shards


class RoomTable(Generic[M]):
    """room -> set of members. A room exists while it has at least one member."""

    def __init__(self) -> None:
        self._rooms: dict[str, set[M]] = {}
        #: ``lookup(room)``: the member set of ``room``, or None when it does not exist
        #: (a bound ``dict.get``: the fastest read, for hot paths; do not mutate the set)
        self.lookup = self._rooms.get

    def add(self, room: str, member: M) -> bool:
        """Add ``member``; True when this created the room (its first member)."""
        members = self._rooms.get(room)
        if members is None:
            self._rooms[room] = {member}
            return True
        members.add(member)
        return False

    def discard(self, room: str, member: M) -> bool:
        """Remove ``member`` if present; True when this removed the room's last member."""
        members = self._rooms.get(room)
        if members is None or member not in members:
            return False
        members.discard(member)
        if not members:
            del self._rooms[room]
            return True
        return False

    def members(self, room: str) -> frozenset[M] | set[M]:
        """The members of ``room`` (empty when it does not exist). Do not mutate."""
        return self._rooms.get(room, frozenset())

    def __contains__(self, room: object) -> bool:
        return room in self._rooms

    def rooms(self) -> list[str]:
        return list(self._rooms)

    def __len__(self) -> int:
        return len(self._rooms)


class ShardTable:
    """For the rooms of one shard: which gateways hold members of each room.

    Every mutation returns the rooms whose gateway set changed, so the shard can tell
    the gateways concerned (they use it to keep casts local when nobody else is in a room).
    """

    def __init__(self) -> None:
        self._table: RoomTable[str] = RoomTable()
        self._by_gateway: dict[str, set[str]] = {}
        # watchers: gateways that cast to a room without holding it (each bounds its own)
        self._watchers: RoomTable[str] = RoomTable()
        self._watching: dict[str, set[str]] = {}

    def add(self, room: str, gateway: str) -> bool:
        """Record that ``gateway`` holds members of ``room``; True if that is new."""
        held = self._by_gateway.setdefault(gateway, set())
        if room in held:
            return False
        held.add(room)
        self._table.add(room, gateway)
        return True

    def remove(self, room: str, gateway: str) -> bool:
        """Record that ``gateway`` no longer holds ``room``; True if it did."""
        held = self._by_gateway.get(gateway)
        if not held or room not in held:
            return False
        held.discard(room)
        self._table.discard(room, gateway)
        return True

    def reset_gateway(self, gateway: str, rooms: Iterable[str]) -> set[str]:
        """Replace everything known of ``gateway`` with ``rooms`` (a resync); changed rooms."""
        new = set(rooms)
        old = set(self._by_gateway.get(gateway, ()))
        for room in old - new:
            self.remove(room, gateway)
        for room in new - old:
            self.add(room, gateway)
        if not new:
            self._by_gateway.pop(gateway, None)
        return old ^ new

    def drop_gateway(self, gateway: str) -> set[str]:
        """Forget a dead gateway; returns the rooms it held."""
        return self.reset_gateway(gateway, ())

    def gateways(self, room: str) -> frozenset[str] | set[str]:
        return self._table.members(room)

    def holds(self, room: str, gateway: str) -> bool:
        """Whether ``gateway`` holds members of ``room``."""
        return room in self._by_gateway.get(gateway, ())

    def watch(self, room: str, gateway: str) -> None:
        """``gateway`` wants to be told of ``room``'s holders (held or not)."""
        self._watchers.add(room, gateway)
        self._watching.setdefault(gateway, set()).add(room)

    def unwatch(self, room: str, gateway: str) -> None:
        self._watchers.discard(room, gateway)
        rooms = self._watching.get(gateway)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._watching[gateway]

    def drop_watches(self, gateway: str) -> None:
        """Forget every room ``gateway`` watches (a new incarnation of it watches none)."""
        for room in self._watching.pop(gateway, ()):
            self._watchers.discard(room, gateway)

    def watchers(self, room: str) -> frozenset[str] | set[str]:
        return self._watchers.members(room)

    def watch_count(self) -> int:
        """(room, gateway) watch pairs held: bounded by the gateways' caches."""
        return sum(len(r) for r in self._watching.values())

    def rooms_of(self, gateway: str) -> set[str]:
        return set(self._by_gateway.get(gateway, ()))

    def __len__(self) -> int:
        return len(self._table)
