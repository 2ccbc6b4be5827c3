"""The driver side of serving: start (or attach to) Ray, create shards and gateways,
supervise them, carry casts from the driver, and stop everything that was started.

Every Ray call goes through ``rayio``.
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

from . import rayio
from .app import AppSpec
from .bridges.actor import BridgeActor
from .errors import ConfigError
from .gateways.actor import GatewayActor, GatewayConfig
from .ops import Op
from .rooms.actor import RoomShardActor

log = logging.getLogger(__name__)

NAMESPACE = rayio.NAMESPACE
_Gateway = rayio.actor_class(GatewayActor)
_Shard = rayio.actor_class(RoomShardActor)
_Bridge = rayio.actor_class(BridgeActor)


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
            rayio.pickle_by_value(module)


alive_nodes = rayio.alive_nodes


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
        # the key of the gateway streams (never logged; empty: casts between gateways over Ray)
        self._stream_secret = secrets.token_bytes(32) if spec.options.gateway_transport == "stream" else b""
        self.infos: dict[str, dict[str, Any]] = {}
        self._stopped = False
        self.started_ray = rayio.init(address, runtime_env)
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
                rayio.shutdown()
            raise ConfigError("no alive Ray node to place gateways on")
        self.placements = placements
        self.shard_nodes = self._shard_nodes(spec.options.room_shards, spec.options.shard_placement)
        self.shards = [
            rayio.spawn(_Shard, f"{self.token}:shard:{i}", i, prefer_node=node)
            for i, node in enumerate(self.shard_nodes)
        ]
        self.gateway_ids = [f"gw-{i}" for i in range(len(placements))]
        self.gateways = {
            gid: self._make_gateway(gid, p) for gid, p in zip(self.gateway_ids, placements, strict=True)
        }
        self.bridges: list[Any] = []
        self._stop = threading.Event()
        self._caster = DriverCaster(rayio.Failover(list(self.gateways.values()), "driver casts"))
        self._supervisor: threading.Thread | None = None
        self.purged: set[str] = set()  # gateways gone for good (see _supervise)

    def _shard_nodes(self, count: int, placement: str) -> list[str | None]:
        """The node each shard should prefer (None: where Ray puts it)."""
        if placement != "spread":
            return [None] * count
        if not rayio.supports_preferred_nodes():
            if self.started_ray:
                rayio.shutdown()
            raise ConfigError(
                "shard_placement='spread' needs a Ray whose actors take label_selector and "
                "fallback_strategy (this one does not): upgrade Ray or use shard_placement='auto'"
            )
        nodes = sorted(alive_nodes())
        return [nodes[i % len(nodes)] for i in range(count)]

    def _make_gateway(self, gid: str, placement: Placement) -> Any:
        config = GatewayConfig(
            gateway_id=gid,
            host=self.host,
            port=placement.port,
            path=self.path,
            shard_names=tuple(f"{self.token}:shard:{i}" for i in range(len(self.shards))),
            namespace=NAMESPACE,
            stream_secret=self._stream_secret,
        )
        return rayio.spawn(_Gateway, f"{self.token}:gw:{gid}", self.spec, config, node=placement.node_id)

    def start(self, bridges: list[Any], timeout: float = 120.0) -> list[dict[str, Any]]:
        """Start the bridges' actors and every gateway; returns each gateway's info.

        Gateways learn every gateway and bridge before they listen, so no cast made by an
        early socket misses a peer or a bridge.
        """
        actors = [self._make_bridge(b) for b in bridges]
        infos = rayio.call_all(list(self.gateways.values()), "start", self.gateways, actors, timeout=timeout)
        self.infos = dict(zip(self.gateways, infos, strict=True))
        rayio.call_all(actors, "start", timeout=timeout)
        self.bridges.extend(actors)
        self._supervisor = threading.Thread(target=self._supervise, name="sacsock-supervisor", daemon=True)
        self._supervisor.start()
        return infos

    def _make_bridge(self, bridge: Any) -> Any:
        name = f"{self.token}:bridge:{secrets.token_hex(4)}"
        gateways = [f"{self.token}:gw:{gid}" for gid in self.gateway_ids]
        # (rt None: the actor uses rayio; its queue toward the gateways is bounded like theirs)
        return rayio.spawn(_Bridge, name, bridge, gateways, NAMESPACE, None,
                           self.spec.options.max_peer_backlog)

    def add_bridge(self, bridge: Any, timeout: float = 60.0) -> None:
        """While serving: run ``bridge`` in its own actor and have every gateway publish to it."""
        actor = self._make_bridge(bridge)
        rayio.call_all([actor], "start", timeout=timeout)
        self.bridges.append(actor)
        rayio.call_all(list(self.gateways.values()), "set_bridges", self.bridges, timeout=timeout)

    def _supervise(self) -> None:
        """Restart a gateway's listener, or a bridge, after Ray restarted its process; purge
        a gateway that is gone for good."""
        died: set[str] = set()  # gateways whose last call failed with ActorDiedError
        while not self._stop.wait(1.0):
            self._supervise_round(died)

    def _supervise_round(self, died: set[str]) -> None:
        """One round of :meth:`_supervise`: ``start`` on every live gateway and bridge."""
        live = {gid: g for gid, g in self.gateways.items() if gid not in self.purged}
        calls: list[tuple[str | None, Any]] = [
            (gid, rayio.remote(g, "start", live, list(self.bridges))) for gid, g in live.items()
        ]
        calls += [(None, rayio.remote(b, "start")) for b in self.bridges]
        for gid, call in calls:
            try:
                rayio.get(call, timeout=30)
                died.discard(gid or "")
            except rayio.ActorDiedError as exc:
                # A call in flight when a restartable actor dies fails too, but calls
                # made after that wait for the restart: two failed rounds in a row mean
                # it is not coming back.
                if gid is not None and gid in died:
                    self._purge(gid)
                elif gid is not None:
                    died.add(gid)
                log.debug("actor died: %r", exc)
            except rayio.ActorUnschedulableError as exc:
                # pinned to a node that is gone: it cannot come back (seen after a
                # node died, instead of a second ActorDiedError)
                if gid is not None and gid not in self.purged:
                    self._purge(gid)
                log.debug("actor unschedulable: %r", exc)
            except Exception as exc:  # noqa: BLE001 - a restarting actor; next round
                log.debug("actor not ready: %r", exc)

    def _purge(self, gid: str) -> None:
        """Tell every shard and live gateway that gateway ``gid`` is gone for good."""
        self.purged.add(gid)
        log.warning("gateway %s is gone for good; purged from the shards and its peers", gid)
        rayio.call_each(list(self.shards), "drop_gateway", gid)
        live = [g for other, g in self.gateways.items() if other not in self.purged]
        rayio.call_each(live, "drop_peer", gid)

    def cast(self, op: Op) -> None:
        """A cast from the driver, routed by the first gateway as if it started there."""
        self._caster.put(op)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until driver casts and every gateway's queued ops have been handed on."""
        self._caster.flush(timeout)
        rayio.call_all(list(self.gateways.values()), "flush", timeout=timeout)
        rayio.call_all(list(self.bridges), "flush", timeout=timeout)

    def socket_ids(self) -> list[str]:
        """Ids of the sockets of every reachable gateway."""
        parts = rayio.call_each(list(self.gateways.values()), "socket_ids")
        return [i for part in parts if isinstance(part, list) for i in part]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters of every gateway and bridge; an unreachable actor shows as {"error": ...}."""
        out: dict[str, dict[str, Any]] = dict(
            zip(self.gateways, rayio.call_each(list(self.gateways.values()), "stats"), strict=True)
        )
        out["driver"] = {"casts_lost": self._caster.lost}
        for i, s in enumerate(rayio.call_each(list(self.bridges), "stats")):
            out[f"bridge-{i}"] = s
        return out

    def drain(self, timeout: float, node_id: str | None = None) -> None:
        """Graceful stop of every gateway (``node_id`` None: then of everything, as ``stop``)
        or of the gateways on one node (the others keep serving).

        Draining gateways answer /healthz and upgrades with 503 at once; casts accepted so
        far (driver, other gateways) reach their sockets, which get every queued frame
        (up to ``timeout`` s for slow readers) before their 1001 close.
        """
        if node_id is None:
            drained = dict(self.gateways)
        else:
            drained = {
                g: h for g, h in self.gateways.items() if self.infos.get(g, {}).get("node_id") == node_id
            }
            if not drained:
                raise ConfigError(f"no gateway runs on node {node_id!r}; nodes: "
                                  f"{sorted({i['node_id'] for i in self.infos.values()})}")
            if len(drained) == len(self.gateways):
                raise ConfigError("that is every gateway: call drain() without node_id to stop serving")
        began = time.monotonic()
        rayio.call_all(list(drained.values()), "begin_drain", timeout=30)
        remaining = {g: h for g, h in self.gateways.items() if g not in drained}
        if remaining:  # no more supervision or driver casts for the drained ones
            self.gateways = remaining
            self._caster.set_gateways(list(remaining.values()))
        self._caster.flush(max(timeout, 1.0))
        rayio.call_all([*drained.values(), *remaining.values()], "flush", timeout=60)
        left = max(0.0, timeout - (time.monotonic() - began))
        rayio.call_all(list(drained.values()), "drain", left, timeout=left + 60)
        if not remaining:
            self.stop()
            return
        rayio.call_all(list(remaining.values()), "set_gateways", remaining, timeout=60)
        for gid, actor in drained.items():
            rayio.kill(actor)
            self.infos.pop(gid, None)

    def stop(self) -> None:
        """Close every socket (1001), then the bridges, then the actors (and Ray if ours).
        Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._caster.close()
        try:
            rayio.call_all(list(self.gateways.values()), "close_all", 1001, timeout=30)
        except Exception as exc:  # noqa: BLE001 - keep shutting down
            log.warning("closing sockets: %r", exc)
        try:
            rayio.call_all(list(self.bridges), "shutdown", timeout=30)
        except Exception as exc:  # noqa: BLE001 - keep shutting down
            log.warning("shutting bridges down: %r", exc)
        for actor in [*self.gateways.values(), *self.shards, *self.bridges]:
            rayio.kill(actor)
        if self._supervisor is not None:
            self._supervisor.join(timeout=35)
        if self.started_ray:
            rayio.shutdown()


class DriverCaster:
    """Sends driver casts in batches, in order, off the caller's thread, through
    ``failover`` (one gateway; the next when it is down). Counts what it cannot send."""

    def __init__(self, failover: Any, timeout: float = 60.0) -> None:
        self._failover = failover
        self._timeout = timeout
        self.lost = 0
        self._queue: queue.Queue[Op | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sacsock-driver-casts", daemon=True)
        self._thread.start()

    def set_gateways(self, gateways: list[Any]) -> None:
        """Send to these gateways from now on (others are being drained)."""
        self._failover.set_handles(gateways)

    def put(self, op: Op) -> None:
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

    def _send(self, batch: list[Op]) -> None:
        try:
            self._failover.call_blocking("receive", batch, timeout=self._timeout)
        except Exception as exc:  # noqa: BLE001 - a timeout (maybe applied) or no gateway up
            self.lost += len(batch)
            log.warning("%d driver casts lost: %r", len(batch), exc)
        with self._lock:
            self._pending -= len(batch)

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._pending > 0:
            time.sleep(0.01)
            if time.monotonic() > deadline:
                raise TimeoutError("driver casts not sent in time")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
