"""Connection-level defences of a gateway's aiohttp server.

- :class:`HandshakeGuard`: a connection must deliver a complete HTTP request (for the
  websocket path: the upgrade request) within ``handshake_timeout`` seconds, and at most
  ``max_pending_upgrades`` connections may be waiting to do so; others are aborted and
  counted. aiohttp itself waits forever for a half-sent request (slowloris).
- :class:`MaskGuard`: sits between an upgraded connection's transport and aiohttp's
  protocol and closes the connection (1002) at the first unmasked client frame, which
  aiohttp accepts (RFC 6455 section 5.1 says the server must close).
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .rfc6455 import PROTOCOL_ERROR, MaskScanner


class HandshakeGuard:
    """Bounds the time to a complete request and the number of connections without one.

    ``install(server)`` hooks the aiohttp ``web.Server`` (the runner's, after setup);
    ``middleware`` must be in the app's middlewares: it marks a connection as done.
    """

    def __init__(self, timeout: float, max_pending: int, stats: Counter[str]) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.stats = stats
        self._pending: dict[Any, asyncio.TimerHandle] = {}

    @property
    def pending(self) -> int:
        """Connections that have not sent a complete request yet."""
        return len(self._pending)

    def install(self, server: web.Server) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._opened(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._forget(handler)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _opened(self, handler: Any, transport: asyncio.Transport) -> None:
        if len(self._pending) >= self.max_pending:
            self.stats["handshakes_refused"] += 1
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._pending[handler] = loop.call_later(self.timeout, self._expire, handler, transport)

    def _expire(self, handler: Any, transport: asyncio.Transport) -> None:
        if self._pending.pop(handler, None) is not None:
            self.stats["handshake_timeouts"] += 1
            transport.abort()

    def _forget(self, handler: Any) -> None:
        timer = self._pending.pop(handler, None)
        if timer is not None:
            timer.cancel()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self._forget(request.protocol)
        return await handler(request)


_CLOSE_1002 = struct.pack("!BBH", 0x88, 2, PROTOCOL_ERROR)


class MaskGuard(asyncio.Protocol):
    """Wraps an upgraded connection's protocol; passes bytes on while frames are masked.

    At the first unmasked frame it drops the rest, writes a close frame 1002, closes the
    transport and calls ``on_violation``.
    """

    def __init__(self, inner: asyncio.Protocol, transport: asyncio.Transport,
                 on_violation: Callable[[], None]) -> None:
        self.inner = inner
        self.transport = transport
        self.scanner = MaskScanner()
        self.on_violation = on_violation

    @classmethod
    def install(cls, request: web.Request, on_violation: Callable[[], None]) -> MaskGuard | None:
        transport = request.transport
        if transport is None:
            return None
        guard = cls(request.protocol, transport, on_violation)
        transport.set_protocol(guard)
        return guard

    def data_received(self, data: bytes) -> None:
        if self.scanner.ok and self.scanner.feed(data):
            self.inner.data_received(data)
            return
        if not self.transport.is_closing():
            self.transport.write(_CLOSE_1002)
            self.transport.close()
            self.on_violation()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
