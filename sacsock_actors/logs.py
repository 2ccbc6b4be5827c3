"""Logging in actor processes: one format for every actor (the driver shows their lines)."""

from __future__ import annotations

import logging

FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Give an actor process a root handler, once (no-op when it has one already)."""
    logging.basicConfig(level=level, format=FORMAT)
