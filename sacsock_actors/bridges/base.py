"""The bridge interface (modelled on the Go ``MultihomeBackend``). Pure: no transport import.

A bridge federates this cluster with other instances (Go servers, other clusters).
It runs inside its own BridgeActor, so the whole cluster is ONE instance of the fleet:

- ``start(deliver)``: connect (and keep reconnecting; never raise because the transport
  is down). Call ``deliver(cast)`` for each message that arrives from elsewhere; it is
  routed to the cluster's sockets exactly like a local cast and never handed back to any
  bridge.
- ``publish(casts)``: casts that originated in this cluster, in order, batched. Called
  once per cast for the whole cluster (not once per gateway). Must not block the loop.
- ``shutdown()``: stop and release connections.

Write your own by subclassing :class:`Bridge`; register it with
``server.set_multihome_backend(bridge)`` before or while serving. The object is pickled
into the bridge actor, so create connections in ``start``, not in ``__init__``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

from ..protocol import Frame, decode_outbound, encode_typed


class Cast(NamedTuple):
    """One broadcast (``room`` None) or roomcast, in the form bridges carry it.

    ``type`` is the sac-sock data type char: ``"S"`` string, ``"B"`` bytes, ``"J"`` JSON;
    ``payload`` the raw bytes (UTF-8 text for S, JSON text for J).
    """

    room: str | None
    event: str
    type: str
    payload: bytes

    @classmethod
    def from_frame(cls, room: str | None, frame: Frame) -> Cast:
        event, type_char, payload = decode_outbound(frame.data)
        return cls(room, event, type_char, payload)

    def frame(self) -> Frame:
        """The sac-sock frame local sockets receive; raises on a bad event name or type."""
        return encode_typed(self.event, self.type, self.payload)


Deliver = Callable[[Cast], None]


class Bridge(abc.ABC):
    """Base class of every bridge. Subclasses implement the three coroutines."""

    #: short name used in logs and stats
    name: str = "bridge"

    @abc.abstractmethod
    async def start(self, deliver: Deliver) -> None:
        """Begin federating; return promptly (run receive loops as tasks)."""

    @abc.abstractmethod
    async def publish(self, casts: list[Cast]) -> None:
        """Hand casts that originated in this cluster to the other instances."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Stop; called after every socket of the cluster has been closed."""

    def stats(self) -> dict[str, Any]:
        """Counters for ``server.stats()`` (published, received, invalid, ...)."""
        return {}
