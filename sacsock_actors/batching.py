"""Per-destination batching of calls between actors (docs/architecture.md). Pure asyncio.

An :class:`Outbox` keeps at most one call in flight to its destination. Items put while a
call is in flight (or in the same event-loop tick as the first) go together in the next
call, so a quiet system pays one call per item and a busy one many items per call. One
call in flight at a time also keeps items in the order they were put.

A destination that stops answering (a hung process, not a dead one: Ray fails calls to a
dead actor at once) would make the queue grow without end; ``max_queued`` bounds it for
outboxes whose items may be dropped (casts, never membership).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Send = Callable[[list[Any]], Awaitable[Any]]


class Outbox:
    """Batches items for one destination; ``send(batch)`` is awaited for each batch.

    ``on_result(result)`` sees what each call returned; ``on_error(batch, exc)`` sees a
    batch whose call failed (the items are not retried: the caller logs and counts them).
    With ``max_queued``, an item put while that many wait behind the call in flight is
    dropped, not queued: ``on_drop(item, first)`` sees it, ``first`` True for the first
    drop since the queue was last half empty (log that one, count them all).
    """

    def __init__(
        self,
        send: Send,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[list[Any], BaseException], None] | None = None,
        max_batch: int = 10_000,
        max_queued: int | None = None,
        on_drop: Callable[[Any, bool], None] | None = None,
    ) -> None:
        self._send = send
        self._on_result = on_result
        self._on_error = on_error
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._on_drop = on_drop
        self._dropping = False
        self._items: list[Any] = []
        self._task: asyncio.Task | None = None
        self._put = 0  # items put so far
        self._done = 0  # items whose call has finished (sent or failed)
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self.calls = 0
        self.items_sent = 0
        self.dropped = 0

    def put(self, item: Any) -> None:
        """Queue one item (or drop it: see ``max_queued``); must be called on the event loop."""
        if self._max_queued is not None and len(self._items) >= self._max_queued:
            self._drop(item)
            return
        self._items.append(item)
        self._put += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    @property
    def queued(self) -> int:
        """Items waiting behind the call in flight."""
        return len(self._items)

    def _drop(self, item: Any) -> None:
        self.dropped += 1
        first = not self._dropping
        self._dropping = True
        if self._on_drop is not None:
            self._on_drop(item, first)
        elif first:
            log.warning("outbox full (%d queued): items dropped", len(self._items))

    async def flush(self) -> None:
        """Wait until everything put so far has been sent (or has failed); dropped items
        were never put.

        Items put after this call do not delay it, so it ends even under steady load.
        """
        target = self._put
        if self._done >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        await waiter

    def _wake(self) -> None:
        done = self._done
        keep = []
        for target, waiter in self._waiters:
            if target <= done:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((target, waiter))
        self._waiters = keep

    async def _drain(self) -> None:
        try:
            while self._items:
                batch = self._items[: self._max_batch]
                del self._items[: self._max_batch]
                if self._dropping and len(self._items) * 2 <= (self._max_queued or 0):
                    self._dropping = False  # half empty again: a later drop starts an episode
                self.calls += 1
                self.items_sent += len(batch)
                try:
                    result = await self._send(batch)
                except Exception as exc:  # noqa: BLE001 - a dead peer must not kill the sender
                    if self._on_error is not None:
                        self._on_error(batch, exc)
                    else:
                        log.warning("batch of %d lost: %r", len(batch), exc)
                else:
                    if self._on_result is not None:
                        self._on_result(result)
                self._done += len(batch)
                if self._waiters:
                    self._wake()
        finally:
            self._task = None
