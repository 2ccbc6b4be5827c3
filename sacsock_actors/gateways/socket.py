"""Socket: the handle a handler gets for one connected client.

Every method is an ordinary (not async) method that never blocks: call it the same way
from any handler, async or plain, on the gateway's event loop or in its thread pool.
Encoding happens in the caller, so a bad event name or unencodable data
raises right there; the rest goes onto the gateway's loop through ``Endpoint.call``, in
call order (``emit`` and ``roomcast`` called on the loop go straight to the hub). Only
the loop changes the socket's session; the rooms a handler sees (``in_room``,
``get_rooms``) are this handle's own view, right at once after ``join``/``leave`` (kept
only once the socket joins a room: an idle socket pays nothing for it).
"""

from __future__ import annotations

from _thread import get_ident
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LimitExceeded
from ..limits import LIMIT_CLOSE_CODE
from ..protocol import check_room, encode, socket_room

if TYPE_CHECKING:
    from ..options import ServerOptions
    from .hub import Hub
    from .session import Session


class Loop(Protocol):
    """The gateway's loop as a socket uses it (the Endpoint)."""

    def call(self, fn: Callable[..., Any], *args: Any) -> None: ...
    def close_session(self, session: Session, code: int) -> None: ...


class Socket:
    """One client connection. Obtain it as the first argument of a handler."""

    __slots__ = ("_session", "_hub", "_loop", "_rooms", "_options", "_thread")

    def __init__(self, session: Session, hub: Hub, loop: Loop, options: ServerOptions | None = None) -> None:
        self._options = options  # its limits (max_room_name, max_rooms_per_socket)
        self._session = session
        self._hub = hub
        self._loop = loop
        # the loop's thread (Endpoint.loop_thread): emit and roomcast, the hot calls, go
        # straight to the hub from it; 0 (a loop that does not say): always through call()
        self._thread: int = getattr(loop, "loop_thread", 0)
        self._rooms: set[str] | None = None  # None: only the id room (see _view)

    @property
    def id(self) -> str:
        """Unique, unguessable id (32 chars of base64); also the room ``__socket_id:<id>``."""
        return self._session.id

    def emit(self, event: str, data: Any) -> None:
        """Send ``event`` to this client: str -> S, bytes-like -> B, anything else -> JSON."""
        frame = encode(event, data)
        if get_ident() == self._thread:  # Endpoint.call's own test, without its indirection
            self._hub.emit(self._session, frame)
        else:
            self._loop.call(self._hub.emit, self._session, frame)

    def join(self, room: str) -> None:
        """Join ``room`` (created if needed). ``in_room(room)`` is True at once.

        Raises LimitExceeded past ``max_room_name`` or ``max_rooms_per_socket`` (the
        gateway then closes this socket with 1008)."""
        check_room(room)
        if self._options is not None:
            try:
                _check_join_limits(self._options, self._rooms or {socket_room(self.id)}, room)
            except LimitExceeded:
                self._loop.call(self._loop.close_session, self._session, LIMIT_CLOSE_CODE)
                raise
        if not self._session.closed:
            self._view().add(room)
            self._loop.call(self._hub.join, self._session, room)

    def leave(self, room: str) -> None:
        """Leave ``room``; nothing happens if not a member. The id room cannot be left."""
        check_room(room)
        if room != socket_room(self.id):
            self._view().discard(room)
            self._loop.call(self._hub.leave, self._session, room)

    def in_room(self, room: str) -> bool:
        rooms = self._rooms
        return room == socket_room(self.id) if rooms is None else room in rooms

    def get_rooms(self) -> list[str]:
        """Rooms this socket is in, its id room ``__socket_id:<id>`` included."""
        rooms = self._rooms
        return [socket_room(self.id)] if rooms is None else list(rooms)

    def _view(self) -> set[str]:
        if self._rooms is None:
            self._rooms = {socket_room(self.id)}
        return self._rooms

    def roomcast(self, room: str, event: str, data: Any) -> None:
        """Send to every member of ``room`` in the cluster (this socket too, if a member)."""
        check_room(room)
        frame = encode(event, data)
        if get_ident() == self._thread:
            self._hub.roomcast(room, frame)
        else:
            self._loop.call(self._hub.roomcast, room, frame)

    def broadcast(self, event: str, data: Any) -> None:
        """Send to every socket in the cluster, this one included."""
        self._loop.call(self._hub.broadcast, encode(event, data))

    def socketcast(self, socket_id: str, event: str, data: Any) -> None:
        """Send to one socket anywhere in the cluster (a roomcast to its id room)."""
        self.roomcast(socket_room(socket_id), event, data)

    def close(self) -> None:
        """Close the connection (code 1000). Idempotent."""
        self._loop.call(self._loop.close_session, self._session, 1000)

    def _left_all(self) -> None:
        """Called on the loop when the socket closes: it is in no room any more."""
        self._rooms = set()

    def __repr__(self) -> str:
        return f"<Socket {self.id}>"


def _check_join_limits(options: ServerOptions, rooms: set[str], room: str) -> None:
    longest = options.max_room_name
    if longest is not None and len(room) > longest:
        raise LimitExceeded(
            f"room name of {len(room)} characters is longer than max_room_name={longest}"
        )
    most = options.max_rooms_per_socket
    if most is not None and len(rooms) > most and room not in rooms:  # rooms has the id room
        raise LimitExceeded(f"socket is already in max_rooms_per_socket={most} rooms")
