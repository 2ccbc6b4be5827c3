"""Connection-level defences of a gateway's aiohttp server.

- :class:`HandshakeGuard`: a connection must deliver a complete HTTP request (for the
  websocket path: the upgrade request) within ``handshake_timeout`` seconds, and at most
  ``max_pending_upgrades`` connections may be waiting to do so; others are aborted and
  counted. That holds for every request of a keep-alive connection: after a response the
  next request must be complete within the timeout again (an idle keep-alive connection is
  closed then). aiohttp itself waits for a half-sent request as long as its keep-alive
  timeout allows (an hour), however slowly it arrives (slowloris).

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
    ``middleware`` must be in the app's middlewares: it stops a connection's clock when a
    request is complete and, unless the request upgraded, starts it again once the response
    is written. A timeout counts ``handshake_timeouts`` whichever request it was.
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
        self._arm(handler, transport)

    def _arm(self, handler: Any, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        self._pending[handler] = loop.call_later(self.timeout, self._expire, handler, transport)

    def _rearm(self, request: web.BaseRequest) -> None:
        """Start the clock for the next request of a keep-alive connection still open."""
        transport = request.transport
        if transport is not None and not transport.is_closing() and request.protocol not in self._pending:
            self._arm(request.protocol, transport)

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
        try:
            response = await handler(request)
        except web.HTTPException:
            self._rearm(request)  # aiohttp writes the error response; the next request is due
            raise
        if response.status == 101 or isinstance(response, web.WebSocketResponse):
            return response  # upgraded (and over by now): the websocket has its own timeouts
        # write it here, so the next request's clock starts when this response is out
        # (prepare and write_eof are no-ops when aiohttp calls them again)
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:  # the client left: aiohttp's own write of it ignores that too
            return response
        if response.keep_alive:
            self._rearm(request)
        return response

