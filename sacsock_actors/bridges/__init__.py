"""Bridges federate a cluster with other Sacrificial-Socket instances (Go or Python).

``Bridge`` is the interface (see ``base``); transports sit beside it. Transports are
imported lazily (``from sacsock_actors.bridges import RedisBridge``), so importing this
package does not need their client libraries.
"""

from typing import Any

from .base import Bridge, Cast, Deliver

__all__ = ["Bridge", "Cast", "Deliver", "GrpcBridge", "MongoBridge", "RedisBridge"]

_LAZY = {"RedisBridge": ".redis_bridge", "MongoBridge": ".mongo_bridge", "GrpcBridge": ".grpc_bridge"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
