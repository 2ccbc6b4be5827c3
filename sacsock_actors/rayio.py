"""Every Ray call of the package, in one small module.

The actor classes (GatewayActor, RoomShardActor, BridgeActor) are plain classes: they
reach other actors only through the functions here, handed to them as ``rt`` (this
module by default), so a unit test can pass a fake and run them in one event loop
without ``ray.init``. The driver side (``cluster.py``) uses the rest.

Names: a *handle* is a Ray actor handle; a *sender* is an ``async send(batch)`` that
makes one remote call (what a ``batching.Outbox`` needs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

log = logging.getLogger(__name__)

NAMESPACE = "sacsock"
ACTOR_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 10_000,
    # Ray starts worker processes at niceness 15, below its own daemons and the driver:
    # right for batch tasks, wrong for the processes that serve sockets. Next to one
    # busy process per core, a gateway at 15 gets about 3% of a core (scheduler weights
    # 36 against 1024), and every socket waits. Ours run at 0, as Ray's job supervisor
    # does for itself. Merged into the job's runtime_env (its working_dir and env_vars
    # stay).
    "runtime_env": {"env_vars": {"RAY_worker_niceness": "0"}},
}

Send = Callable[[list[Any]], Awaitable[Any]]


class NoActorAvailable(RuntimeError):
    """Every actor a Failover knows failed the call."""


# ---- inside actors -------------------------------------------------------------------------


def get_actor(name: str, namespace: str = NAMESPACE) -> Any:
    """The handle of the named actor."""
    return ray.get_actor(name, namespace=namespace)


def me() -> Any:
    """The handle of the actor this code runs in."""
    return ray.get_runtime_context().current_actor


def node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def node_ip() -> str:
    """The IP address of the Ray node this code runs on."""
    return ray.util.get_node_ip_address()


def sender(handle: Any, method: str, *lead: Any) -> Send:
    """``send(batch)``: one remote call of ``handle.method(*lead, batch)``, awaited."""
    remote = getattr(handle, method).remote

    async def send(batch: list[Any]) -> Any:
        return await remote(*lead, batch)

    return send


async def call(handle: Any, method: str, *args: Any) -> Any:
    """One remote call of ``handle.method(*args)``, awaited."""
    return await getattr(handle, method).remote(*args)


class Failover:
    """Calls one of several equivalent actors: the current one and, when it fails (down or
    restarting), the next, which becomes the current one. Keeps callers' order."""

    def __init__(self, handles: list[Any], what: str) -> None:
        if not handles:
            raise ValueError("Failover needs at least one actor handle")
        self.handles = list(handles)
        self.current = 0
        self.what = what

    def set_handles(self, handles: list[Any]) -> None:
        """Use these actors from now on (the first one first)."""
        if not handles:
            raise ValueError("Failover needs at least one actor handle")
        self.handles = list(handles)
        self.current = 0

    def _next(self, exc: BaseException) -> None:
        log.warning("%s: actor unavailable (%r); trying the next", self.what, exc)
        self.current = (self.current + 1) % len(self.handles)

    async def call(self, method: str, *args: Any) -> Any:
        """Await ``method(*args)`` on the first actor that answers."""
        last: BaseException | None = None
        for _ in range(len(self.handles)):
            try:
                handle = self.handles[self.current % len(self.handles)]
                return await getattr(handle, method).remote(*args)
            except Exception as exc:  # noqa: BLE001 - down: the next one
                last = exc
                self._next(exc)
        raise NoActorAvailable(f"{self.what}: no actor answered") from last

    def call_blocking(self, method: str, *args: Any, timeout: float) -> Any:
        """As :meth:`call`, from a plain thread. A timeout is raised at once, not retried
        elsewhere (the call may have been applied)."""
        last: BaseException | None = None
        for _ in range(len(self.handles)):
            try:
                handle = self.handles[self.current % len(self.handles)]
                return ray.get(getattr(handle, method).remote(*args), timeout=timeout)
            except ray.exceptions.GetTimeoutError:
                raise
            except Exception as exc:  # noqa: BLE001 - down: the next one
                last = exc
                self._next(exc)
        raise NoActorAvailable(f"{self.what}: no actor answered") from last


# ---- the driver ------------------------------------------------------------------------------


def init(address: str | None, runtime_env: dict | None) -> bool:
    """Connect to Ray (a fresh local one when ``address`` is None) unless already
    connected; True when this call started it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "logging_level": logging.WARNING}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    if address is None:  # always a fresh local Ray, never someone else's cluster
        kwargs.update(address="local", include_dashboard=False)
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    return True


def shutdown() -> None:
    ray.shutdown()


def actor_class(cls: type) -> Any:
    """``cls`` as a Ray actor class."""
    return ray.remote(cls)


#: the label every Ray node carries with its own id
NODE_ID_LABEL = "ray.io/node-id"


def _prefer(node: str) -> dict[str, Any]:
    """Actor options: run on ``node`` while it is alive, else anywhere.

    Not ``NodeAffinitySchedulingStrategy(node, soft=True)``: for an actor that asks for no
    resources (ours: ``num_cpus=0``) Ray ignores a soft affinity and picks a random node
    (only a hard one is honoured, and a hard one makes the actor unschedulable once the
    node is gone). A node-id label selector is honoured for such actors too, and its
    fallback lets Ray re-create the actor on another node when that one dies.
    """
    return {"label_selector": {NODE_ID_LABEL: node}, "fallback_strategy": [{"label_selector": {}}]}


def supports_preferred_nodes() -> bool:
    """Whether this Ray takes the options :func:`spawn` needs for ``prefer_node``."""

    class _Probe:
        pass

    try:
        ray.remote(_Probe).options(**_prefer("probe"))
    except (TypeError, ValueError):
        return False
    return True


def spawn(
    actor_cls: Any, name: str, *args: Any, node: str | None = None, prefer_node: str | None = None
) -> Any:
    """Start a named, restartable actor: pinned to ``node`` when given (it cannot run
    anywhere else, even once that node is gone), or preferring ``prefer_node`` (see
    :func:`_prefer`), or where Ray puts it."""
    opts = dict(ACTOR_OPTIONS, name=name, namespace=NAMESPACE)
    if node is not None:
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
    elif prefer_node is not None:
        opts.update(_prefer(prefer_node))
    return actor_cls.options(**opts).remote(*args)


def call_all(handles: list[Any], method: str, *args: Any, timeout: float) -> list[Any]:
    """``method(*args)`` on every actor at once; every result, or the first error."""
    return ray.get([getattr(h, method).remote(*args) for h in handles], timeout=timeout)


def call_each(handles: list[Any], method: str, *args: Any, timeout: float = 30.0) -> list[Any]:
    """As :func:`call_all`, but an actor that fails gives ``{"error": ...}`` in its place."""
    refs = [getattr(h, method).remote(*args) for h in handles]
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref, timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - reported in place
            out.append({"error": repr(exc)})
    return out


ActorDiedError = ray.exceptions.ActorDiedError
# a restartable actor that Ray cannot place again (pinned to a node that is gone)
ActorUnschedulableError = ray.exceptions.ActorUnschedulableError


def remote(handle: Any, method: str, *args: Any) -> Any:
    """Start ``handle.method(*args)``; returns its object ref (see :func:`get`)."""
    return getattr(handle, method).remote(*args)


def get(ref: Any, timeout: float) -> Any:
    """The result of one remote call started with :func:`remote`."""
    return ray.get(ref, timeout=timeout)


def kill(handle: Any) -> None:
    ray.kill(handle, no_restart=True)


def alive_nodes() -> list[str]:
    """Node ids of the alive nodes of the connected Ray cluster."""
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


def pickle_by_value(module: Any) -> None:
    """Ship ``module`` to the actors inside the pickles (for app code not installed there)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(module)
