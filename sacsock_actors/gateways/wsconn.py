"""One upgraded websocket connection, read by our own asyncio protocol.

aiohttp does the HTTP side of a gateway (routing, the upgrade request, the handshake
guard, origins); once it has answered 101, the endpoint hands the transport to a
:class:`WsConnection`. From then on every read goes ``data_received`` ->
:class:`~.wsparse.FrameParser` -> the socket's handler, in that call: no reader task, no
message queue, no message objects. What aiohttp had already read past the upgrade request
(a client may send frames in the same packet) is fed to the parser first, so every byte
after the upgrade is checked the same way.

Handlers keep the guarantees they had under aiohttp's reader:

- per-socket arrival order: plain handlers run inline; an ``async def`` handler is
  started at once, and if it suspends it goes on in the connection's own task (the one
  aiohttp runs the upgrade in, so ``asyncio.current_task()``, timeouts and cancellation
  behave as before), and the socket's later messages wait in its backlog behind it
  (``Dispatcher``); so do those behind a pooled handler;
- a full backlog pauses reading (``transport.pause_reading()``) until it drains;
- limits, RFC 6455 violations and closes get the close codes and counters they had
  (1002 ``unmasked_frames``/``read_errors``, 1007 ``invalid_utf8``, 1009 ``read_errors``,
  1008 ``rate_limited``/``event_name_too_long``);
- heartbeat: the endpoint calls ``heartbeat()`` every ``heartbeat / 2`` seconds (one
  timer per gateway, nothing per message but a flag); a socket silent for about
  ``heartbeat`` seconds is pinged, and dropped (``heartbeat_timeouts``, no close frame)
  when it stays silent another half period, as aiohttp's heartbeat did.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ..limits import LIMIT_CLOSE_CODE, TokenBucket
from .wsparse import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    PING,
    FrameParser,
    ProtocolError,
    Unmask,
    close_frame,
    parse_close,
    pong_frame,
    unmask_bytes,
)

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .session import Session

log = logging.getLogger(__name__)

ABNORMAL = 1006
"""No close frame: the connection ended (never sent on the wire)."""
CLOSE_TIMEOUT = 5.0
"""Seconds a socket we close has to answer our close frame before it is aborted."""

try:  # the running task, as a Task's own step sets it (C functions, ~50 ns each)
    from asyncio.tasks import _enter_task, _leave_task
except ImportError:  # pragma: no cover - not in this Python: handlers see no current task
    _enter_task = _leave_task = None  # type: ignore[assignment]


def _best_unmask() -> Unmask:
    """aiohttp's C unmask when it has one (about 2x faster at 64 B, 50x at 64 KiB than the
    pure XOR, bench/echo_ws.py), else the pure one."""
    try:
        from aiohttp._websocket.helpers import websocket_mask  # aiohttp >= 3.11
    except ImportError:  # pragma: no cover - older aiohttp
        return unmask_bytes
    if getattr(websocket_mask, "__module__", "").endswith("helpers"):  # the Python fallback
        return unmask_bytes

    def unmask(payload: bytes, mask: bytes) -> bytes:
        data = bytearray(payload)
        websocket_mask(mask, data)
        return bytes(data)

    return unmask


UNMASK = _best_unmask()

_FINISH = 0
_RESUME = 1


class _Resume:
    """Awaitable that drives a coroutine which already ran to its first suspension (it
    yielded ``first``) outside any task, so a task can take it over from there."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, None, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: the coroutine's
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(None)
                except StopIteration as stop:
                    return stop.value


class WsConnection(asyncio.Protocol):
    """The protocol of one upgraded connection (see the module docstring).

    Created by the endpoint after the 101; ``take_over(tail)`` installs it on the
    transport; ``serve()`` runs in the connection's task until the socket is finished;
    ``close(code)`` is the closing handshake ``Endpoint._finish`` awaits.
    """

    __slots__ = ("endpoint", "session", "transport", "http_protocol", "loop", "parser", "stats",
                 "dispatch", "handlers", "max_event", "bucket", "host", "_jobs", "_waiter", "reading",
                 "_finishing", "broken", "sent_close", "got_close", "lost", "_ended", "_paused", "rx",
                 "_idle", "ctx_run", "taken")

    def __init__(self, endpoint: Endpoint, session: Session, transport: asyncio.Transport,
                 http_protocol: asyncio.BaseProtocol | None) -> None:
        opts = endpoint.options
        self.endpoint = endpoint
        self.session = session
        self.transport = transport
        self.http_protocol = http_protocol  # aiohttp's: told when the connection ends
        self.loop = asyncio.get_running_loop()
        self.parser = FrameParser(opts.max_message_size, opts.check_utf8, UNMASK)
        self.stats = endpoint.hub.stats
        self.dispatch = endpoint.dispatch
        self.handlers = endpoint.spec.handlers
        self.max_event = opts.max_event_name or sys.maxsize
        rate = opts.max_messages_per_second
        self.bucket = TokenBucket(rate, max(1.0, rate)) if rate is not None else None
        self.host: asyncio.Task | None = None  # the connection's task (serve())
        # created by the first handler call that suspends (an empty deque is 760 bytes,
        # most sockets never need one)
        self._jobs: deque[tuple] | None = None
        self._waiter: asyncio.Future | None = None
        self.reading = True  # messages still go to handlers
        self._finishing = False  # the socket's finish is queued for serve()
        self.broken = False  # a protocol violation: nothing more is parsed
        self.sent_close = False
        self.got_close = False
        self.lost = False
        self._ended: asyncio.Future | None = None  # close(): the peer answered or left
        self._paused = False
        self.rx = False  # bytes arrived since the last heartbeat tick
        self._idle = 0
        self.ctx_run: Callable[..., Any] | None = None  # Context.run of the connection's task
        self.taken = False  # the transport is ours (before that, aiohttp reads its bytes)

    # ---- set-up --------------------------------------------------------------------------

    async def run(self, take_tail: Callable[[], bytes], ctx: contextvars.Context | None) -> None:
        """The connection after ``on_connect``, in its own task, whose context is ``ctx``:
        take the transport over (with what aiohttp read past the upgrade, ``take_tail()``),
        then :meth:`serve`. Every handler call of the socket then runs in ``ctx`` (which
        holds what ``on_connect`` set): reads arrive in loop callbacks, so they enter it
        (``ctx.run``), and a handler's steps after a suspension run in the task anyway.
        ``ctx`` None (Python 3.10): handler calls run in the loop's context until they
        suspend."""
        session = self.session
        try:
            tail = take_tail()
            del take_tail  # (this frame lives as long as the socket: hold nothing it needs no more)
            if self.transport.is_closing():  # the client left during on_connect
                self.lost = True
                await self.endpoint._finish(session, ABNORMAL)
                return
            self.take_over(tail)
        except BaseException:
            if not session.closed:
                self.endpoint.close_session(session, 1001)
            raise
        if ctx is not None:
            self.ctx_run = ctx.run
        await self.serve()

    def take_over(self, tail: bytes) -> None:
        """Become the transport's protocol; parse ``tail`` (bytes read past the upgrade)."""
        transport = self.transport
        transport.set_protocol(self)
        self.taken = True
        if tail:  # (here, in the connection's task, async handlers already run as it)
            self.data_received(tail)
        if _enter_task is not None:  # else handlers see no current task until they suspend
            self.host = asyncio.current_task()
        if not self._paused and not self.broken and not transport.is_reading():
            transport.resume_reading()  # aiohttp pauses while it buffers past the upgrade

    async def serve(self) -> None:
        """Run in the connection's own task: handler calls that suspended, then the end."""
        session = self.session
        try:
            while True:
                while not self._jobs:
                    self._waiter = self.loop.create_future()
                    await self._waiter
                job = self._jobs.popleft()
                if job[0] == _FINISH:
                    await self.endpoint._finish(session, job[1])
                    return
                _, fn, coro, first = job
                exc: BaseException | None = None
                try:
                    await _Resume(coro, first)
                except Exception as err:  # noqa: BLE001 - the handler's: logged by release()
                    exc = err
                self.dispatch.release(session, fn, exc)
        finally:
            self._waiter = None
            if not session.closed:  # cancelled (server shutting down)
                self.endpoint.close_session(session, 1001)

    def _push(self, job: tuple) -> None:
        if self._jobs is None:
            self._jobs = deque()
        self._jobs.append(job)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stop(self, code: int) -> None:
        """Stop handing messages to handlers and have the socket finished with ``code``
        (the first code asked for wins)."""
        self.reading = False
        if not self._finishing:
            self._finishing = True
            self._push((_FINISH, code))

    # ---- reading -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        run = self.ctx_run
        if run is None:  # the tail, in the connection's task (or Python 3.10)
            self._received(data)
        else:
            run(self._received, data)

    def _received(self, data: bytes) -> None:
        self.rx = True
        if self.broken:
            return
        error: ProtocolError | None = None
        try:
            frames = self.parser.feed(data)
        except ProtocolError as exc:
            frames, error = exc.frames, exc
        session = self.session
        stats = self.stats
        bucket = self.bucket
        handlers = self.handlers
        dispatch = self.dispatch
        for op, raw in frames:
            if op > OP_BINARY:
                self._control(op, raw)
                if self.broken:
                    return
                continue
            if not self.reading or session.closed:
                continue
            # one message: the limits, then its handler (the hot path, inline)
            stats["messages_in"] += 1
            if bucket is not None and not bucket.take():
                stats["rate_limited"] += 1
                self._stop(LIMIT_CLOSE_CODE)
                continue
            # protocol.parse_inbound, inlined: <event> 0x02 <payload>
            cut = raw.find(2)
            try:
                event = raw[:cut].decode() if cut > 0 else ""
            except UnicodeDecodeError:
                event = ""
            if not event:
                stats["ignored_frames"] += 1
                log.debug("socket %s: frame without event name ignored", session.id)
                continue
            if len(event) > self.max_event:
                stats["event_name_too_long"] += 1
                self._stop(LIMIT_CLOSE_CODE)
                continue
            handler = handlers.get(event)
            if handler is None:
                stats["unknown_events"] += 1
                log.debug("socket %s: no handler for %r", session.id, event)
                continue
            if session.backlog is None:
                if event in dispatch.inline_events:
                    dispatch.inline(handler, session.socket, raw[cut + 1 :])
                    continue
                if event in dispatch.async_events:
                    self._run_async(handler, raw[cut + 1 :])
                    continue
            if dispatch.submit(session, handler, session.socket, raw[cut + 1 :]):
                self._pause()
        if error is not None:
            self._violation(error)

    def _control(self, op: int, payload: bytes) -> None:
        if op == OP_CLOSE:
            self._on_close(payload)
        elif op == OP_PING:
            if not self.sent_close:
                self.transport.write(pong_frame(payload))
        # a pong: only its arrival (rx) matters

    def _run_async(self, fn: Any, payload: bytes) -> None:
        """Run an async handler up to its first suspension, as the connection's task."""
        coro = fn(self.session.socket, payload)
        host = self.host
        if host is not None:
            _enter_task(self.loop, host)
        try:
            first = coro.send(None)
        except StopIteration:
            return
        except Exception:  # noqa: BLE001 - logged with its traceback by failed()
            self.dispatch.failed(fn)
            return
        finally:
            if host is not None:
                _leave_task(self.loop, host)
        self.dispatch.adopt(self.session, fn)
        self._push((_RESUME, fn, coro, first))

    def _pause(self) -> None:
        """The backlog is full: read nothing more until it is half empty."""
        if self._paused:
            return
        self._paused = True
        waiter = self.session.drained
        if waiter is None or waiter.done():
            waiter = self.session.drained = self.loop.create_future()
        waiter.add_done_callback(self._resume)
        self.transport.pause_reading()

    def _resume(self, _: asyncio.Future) -> None:
        self._paused = False
        if not self.lost and not self.broken and not self.transport.is_closing():
            self.transport.resume_reading()

    def _on_close(self, payload: bytes) -> None:
        try:
            parse_close(payload)
        except ProtocolError as exc:
            self._violation(exc)
            return
        self.got_close = True
        if self.sent_close:  # the answer to ours: the closing handshake is complete
            self.transport.close()
            self._end()
        else:
            self._stop(1000)  # finished like any close; our close frame answers theirs

    def _violation(self, exc: ProtocolError) -> None:
        """RFC 6455 broken: nothing more is read; the socket is finished with its code."""
        self.broken = True
        key = {"unmasked": "unmasked_frames", "utf8": "invalid_utf8"}.get(exc.kind, "read_errors")
        self.stats[key] += 1
        if key == "read_errors":
            self.endpoint._log("read_error", logging.INFO, "socket %s: %s (close code %s)",
                               self.session.id, exc, exc.code)
        if not self.transport.is_closing():
            self.transport.pause_reading()
        self._stop(exc.code)

    # ---- the end -------------------------------------------------------------------------

    async def close(self, code: int) -> None:
        """Send our close frame (once) and end the connection: at once when the peer
        already sent its close or broke the protocol, else once it answers, or after
        ``CLOSE_TIMEOUT`` seconds (then aborted)."""
        transport = self.transport
        if self.lost or transport.is_closing():
            return
        if not self.sent_close:
            self.sent_close = True
            transport.write(close_frame(code))
        if self.got_close or self.broken:
            transport.close()
            return
        if self._ended is None:
            self._ended = self.loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._ended), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            transport.abort()

    def _end(self) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def heartbeat(self) -> None:
        """Called every ``heartbeat / 2`` s: ping a silent socket, drop one that stays silent."""
        if self.rx or not self.taken or self._paused:
            # bytes came; or aiohttp still reads them (on_connect runs); or we read nothing
            # (a full backlog): the client's pongs would not be seen, its silence is ours
            self.rx = False
            self._idle = 0
            return
        if self.lost or self.sent_close or self.transport.is_closing():
            return  # closing: close() bounds the wait for the peer
        self._idle += 1
        if self._idle == 2:
            self.transport.write(PING)
        elif self._idle > 2:
            self.stats["heartbeat_timeouts"] += 1
            self.transport.abort()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._end()
        if self.http_protocol is not None:
            self.http_protocol.connection_lost(exc)  # aiohttp's bookkeeping (and the guard's)
            self.http_protocol = None
        self._stop(ABNORMAL)
