"""How a gateway runs the user's handlers: cheap by default, never stalled twice, in order.

- ``async def`` handlers are awaited on the gateway's event loop.
- Plain ``def`` handlers are called inline on the loop too, so they cost what async ones
  do (no thread hop, and a publisher's frames still coalesce into one write per tick).
  Each inline call is timed (``perf_counter``). A handler whose call takes longer than
  ``options.blocking_threshold`` (10 ms) because it blocked (the thread gave up the CPU:
  ``time.sleep``, blocking I/O) or computed that long moves to the thread pool for good,
  logged once and counted (``handlers_moved_to_pool``). To tell that from the gateway
  merely being descheduled on a busy machine (which says nothing about the handler),
  a handler's first calls, and the next call after any slow one, are probed with
  ``getrusage(RUSAGE_THREAD)``: voluntary context switches or CPU time over the
  threshold convict it. A handler that blocks thus stalls the gateway's other sockets
  once (twice if it starts blocking only later), not on every call.
- ``server.on(event, blocking=True)`` (or ``blocking_threshold=None`` for every plain
  handler) sends a handler to the pool from its first call: no stall at all.
- While a socket has a call in the pool, its later messages wait behind it in the
  socket's backlog, so each socket's handlers run in arrival order in every mode; the
  socket's reader pauses while the backlog holds ``MAX_BACKLOG`` messages. Other sockets
  are not held up.

All state here is touched on the gateway's loop only; pool threads just run handlers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from ..app import AppSpec, Blocking, Handler, is_async
from ..errors import LimitExceeded
from ..limits import LogLimiter
from .session import Session

log = logging.getLogger(__name__)

MAX_BACKLOG = 256
"""Messages a socket may have waiting behind a pooled call before its reader pauses."""

PROBES = 3
"""Calls of a plain handler probed with getrusage: its first ones, and those after a slow one."""

_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


class Dispatcher:
    """Runs handlers for the sockets of one gateway (see the module docstring)."""

    def __init__(self, spec: AppSpec, pool: Executor, stats: Counter[str]) -> None:
        self.pool = pool
        self.stats = stats
        self.threshold = spec.options.blocking_threshold
        # a client must not be able to fill the disk: a handler's repeated errors are counted
        self._logs = LogLimiter(burst=spec.options.error_log_burst, window=60.0)
        hooks = [*spec.handlers.values(), spec.on_connect, spec.on_disconnect]
        # keyed by id: the spec keeps the handlers alive; callable objects need not hash
        self._async = {id(fn) for fn in hooks if fn is not None and is_async(fn)}
        self._pooled = {id(fn) for fn in hooks if fn is not None and (
            isinstance(fn, Blocking) or (self.threshold is None and id(fn) not in self._async))}
        self._handlers = spec.handlers
        #: events the reader may run at once: async ones awaited, plain ones called inline
        self.async_events = {e for e, fn in spec.handlers.items() if id(fn) in self._async}
        self.inline_events = {e for e, fn in spec.handlers.items()
                              if id(fn) not in self._async and id(fn) not in self._pooled}
        #: plain handlers whose next calls are probed -> probes left
        self._probing = {id(fn): PROBES for fn in hooks if fn is not None
                         and id(fn) not in self._async and id(fn) not in self._pooled}

    # ---- the reader's entry points ------------------------------------------------------

    def inline(self, fn: Handler, *args: Any) -> None:
        """Call a plain handler on the loop, timed; one that blocks moves to the pool for good."""
        if id(fn) in self._probing:
            self._probe(fn, args)
            return
        began = time.perf_counter()
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - logged with its traceback by failed()
            self.failed(fn)
        if self.threshold is not None and time.perf_counter() - began > self.threshold:
            self._probing[id(fn)] = PROBES  # slow, or descheduled: the next calls will tell

    def _probe(self, fn: Handler, args: tuple) -> None:
        before = resource.getrusage(_RUSAGE_THREAD)
        began = time.perf_counter()
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - logged with its traceback by failed()
            self.failed(fn)
        took = time.perf_counter() - began
        after = resource.getrusage(_RUSAGE_THREAD)
        threshold = self.threshold
        if threshold is not None and took > threshold:
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            if after.ru_nvcsw > before.ru_nvcsw or cpu > threshold:
                self._to_pool(fn, took)
            return  # slow because descheduled: not the handler's fault; keep probing
        left = self._probing.get(id(fn), 0) - 1
        if left > 0:
            self._probing[id(fn)] = left
        else:
            self._probing.pop(id(fn), None)

    async def call(self, session: Session, fn: Handler, *args: Any) -> None:
        """Run ``fn(*args)`` for ``session`` after whatever of it is still queued.

        Returns once the call ran (or, when it is queued behind a pooled call, once it is
        queued and the backlog has room). Never raises.
        """
        backlog = session.backlog
        if backlog is None:
            if id(fn) in self._async:
                try:
                    await fn(*args)
                except Exception:  # noqa: BLE001 - logged with its traceback by failed()
                    self.failed(fn)
                return
            if id(fn) not in self._pooled:
                self.inline(fn, *args)
                return
            backlog = session.backlog = deque()
            backlog.append((fn, args))
            self._next(session)
            return
        backlog.append((fn, args))
        if len(backlog) >= MAX_BACKLOG:
            await self.settled(session, MAX_BACKLOG // 2)

    def submit(self, session: Session, fn: Handler, *args: Any) -> bool:
        """``call`` for a reader that cannot wait (it runs in ``data_received``): run a
        plain handler now, start a pooled one, or queue behind the socket's backlog.
        Async handlers with no backlog are the reader's to run (see ``adopt``). Returns
        True when the backlog is full: the reader must pause until ``session.drained``."""
        backlog = session.backlog
        if backlog is None:
            if id(fn) in self._async:
                raise RuntimeError("submit() takes plain handlers only while the backlog is empty")
            if id(fn) not in self._pooled:
                self.inline(fn, *args)
                return False
            backlog = session.backlog = deque()
            backlog.append((fn, args))
            self._next(session)
            return False
        backlog.append((fn, args))
        return len(backlog) >= MAX_BACKLOG

    def adopt(self, session: Session, fn: Handler) -> None:
        """A call of async ``fn`` started by the reader is suspended (it goes on in the
        socket's own task): the socket's later calls wait behind it until ``release``."""
        assert session.backlog is None, "adopt() only with an empty backlog"
        session.backlog = deque([(fn, ())])

    def release(self, session: Session, fn: Handler, exc: BaseException | None) -> None:
        """The adopted call finished (``exc``: what it raised): run what waited behind it."""
        if exc is not None:
            self.failed(fn, exc)
        backlog = session.backlog
        if backlog:
            backlog.popleft()
            if len(backlog) <= MAX_BACKLOG // 2:
                self._wake(session)
        self._next(session)

    async def settled(self, session: Session, room: int = 0) -> None:
        """Wait until the socket's backlog holds at most ``room`` messages."""
        while session.backlog is not None and len(session.backlog) > room:
            waiter = session.drained
            if waiter is None or waiter.done():
                waiter = session.drained = asyncio.get_running_loop().create_future()
            await waiter

    # ---- the backlog ----------------------------------------------------------------------

    def _next(self, session: Session) -> None:
        """Start the backlog's head; run inline the plain calls that follow a pooled one."""
        backlog = session.backlog
        while backlog:
            fn, args = backlog[0]
            if id(fn) in self._pooled:
                future = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
                future.add_done_callback(functools.partial(self._done, session, fn))
                return
            if id(fn) in self._async:
                task = asyncio.get_running_loop().create_task(fn(*args))
                task.add_done_callback(functools.partial(self._done, session, fn))
                return
            backlog.popleft()
            self.inline(fn, *args)
        session.backlog = None
        self._wake(session)

    def _done(self, session: Session, fn: Handler, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.failed(fn, future.exception())
        if session.backlog:
            session.backlog.popleft()
            if len(session.backlog) <= MAX_BACKLOG // 2:
                self._wake(session)
        self._next(session)

    @staticmethod
    def _wake(session: Session) -> None:
        waiter, session.drained = session.drained, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- bookkeeping ----------------------------------------------------------------------

    def _to_pool(self, fn: Handler, took: float) -> None:
        if id(fn) in self._pooled:
            return
        self._pooled.add(id(fn))
        self._probing.pop(id(fn), None)
        self.inline_events.difference_update([e for e, h in self._handlers.items() if h is fn])
        self.stats["handlers_moved_to_pool"] += 1
        log.warning("handler %s ran %.0f ms on the event loop; it runs in the thread pool from now "
                    "on (register it with blocking=True to spare the other sockets this first stall)",
                    _name(fn), took * 1000)

    def failed(self, fn: Handler, exc: BaseException | None = None) -> None:
        """Count and log a handler's exception (at most ``error_log_burst`` tracebacks per
        handler a minute); the socket stays open. A LimitExceeded (Socket.join past a
        limit, which closed that socket with 1008) is counted apart, without a traceback."""
        exc = exc if exc is not None else sys.exc_info()[1]
        limit = isinstance(exc, LimitExceeded)
        self.stats["limits_exceeded" if limit else "handler_errors"] += 1
        dropped = self._logs.allow(f"limit:{_name(fn)}" if limit else _name(fn))
        if dropped is None:
            self.stats["log_lines_suppressed"] += 1
            return
        more = f" ({dropped} similar lines not logged)" if dropped else ""
        if limit:
            log.info("handler %s: %s; the socket is closed (1008)%s", _name(fn), exc, more)
        else:
            log.error("handler %s raised; the socket stays open%s", _name(fn), more, exc_info=exc)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
