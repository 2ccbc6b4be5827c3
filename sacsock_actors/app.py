"""AppSpec: what a gateway needs of the user's app (handlers + options), shipped to actors.

It is pickled into every gateway actor, so handlers travel by value when their module was
registered for it (the CLI does that for the served module). Pure.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from .options import ServerOptions

Handler = Callable[..., Any]


def is_async(fn: Handler) -> bool:
    """True for a coroutine function, or an object whose ``__call__`` is one."""
    call = type(fn).__call__ if not inspect.isroutine(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


class Blocking:
    """A plain handler registered with ``blocking=True``: it always runs in the thread pool."""

    __slots__ = ("fn",)

    def __init__(self, fn: Handler) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", None) or repr(self.fn)


@dataclasses.dataclass
class AppSpec:
    handlers: dict[str, Handler] = dataclasses.field(default_factory=dict)
    on_connect: Handler | None = None
    on_disconnect: Handler | None = None
    options: ServerOptions = dataclasses.field(default_factory=ServerOptions)
    static_files: dict[str, bytes] = dataclasses.field(default_factory=dict)
