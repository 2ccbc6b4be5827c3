"""The aiohttp side of a gateway: HTTP, the upgrade (origin check, 101), writing, close,
heartbeat. After the 101 the connection is a ``wsconn.WsConnection``'s, which reads the
frames and calls the handlers.

``Endpoint`` owns the sockets' lifecycles (docs/protocol.md):
created -> joined to its id room -> on_connect -> message loop; on close: leaves every
room -> on_disconnect -> removed. Close is idempotent. It drives the sans-I/O Hub: when
the hub wakes it, ``flush`` (once per loop tick) writes each socket's ready bytes in one
write and closes slow consumers. ``call`` is the one way onto the loop from a handler
thread. It knows nothing of Ray.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import mimetypes
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, web

from ..app import AppSpec
from ..limits import LogLimiter
from .dispatch import Dispatcher
from .guard import HandshakeGuard
from .hub import Hub
from .session import Session
from .socket import Socket
from .wsconn import WsConnection
from .wsparse import accept_key

log = logging.getLogger(__name__)

CLIENT_JS_PATH = "/sacsock.js"
HEALTH_PATH = "/healthz"

def client_js() -> bytes:
    """The browser client served at /sacsock.js (a copy of clientjs' UMD build)."""
    return resources.files("sacsock_actors").joinpath("static/sacsock.js").read_bytes()


class Endpoint:
    """Serves the websocket path, /sacsock.js and the app's static files."""

    def __init__(self, spec: AppSpec, hub: Hub, path: str) -> None:
        self.spec = spec
        self.hub = hub
        self.path = path
        self.options = spec.options
        self.pool = ThreadPoolExecutor(spec.options.handler_threads, "sacsock-handler")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._closing: set[asyncio.Task] = set()
        self._limit = spec.options.max_outgoing_buffer
        self._grace = spec.options.slow_consumer_grace
        hub.wake = self._wake
        self.dispatch = Dispatcher(spec, self.pool, hub.stats)
        #: set by drain(): /healthz answers 503 and upgrades are refused
        self.draining = False
        opts = spec.options
        self.guard = HandshakeGuard(opts.handshake_timeout, opts.max_pending_upgrades, hub.stats)
        # a client must not be able to fill the disk: repeated log lines are only counted
        self._logs = LogLimiter(burst=opts.error_log_burst, window=60.0)
        self._beat: asyncio.TimerHandle | None = None

    def install(self, runner: web.AppRunner) -> None:
        """Hook the handshake guard into the runner's server (after ``runner.setup()``)."""
        assert runner.server is not None, "runner.setup() first"
        self.guard.install(runner.server)

    def _log(self, key: str, level: int, msg: str, *args: Any) -> None:
        """Log unless ``key`` was logged too often lately (then only counted)."""
        dropped = self._logs.allow(key)
        if dropped is None:
            self.hub.stats["log_lines_suppressed"] += 1
            return
        if dropped:
            msg += f" ({dropped} similar lines not logged)"
        log.log(level, msg, *args)

    def make_app(self) -> web.Application:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self.options.heartbeat is not None and self._beat is None:
            self._beat = self._loop.call_later(self.options.heartbeat / 2, self._heartbeat)
        app = web.Application(middlewares=[self.guard.middleware])
        app.router.add_get(self.path, self.websocket)
        app.router.add_get(CLIENT_JS_PATH, self._client_js)
        app.router.add_get(HEALTH_PATH, self._health)
        if self.spec.static_files:
            app.router.add_get("/{tail:.*}", self._static)
        return app

    def _heartbeat(self) -> None:
        """Every heartbeat / 2 s: each socket pings or is dropped if silent (WsConnection)."""
        for session in list(self.hub.sessions.values()):
            if session.ws is not None:
                session.ws.heartbeat()
        assert self._loop is not None and self.options.heartbeat is not None
        self._beat = self._loop.call_later(self.options.heartbeat / 2, self._heartbeat)

    # ---- HTTP -----------------------------------------------------------------------------

    async def _client_js(self, request: web.Request) -> web.Response:
        try:
            body = client_js()
        except FileNotFoundError:
            raise web.HTTPNotFound(text="sacsock.js is not in this build") from None
        return web.Response(body=body, content_type="application/javascript")

    async def _health(self, request: web.Request) -> web.Response:
        """For load balancers: 200 while this gateway accepts sockets, 503 while draining."""
        if self.draining:
            return web.Response(status=503, text="draining\n", headers={"Retry-After": "1"})
        return web.Response(text="ok\n")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["tail"].strip("/") or "index.html"
        body = self.spec.static_files.get(name)
        if body is None:
            body = self.spec.static_files.get(name.rstrip("/") + "/index.html")
            name = name.rstrip("/") + "/index.html"
        if body is None:
            raise web.HTTPNotFound()
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=body, content_type=ctype)

    # ---- websocket --------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if self.draining:  # a load balancer retries another gateway on 503
            self.hub.stats["refused_draining"] += 1
            return web.Response(status=503, text="draining\n", headers={"Retry-After": "1"})
        origins = request.headers.getall("Origin", ())
        origin = origins[0] if origins else None
        if len(origins) > 1 or not self.options.origin_allowed(origin, request.host):
            self.hub.stats["rejected_origin"] += 1
            self._log("origin", logging.INFO, "upgrade refused: origin %r does not match host %r",
                      origins if len(origins) > 1 else origin, request.host)
            return web.Response(status=403, text="origin not allowed\n")
        ready = web.WebSocketResponse(protocols=("sac-sock",)).can_prepare(request)
        transport = request.transport
        if not ready.ok or transport is None:
            # a bad handshake: aiohttp answers it as it always did (400 and why)
            refused = web.WebSocketResponse(protocols=("sac-sock",))
            await refused.prepare(request)
            return refused
        resp = Upgraded(request.headers["Sec-WebSocket-Key"], ready.protocol)
        await resp.prepare(request)
        session = Session(self.hub.new_socket_id(), None, transport)
        conn = WsConnection(self, session, transport, request.protocol)
        session.ws = conn
        socket = Socket(session, self.hub, self, self.options)
        session.socket = socket
        self.hub.attach(session)
        try:
            if self.spec.on_connect is not None:
                await self.dispatch.call(session, self.spec.on_connect, socket)
        except BaseException:
            if not session.closed:
                self.close_session(session, WSCloseCode.GOING_AWAY)
            raise
        # Bytes that came meanwhile (or with the upgrade request) wait in aiohttp's buffer
        # for the upgraded protocol (it never gets its own websocket reader): conn.run takes
        # them with the transport. Its task's context, a copy of this one after on_connect,
        # is the one every handler call of this socket runs in.
        # (no local holds what only the hand-over needs: this frame lives as long as the socket)
        if sys.version_info >= (3, 11):  # create_task(..., context=)
            ctx = contextvars.copy_context()
            await asyncio.get_running_loop().create_task(
                conn.run(partial(_take_tail, request.protocol), ctx), context=ctx)
        else:
            await conn.run(partial(_take_tail, request.protocol), None)
        return resp

    # ---- the loop: the one way onto it, and writing ---------------------------------------

    @property
    def loop_thread(self) -> int:
        """Ident of the thread running this gateway's loop (0 before ``make_app``)."""
        return self._loop_thread

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on this gateway's loop: at once when called on it, else as
        soon as the loop gets to it, in call order. The only way a handler thread changes
        sockets or rooms (every Socket method goes through here). Never blocks."""
        if threading.get_ident() == self._loop_thread:
            fn(*args)
            return
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the gateway's loop is gone: the socket is closed anyway
            pass

    def _wake(self) -> None:
        """The hub has bytes to write: flush once, at the end of this loop tick."""
        assert self._loop is not None
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every socket's ready bytes (one write each); police slow consumers."""
        limit = self._limit
        for session in self.hub.sessions_to_write():
            pending, session.pending = session.pending, []
            transport = session.transport
            # a closing socket (``closed`` set, not yet detached) still gets the frames queued
            # before its close (Hub.emit queues none after it); its close frame follows them
            if transport is None or transport.is_closing():
                continue
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
            size = transport.get_write_buffer_size()
            if size > limit or session.over_since is not None:  # else nothing to police
                self._check_buffer(session, size, time.monotonic())

    def _check_buffer(self, session: Session, size: int, now: float) -> None:
        if size <= self._limit:
            session.over_since = None
            return
        if session.over_since is None:
            session.over_since = now
        if size > 4 * self._limit or now - session.over_since >= self._grace:
            self.hub.stats["slow_consumers_closed"] += 1
            log.warning(
                "socket %s closed as a slow consumer: %d bytes unsent (limit %d)",
                session.id, size, self._limit,
            )
            self.abort_session(session)

    def sweep_slow(self) -> None:
        """Re-check sockets above the limit (called periodically: they may get no writes)."""
        now = time.monotonic()
        for session in list(self.hub.sessions.values()):
            if session.over_since is not None and session.transport is not None:
                self._check_buffer(session, session.transport.get_write_buffer_size(), now)

    # ---- closing ---------------------------------------------------------------------------

    def close_session(self, session: Session, code: int) -> None:
        """Close a socket from the loop (Socket.close, slow consumer, shutdown). Idempotent."""
        if session.closed:
            return
        task = asyncio.get_running_loop().create_task(self._finish(session, code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def abort_session(self, session: Session) -> None:
        """Drop a slow consumer at once: it cannot even take a close frame in time."""
        if session.transport is not None:
            session.transport.abort()
        self.close_session(session, WSCloseCode.TRY_AGAIN_LATER)

    async def _finish(self, session: Session, code: int) -> None:
        if session.closed:
            return
        session.closed = True
        await self._settled(session)  # its queued handler calls first, in order
        self.hub.leave_all(session)
        if session.socket is not None:
            session.socket._left_all()
        if self.spec.on_disconnect is not None:
            await self.dispatch.call(session, self.spec.on_disconnect, session.socket)
            await self._settled(session)
        self.hub.detach(session)
        _write_pending(session)  # frames queued for it before the close go out before 1001
        if session.ws is not None:
            await session.ws.close(code)

    async def drain(self, timeout: float) -> int:
        """Graceful close: refuse new sockets (health 503), write every queued frame, wait
        (up to ``timeout`` s) until the sockets' send buffers empty, then close them all
        with 1001. Returns how many sockets were open."""
        self.draining = True
        self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while loop.time() < deadline and any(
            s.pending or (s.transport is not None and not s.transport.is_closing()
                          and s.transport.get_write_buffer_size() > 0)
            for s in self.hub.sessions.values()
        ):
            self.flush()
            await asyncio.sleep(0.02)
        return await self.close_all(WSCloseCode.GOING_AWAY)

    async def _settled(self, session: Session, timeout: float = 10.0) -> None:
        """Wait (bounded) for the socket's handler calls still queued behind the pool."""
        if session.backlog is None:
            return
        try:
            await asyncio.wait_for(self.dispatch.settled(session), timeout)
        except asyncio.TimeoutError:
            log.warning("socket %s: closed with %d handler call(s) still queued after %.0f s",
                        session.id, len(session.backlog or ()), timeout)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every socket (shutdown). Returns how many were open."""
        sessions = list(self.hub.sessions.values())
        await asyncio.gather(*(self._finish(s, code) for s in sessions), return_exceptions=True)
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        return len(sessions)


class Upgraded(web.StreamResponse):
    """The 101 answer to a websocket upgrade; the connection is then a WsConnection's."""

    def __init__(self, key: str, protocol: str | None) -> None:
        headers = {"Upgrade": "websocket", "Connection": "upgrade", "Sec-WebSocket-Accept": accept_key(key)}
        if protocol:
            headers["Sec-WebSocket-Protocol"] = protocol
        super().__init__(status=101, headers=headers)
        self.force_close()  # no HTTP keep-alive after it

    async def write_eof(self, data: bytes = b"") -> None:
        """Nothing to end: the bytes after the 101 are websocket frames."""


def _take_tail(protocol: Any) -> bytes:
    """What aiohttp's HTTP protocol read past an accepted upgrade request: it keeps those
    bytes (``_message_tail``) for a websocket reader, which this endpoint never installs."""
    tail = getattr(protocol, "_message_tail", b"")
    if tail:
        protocol._message_tail = b""
    return bytes(tail)


def _write_pending(session: Session) -> None:
    """Write what the hub queued for a closing socket and has not flushed yet."""
    pending, session.pending = session.pending, []
    transport = session.transport
    if pending and transport is not None and not transport.is_closing():
        transport.write(b"".join(pending))
