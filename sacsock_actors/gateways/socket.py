"""Socket: the handle a handler gets for one connected client.

Every method is an ordinary (not async) method that never blocks: call it the same way
from an async handler (on the gateway's event loop) or a plain one (in the handler
thread pool). Encoding happens in the caller, so a bad event name or unencodable data
raises right there; the rest is handed to the gateway's loop in call order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRoomName
from ..protocol import encode, socket_room

if TYPE_CHECKING:
    import asyncio

    from .hub import Hub
    from .session import Session


class Socket:
    """One client connection. Obtain it as the first argument of a handler."""

    __slots__ = ("_session", "_hub", "_loop", "_loop_thread", "_close")

    def __init__(
        self,
        session: Session,
        hub: Hub,
        loop: asyncio.AbstractEventLoop,
        loop_thread: int,
        close: Callable[[Session, int], None],
    ) -> None:
        self._session = session
        self._hub = hub
        self._loop = loop
        self._loop_thread = loop_thread
        self._close = close

    @property
    def id(self) -> str:
        """Unique, unguessable id (32 chars of base64); also the room ``__socket_id:<id>``."""
        return self._session.id

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
            return
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the gateway's loop is gone: the socket is closed anyway
            pass

    def emit(self, event: str, data: Any) -> None:
        """Send ``event`` to this client: str -> S, bytes-like -> B, anything else -> JSON."""
        self._call(self._hub.emit, self._session, encode(event, data))

    def join(self, room: str) -> None:
        """Join ``room`` (created if needed). ``in_room(room)`` is True at once."""
        _check_room(room)
        if not self._session.closed:
            self._session.rooms.add(room)
            self._call(self._hub.join, self._session, room)

    def leave(self, room: str) -> None:
        """Leave ``room``; nothing happens if not a member. The id room cannot be left."""
        _check_room(room)
        if room != socket_room(self.id):
            self._session.rooms.discard(room)
            self._call(self._hub.leave, self._session, room)

    def in_room(self, room: str) -> bool:
        return room in self._session.rooms

    def get_rooms(self) -> list[str]:
        """Rooms this socket is in, its id room ``__socket_id:<id>`` included."""
        return list(self._session.rooms)

    def roomcast(self, room: str, event: str, data: Any) -> None:
        """Send to every member of ``room`` in the cluster (this socket too, if a member)."""
        _check_room(room)
        self._call(self._hub.roomcast, room, encode(event, data))

    def broadcast(self, event: str, data: Any) -> None:
        """Send to every socket in the cluster, this one included."""
        self._call(self._hub.broadcast, encode(event, data))

    def socketcast(self, socket_id: str, event: str, data: Any) -> None:
        """Send to one socket anywhere in the cluster (a roomcast to its id room)."""
        self.roomcast(socket_room(socket_id), event, data)

    def close(self) -> None:
        """Close the connection (code 1000). Idempotent."""
        self._call(self._close, self._session, 1000)

    def __repr__(self) -> str:
        return f"<Socket {self.id}>"


def _check_room(room: str) -> None:
    if not isinstance(room, str) or not room:
        raise InvalidRoomName(f"room name must be a non-empty str, got {room!r}")
