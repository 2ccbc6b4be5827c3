"""Bridges federate a cluster with other Sacrificial-Socket instances (Go or Python).

``Bridge`` is the interface (see ``base``); transports sit beside it.
"""

from .base import Bridge, Cast, Deliver

__all__ = ["Bridge", "Cast", "Deliver"]
