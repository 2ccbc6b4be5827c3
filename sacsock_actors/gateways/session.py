"""One connected websocket as the gateway sees it: rooms, outgoing buffer, close state.

Outgoing frames are appended to ``pending`` by the hub and written by the endpoint's
flush (once per loop tick, all pending frames of a socket in one write) straight to the
transport. The
transport's own buffer is the socket's outgoing buffer; the hub closes a socket that
stays above the limit (a slow consumer) so it never slows the others.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...


class Session:
    """State of one socket inside its gateway. Mutated only on the gateway's event loop,
    except ``rooms``, which Socket.join/leave update at once from any thread (single set
    operations, atomic under the GIL) so that ``in_room`` is right straight after."""

    __slots__ = (
        "id", "ws", "transport", "rooms", "pending", "closed", "over_since", "socket", "held",
        "backlog", "drained",
    )

    def __init__(self, sid: str, ws: Any, transport: Transport | None) -> None:
        self.id = sid
        self.ws = ws
        self.transport = transport
        self.rooms: set[str] = set()
        self.pending: list[bytes] = []
        self.closed = False
        self.over_since: float | None = None
        self.socket: Any = None
        # joins new to this gateway that the room's shard has not confirmed yet: while
        # above 0, frames for this socket stay in ``pending`` (see Hub.join)
        self.held = 0
        #: handler calls waiting behind one in the thread pool (None: nothing pooled)
        self.backlog: deque[tuple[Any, tuple]] | None = None
        self.drained: Any = None  # a future the reader awaits while the backlog is full

    def __repr__(self) -> str:
        return f"<Session {self.id} rooms={len(self.rooms)} closed={self.closed}>"
