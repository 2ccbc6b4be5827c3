"""Logging in actor processes: one format for every actor (the driver shows their lines)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Give an actor process a root handler, once (no-op when it has one already)."""
    logging.basicConfig(level=level, format=FORMAT)


class Throttle:
    """At most one log line per key per ``every`` seconds; the next one says how many were
    held back. For transports that fail the same way many times a second (a dead server)."""

    def __init__(self, logger: logging.Logger, every: float = 5.0) -> None:
        self.logger = logger
        self.every = every
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def log(self, level: int, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.every:
            self._held[key] += 1
            return
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like this not logged)"
            args = (*args, held)
        self.logger.log(level, msg, *args)
