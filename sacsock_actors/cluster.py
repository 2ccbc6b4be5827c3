"""The Ray side of serving: start (or attach to) Ray, create shards and gateways, supervise
them, carry casts from the driver, and stop everything that was started.

This is the only module besides the actor shells that talks to Ray.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import sys
import sysconfig
import threading
import time
import types
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .app import AppSpec
from .bridges.actor import BridgeActor
from .errors import ConfigError
from .gateways.actor import GatewayActor, GatewayConfig
from .rooms.actor import RoomShardActor

log = logging.getLogger(__name__)

NAMESPACE = "sacsock"
ACTOR_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 10_000,
}
_Gateway = ray.remote(GatewayActor)
_Shard = ray.remote(RoomShardActor)
_Bridge = ray.remote(BridgeActor)


@dataclass(frozen=True)
class Placement:
    """Where one gateway runs: a Ray node id (None: anywhere) and the port it listens on."""

    node_id: str | None
    port: int


def ship_app_code(spec: AppSpec) -> None:
    """Pickle the app's own code by value, so gateway actors on any node can run it.

    The app's code is every loaded module that lives in the folder of a module holding a
    handler (the app module and its siblings: a script, a test, an app in the current
    directory), unless it is an installed package (every node imports those itself).
    """
    from ray import cloudpickle

    installed = tuple(
        os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("purelib", "platlib", "stdlib")
    )
    own = os.path.dirname(os.path.realpath(__file__)) + os.sep
    folders: set[str] = set()
    for fn in [*spec.handlers.values(), spec.on_connect, spec.on_disconnect]:
        name = getattr(fn, "__module__", None) or getattr(type(fn), "__module__", None)
        file = getattr(sys.modules.get(name or ""), "__file__", None)
        path = os.path.realpath(file) if file else ""
        if path and not path.startswith(installed) and not path.startswith(own):
            folders.add(os.path.dirname(path) + os.sep)
    if not folders:
        return
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or not isinstance(module, types.ModuleType) or module.__name__ != name:
            continue
        path = os.path.realpath(file)
        if name != "__main__" and path.startswith(tuple(folders)) and not path.startswith(installed):
            cloudpickle.register_pickle_by_value(module)


def alive_nodes() -> list[str]:
    """Node ids of the alive nodes of the connected Ray cluster."""
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


def check_layout(gateways: int, gateways_per_node: int | None, placements: list[Placement] | None) -> None:
    """Reject a bad gateway layout with ConfigError (called before Ray is touched)."""
    if placements is not None:
        if not placements:
            raise ConfigError("placements is empty: give at least one Placement(node_id, port)")
        bad = [p for p in placements if not isinstance(p, Placement)]
        if bad:
            raise ConfigError(f"placements must be cluster.Placement objects, got {bad[0]!r}")
    elif gateways_per_node is not None:
        if not isinstance(gateways_per_node, int) or gateways_per_node < 1:
            raise ConfigError(f"gateways_per_node must be an int >= 1, got {gateways_per_node!r}")
    elif not isinstance(gateways, int) or gateways < 1:
        raise ConfigError(f"gateways must be an int >= 1, got {gateways!r}")


class ClusterRuntime:
    """Everything started for one ``SocketServer.start()``; ``stop()`` undoes it."""

    def __init__(
        self,
        spec: AppSpec,
        *,
        host: str,
        path: str,
        port: int,
        gateways: int = 1,
        gateways_per_node: int | None = None,
        placements: list[Placement] | None = None,
        address: str | None = None,
        runtime_env: dict | None = None,
    ) -> None:
        check_layout(gateways, gateways_per_node, placements)  # before anything is started
        self.spec = spec
        self.host = host
        self.path = path
        self.token = secrets.token_hex(4)
        self.started_ray = False
        self._init_ray(address, runtime_env)
        ship_app_code(spec)
        if placements is None:
            if gateways_per_node is not None:
                placements = [
                    Placement(node, port) for node in alive_nodes() for _ in range(gateways_per_node)
                ]
            else:
                placements = [Placement(None, port) for _ in range(gateways)]
        if not placements:
            if self.started_ray:
                ray.shutdown()
            raise ConfigError("no alive Ray node to place gateways on")
        self.placements = placements
        self.shards = [
            _Shard.options(name=f"{self.token}:shard:{i}", namespace=NAMESPACE, **ACTOR_OPTIONS).remote(i)
            for i in range(spec.options.room_shards)
        ]
        self.gateway_ids = [f"gw-{i}" for i in range(len(placements))]
        self.gateways = {
            gid: self._make_gateway(gid, p) for gid, p in zip(self.gateway_ids, placements, strict=True)
        }
        self.bridges: list[Any] = []
        self._stop = threading.Event()
        self._caster = _DriverCaster(list(self.gateways.values()))
        self._supervisor: threading.Thread | None = None

    def _init_ray(self, address: str | None, runtime_env: dict | None) -> None:
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "logging_level": logging.WARNING}
        if runtime_env:
            kwargs["runtime_env"] = runtime_env
        if address is None:  # always a fresh local Ray, never someone else's cluster
            kwargs.update(address="local", include_dashboard=False)
        else:
            kwargs["address"] = address
        ray.init(**kwargs)
        self.started_ray = True

    def _make_gateway(self, gid: str, placement: Placement) -> Any:
        config = GatewayConfig(
            gateway_id=gid,
            host=self.host,
            port=placement.port,
            path=self.path,
            shard_names=tuple(f"{self.token}:shard:{i}" for i in range(len(self.shards))),
            namespace=NAMESPACE,
        )
        opts = dict(ACTOR_OPTIONS, name=f"{self.token}:gw:{gid}", namespace=NAMESPACE)
        if placement.node_id is not None:
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(placement.node_id, soft=False)
        return _Gateway.options(**opts).remote(self.spec, config)

    def start(self, bridges: list[Any], timeout: float = 120.0) -> list[dict[str, Any]]:
        """Start the bridges' actors and every gateway; returns each gateway's info.

        Gateways learn every gateway and bridge before they listen, so no cast made by an
        early socket misses a peer or a bridge.
        """
        actors = [self._make_bridge(b) for b in bridges]
        infos = ray.get(
            [g.start.remote(self.gateways, actors) for g in self.gateways.values()], timeout=timeout
        )
        ray.get([a.start.remote() for a in actors], timeout=timeout)
        self.bridges.extend(actors)
        self._supervisor = threading.Thread(target=self._supervise, name="sacsock-supervisor", daemon=True)
        self._supervisor.start()
        return infos

    def _make_bridge(self, bridge: Any) -> Any:
        name = f"{self.token}:bridge:{secrets.token_hex(4)}"
        gateways = [f"{self.token}:gw:{gid}" for gid in self.gateway_ids]
        return _Bridge.options(name=name, namespace=NAMESPACE, **ACTOR_OPTIONS).remote(
            bridge, gateways, NAMESPACE
        )

    def add_bridge(self, bridge: Any, timeout: float = 60.0) -> None:
        """While serving: run ``bridge`` in its own actor and have every gateway publish to it."""
        actor = self._make_bridge(bridge)
        ray.get(actor.start.remote(), timeout=timeout)
        self.bridges.append(actor)
        ray.get([g.set_bridges.remote(self.bridges) for g in self.gateways.values()], timeout=timeout)

    def _supervise(self) -> None:
        """Restart a gateway's listener, or a bridge, after Ray restarted its process."""
        while not self._stop.wait(1.0):
            calls = [g.start.remote(self.gateways, list(self.bridges)) for g in self.gateways.values()]
            calls += [b.start.remote() for b in self.bridges]
            for call in calls:
                try:
                    ray.get(call, timeout=30)
                except Exception as exc:  # noqa: BLE001 - a restarting actor; next round
                    log.debug("actor not ready: %r", exc)

    def cast(self, op: tuple) -> None:
        """A cast from the driver, routed by the first gateway as if it started there."""
        self._caster.put(op)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until driver casts and every gateway's queued ops have been handed on."""
        self._caster.flush(timeout)
        ray.get([g.flush.remote() for g in self.gateways.values()], timeout=timeout)
        ray.get([b.flush.remote() for b in self.bridges], timeout=timeout)

    def socket_ids(self) -> list[str]:
        """Ids of the sockets of every reachable gateway."""
        parts = _each([g.socket_ids.remote() for g in self.gateways.values()])
        return [i for part in parts if isinstance(part, list) for i in part]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters of every gateway and bridge; an unreachable actor shows as {"error": ...}."""
        out: dict[str, dict[str, Any]] = dict(
            zip(self.gateways, _each([g.stats.remote() for g in self.gateways.values()]), strict=True)
        )
        out["driver"] = {"casts_lost": self._caster.lost}
        for i, s in enumerate(_each([b.stats.remote() for b in self.bridges])):
            out[f"bridge-{i}"] = s
        return out

    def stop(self) -> None:
        """Close every socket (1001), then the bridges, then the actors (and Ray if ours)."""
        self._stop.set()
        self._caster.close()
        try:
            ray.get([g.close_all.remote(1001) for g in self.gateways.values()], timeout=30)
        except Exception as exc:  # noqa: BLE001 - keep shutting down
            log.warning("closing sockets: %r", exc)
        try:
            ray.get([b.shutdown.remote() for b in self.bridges], timeout=30)
        except Exception as exc:  # noqa: BLE001 - keep shutting down
            log.warning("shutting bridges down: %r", exc)
        for actor in [*self.gateways.values(), *self.shards, *self.bridges]:
            ray.kill(actor, no_restart=True)
        if self._supervisor is not None:
            self._supervisor.join(timeout=35)
        if self.started_ray:
            ray.shutdown()


def _each(refs: list[Any], timeout: float = 30.0) -> list[Any]:
    """ray.get of each ref on its own: a dead actor gives {"error": ...}, not an exception."""
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref, timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - reported in place
            out.append({"error": repr(exc)})
    return out


class _DriverCaster:
    """Sends driver casts in batches, in order, off the caller's thread, to one gateway;
    when that gateway is down (restarting), to the next one."""

    def __init__(self, gateways: list[Any]) -> None:
        self._gateways = gateways
        self._current = 0
        self.lost = 0
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sacsock-driver-casts", daemon=True)
        self._thread.start()

    def put(self, op: tuple) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(op)

    def _run(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            batch = [op]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._send(batch)
                    return
                batch.append(more)
            self._send(batch)

    def _send(self, batch: list[tuple]) -> None:
        for _ in range(len(self._gateways)):
            gateway = self._gateways[self._current]
            try:
                ray.get(gateway.receive.remote(batch), timeout=60)
                break
            except ray.exceptions.GetTimeoutError as exc:  # may have been applied: no retry
                self._lose(batch, exc)
                break
            except Exception as exc:  # noqa: BLE001 - gateway down: try the next one
                log.warning("driver casts: gateway unavailable (%r); trying the next", exc)
                self._current = (self._current + 1) % len(self._gateways)
        else:
            self._lose(batch, RuntimeError("no gateway is available"))
        with self._lock:
            self._pending -= len(batch)

    def _lose(self, batch: list[tuple], exc: BaseException) -> None:
        self.lost += len(batch)
        log.warning("%d driver casts lost: %r", len(batch), exc)

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._pending > 0:
            time.sleep(0.01)
            if time.monotonic() > deadline:
                raise TimeoutError("driver casts not sent in time")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
