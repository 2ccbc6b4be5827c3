"""Exception types. Every error this package raises derives from SacSockError."""

from __future__ import annotations


class SacSockError(Exception):
    """Root of every sacsock_actors error."""


class InvalidEventName(SacSockError, ValueError):
    """An event name is empty or holds 0x01/0x02 (it would corrupt the frame)."""


class InvalidRoomName(SacSockError, ValueError):
    """A room name is not a non-empty str."""


class EncodeError(SacSockError, TypeError):
    """Data given to emit/roomcast/broadcast cannot be encoded (not str/bytes/JSON)."""


class ConfigError(SacSockError, ValueError):
    """A server option or registration is invalid; the message says what to fix."""


class NotServingError(SacSockError, RuntimeError):
    """A server-level cast or shutdown was called while the server is not serving."""


class LimitExceeded(SacSockError, ValueError):
    """A socket went past a server limit (room name length, rooms per socket). Raised in
    the handler; the gateway then closes that socket with 1008 and counts it."""
