"""Rate limits for what clients can make a gateway do: log lines and messages. Pure.

- :class:`LogLimiter` lets a few log lines per key through per window and counts the rest,
  so a client that makes a handler raise on every message cannot fill the disk.
- :class:`TokenBucket` bounds the messages per second one socket may send.
"""

from __future__ import annotations

import time
from collections.abc import Callable

LIMIT_CLOSE_CODE = 1008
"""Close code for a socket that broke a limit (RFC 6455: policy violation)."""


class LogLimiter:
    """At most ``burst`` log lines per key per ``window`` seconds; the rest are counted.

    ``allow(key)`` returns ``None`` when the line must be dropped, else how many lines
    of that key were dropped since the last one let through (to say so in the line).
    Keys are few (handler names, error kinds): their number is capped at ``max_keys``,
    past which all new keys share one slot.
    """

    def __init__(
        self,
        burst: int = 5,
        window: float = 60.0,
        *,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or window <= 0:
            raise ValueError("LogLimiter needs burst >= 1 and window > 0")
        self.burst = burst
        self.window = window
        self.max_keys = max_keys
        self.suppressed_total = 0
        self._clock = clock
        # key -> [window start, lines let through in it, lines dropped since the last one]
        self._state: dict[str, list[float]] = {}

    def allow(self, key: str) -> int | None:
        now = self._clock()
        state = self._state.get(key)
        if state is None:
            if len(self._state) >= self.max_keys:
                key = "<other>"
                state = self._state.get(key)
            if state is None:
                state = self._state[key] = [now, 0, 0]
        if now - state[0] >= self.window:
            state[0], state[1] = now, 0
        if state[1] >= self.burst:
            state[2] += 1
            self.suppressed_total += 1
            return None
        state[1] += 1
        dropped, state[2] = int(state[2]), 0
        return dropped


class TokenBucket:
    """``rate`` events per second on average, bursts of up to ``burst``.

    One per socket; ``take()`` is False when the socket is over its rate.
    """

    __slots__ = ("rate", "burst", "_tokens", "_last", "_clock")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("TokenBucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self.rate
        self._last = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False
