"""BridgeActor: hosts one Bridge so the whole cluster is one instance of the fleet.

Gateways send it the casts that start in them (batched); it hands them to the bridge
once. What the bridge delivers goes to one gateway as a ``StartRoomcast`` or
``StartBroadcast`` with publish off, so it is routed like a local cast (encoded once) and
never published again; when that gateway is down, to the next one. A plain class:
gateways are reached through ``rt`` (``rayio`` by default; a fake in unit tests).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from ..batching import Outbox
from ..logs import configure_logging
from ..ops import Publish, StartBroadcast, StartRoomcast
from .base import Bridge, Cast

log = logging.getLogger(__name__)


class BridgeActor:
    """``max_backlog``: arrivals queued for the cluster behind the call in flight (the
    server's ``max_peer_backlog``); further ones are dropped and counted
    (``dropped_backlog``) while the gateways do not take them (hung, or far too slow).
    None: unbounded."""

    def __init__(self, bridge: Bridge, gateway_names: list[str], namespace: str, rt: Any = None,
                 max_backlog: int | None = None) -> None:
        configure_logging()
        if rt is None:
            from .. import rayio as rt
        self.rt = rt
        self.bridge = bridge
        self.counts: Counter[str] = Counter()
        self._gateway_names = gateway_names
        self._namespace = namespace
        self._failover: Any = None
        self._to_cluster: Outbox | None = None
        self._max_backlog = max_backlog
        self._started = False

    async def start(self) -> bool:
        if self._started:
            return True
        gateways = [self.rt.get_actor(n, self._namespace) for n in self._gateway_names]
        self._failover = self.rt.Failover(gateways, self.bridge.name)
        self._to_cluster = Outbox(self._send, on_error=self._lost, max_queued=self._max_backlog,
                                  on_drop=self._dropped)
        await self.bridge.start(self.deliver)
        self._started = True
        return True

    async def _send(self, batch: list) -> None:
        """To one gateway, in order; when it is down (restarting), to the next one."""
        await self._failover.call("receive", batch)

    def deliver(self, cast: Cast) -> None:
        """Route a cast that arrived from elsewhere to the cluster's sockets."""
        try:
            frame = cast.frame()
        except Exception as exc:  # noqa: BLE001 - a peer's bad message is dropped, not fatal
            self.counts["invalid_in"] += 1
            log.warning("%s: dropped a message that cannot be framed: %s", self.bridge.name, exc)
            return
        assert self._to_cluster is not None
        self.counts["to_cluster"] += 1
        if cast.room is None:
            self._to_cluster.put(StartBroadcast(frame, False))
        else:
            self._to_cluster.put(StartRoomcast(cast.room, frame, False))

    async def publish(self, ops: list[Publish]) -> None:
        """Casts that started in a gateway of this cluster."""
        casts = []
        for op in ops:
            if type(op) is Publish:
                casts.append(Cast.from_frame(op.room, op.frame))
            else:
                self.counts["unknown_ops"] += 1
                log.warning("%s: unknown op %r dropped", self.bridge.name, type(op).__name__)
        self.counts["from_cluster"] += len(casts)
        try:
            await self.bridge.publish(casts)
        except Exception:  # noqa: BLE001 - counted; the bridge reconnects by itself
            self.counts["publish_failed"] += len(casts)
            log.exception("%s: publishing %d casts failed", self.bridge.name, len(casts))

    async def shutdown(self) -> None:
        if self._to_cluster is not None:
            await self._to_cluster.flush()
        await self.bridge.shutdown()

    async def stats(self) -> dict[str, Any]:
        return {**self.counts, **self.bridge.stats()}

    async def flush(self) -> None:
        if self._to_cluster is not None:
            await self._to_cluster.flush()

    def _dropped(self, op: Any, first: bool) -> None:
        self.counts["dropped_backlog"] += 1
        if first:
            log.warning("%s: the cluster is %d arrivals behind (gateways hung or too slow?): "
                        "further arrivals are dropped until it catches up (dropped_backlog "
                        "counts them)", self.bridge.name, self._max_backlog)

    def _lost(self, batch: list, exc: BaseException) -> None:
        self.counts["lost_in"] += len(batch)
        log.warning("%s: %d arrivals lost on the way to the cluster: %r", self.bridge.name, len(batch), exc)
