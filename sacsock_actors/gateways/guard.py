"""Connection-level defences of a gateway's aiohttp server.

- :class:`HandshakeGuard`: a connection must deliver a complete HTTP request (for the
  websocket path: the upgrade request) within ``handshake_timeout`` seconds, and at most
  ``max_pending_upgrades`` connections may be waiting to do so; others are aborted and
  counted. aiohttp itself waits forever for a half-sent request (slowloris).

Upgraded connections are read by ``wsconn.WsConnection``, which checks RFC 6455 itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web


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
