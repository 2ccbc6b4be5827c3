"""BridgeActor: hosts one Bridge so the whole cluster is one instance of the fleet.

Gateways send it the casts that start in them (batched); it hands them to the bridge
once. What the bridge delivers goes to one gateway as an ``origin_*`` op with publish
off, so it is routed like a local cast (room shards, encode once) and never published
again.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import ray

from ..batching import Outbox
from .base import Bridge, Cast

log = logging.getLogger(__name__)


class BridgeActor:
    def __init__(self, bridge: Bridge, gateway_name: str, namespace: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        self.bridge = bridge
        self.counts: Counter[str] = Counter()
        self._gateway_name = gateway_name
        self._namespace = namespace
        self._to_cluster: Outbox | None = None
        self._started = False

    async def start(self) -> bool:
        if self._started:
            return True
        gateway = ray.get_actor(self._gateway_name, namespace=self._namespace)
        self._to_cluster = Outbox(
            lambda batch: gateway.receive.remote(batch),
            on_error=self._lost,
        )
        await self.bridge.start(self.deliver)
        self._started = True
        return True

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
            self._to_cluster.put(("origin_all", frame, False))
        else:
            self._to_cluster.put(("origin_room", cast.room, frame, False))

    async def publish(self, ops: list[tuple]) -> None:
        """Casts that started in a gateway of this cluster."""
        casts = [
            Cast.from_frame(op[1], op[2]) if op[0] == "room" else Cast.from_frame(None, op[1])
            for op in ops
        ]
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

    def _lost(self, batch: list, exc: BaseException) -> None:
        self.counts["lost_in"] += len(batch)
        log.warning("%s: %d arrivals lost on the way to the cluster: %r", self.bridge.name, len(batch), exc)
