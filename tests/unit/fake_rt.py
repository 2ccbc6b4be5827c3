"""Actors without Ray: plain actor objects behind handle look-alikes, in one event loop.

``Handle(obj).method.remote(*args)`` returns an awaitable that runs ``obj.method(*args)``
after one loop hop, as a Ray call would; a killed handle raises. ``FakeRt`` stands in for
``sacsock_actors.rayio`` (its sender, call and Failover are the real ones: they only use
``.remote``).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from sacsock_actors import rayio


class ActorDied(ConnectionError):
    pass


class _Method:
    def __init__(self, handle: Handle, name: str) -> None:
        self._handle = handle
        self._name = name

    def remote(self, *args: Any) -> Any:
        async def run() -> Any:
            await asyncio.sleep(0)
            if self._handle.dead:
                raise ActorDied(f"{self._name}: actor is dead")
            result = getattr(self._handle.obj, self._name)(*args)
            return await result if inspect.isawaitable(result) else result

        return run()


class Handle:
    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.dead = False

    def __getattr__(self, name: str) -> _Method:
        return _Method(self, name)


class FakeRt:
    """The part of ``rayio`` the actors use, over a dict of named handles."""

    sender = staticmethod(rayio.sender)
    call = staticmethod(rayio.call)
    Failover = rayio.Failover

    def __init__(self, registry: dict[str, Handle]) -> None:
        self.registry = registry
        self.handle: Handle | None = None  # the actor's own handle, set once built

    def get_actor(self, name: str, namespace: str | None = None) -> Handle:
        return self.registry[name]

    def me(self) -> Handle | None:
        return self.handle

    def node_id(self) -> str:
        return "node-0"

    def node_ip(self) -> str:
        return "127.0.0.1"


class FakeDriverRayio:
    """The part of ``rayio`` the driver's supervisor (``ClusterRuntime._supervise_round``)
    uses. Handles are plain strings; ``outcomes[handle]`` is the exception a call to that
    actor raises (absent: it answers). ``calls`` records (handle, method, args)."""

    class ActorDiedError(Exception):
        pass

    class ActorUnschedulableError(Exception):
        pass

    def __init__(self) -> None:
        self.outcomes: dict[str, BaseException] = {}
        self.calls: list[tuple[str, str, tuple]] = []

    def remote(self, handle: str, method: str, *args: Any) -> str:
        self.calls.append((handle, method, args))
        return handle

    def get(self, ref: str, timeout: float) -> Any:
        exc = self.outcomes.get(ref)
        if exc is not None:
            raise exc
        return {}

    def call_each(self, handles: list[str], method: str, *args: Any, timeout: float = 30.0) -> list[Any]:
        out: list[Any] = []
        for h in handles:
            self.calls.append((h, method, args))
            exc = self.outcomes.get(h)
            out.append({"error": repr(exc)} if exc is not None else None)
        return out
