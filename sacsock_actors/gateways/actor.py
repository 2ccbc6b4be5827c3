"""GatewayActor: a thin shell around an aiohttp Endpoint and its Hub, run as a Ray actor.

It links the hub to the room shards, the other gateways and the bridges with one
batching Outbox per destination, and resyncs a shard that restarted (each shard answers
with its incarnation ``epoch``; a new epoch means it lost its table, so the gateway sends
it the rooms it holds again). A plain class: other actors are reached through ``rt``
(``rayio`` by default; a fake in unit tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket as _stdsocket
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from ..app import AppSpec
from ..batching import Outbox
from ..logs import configure_logging
from ..ops import Op, count_casts
from ..protocol import SOCKET_TAG_LIMIT
from .endpoint import Endpoint
from .hub import Hub
from .stream import PeerStream, StreamServer

log = logging.getLogger(__name__)

SHARD_PING_SECONDS = 1.0
#: ``host`` value binding each gateway to the address of its own Ray node
NODE_HOST = "node"


@dataclass(frozen=True)
class GatewayConfig:
    gateway_id: str
    host: str
    port: int
    path: str
    shard_names: tuple[str, ...]
    namespace: str
    #: the cluster's random key for gateway streams (empty: casts between gateways go
    #: over Ray calls only); never shown in a repr
    stream_secret: bytes = field(default=b"", repr=False)


class _Links:
    """Hub.Links over actor handles: one batching Outbox per destination."""

    def __init__(self, gateway: GatewayActor, config: GatewayConfig, rt: Any) -> None:
        self.gateway_id = config.gateway_id
        self.shard_count = len(config.shard_names)
        self._gw = gateway
        self._rt = rt
        self._shards = [rt.get_actor(n, config.namespace) for n in config.shard_names]
        self._shard_out = [self._shard_outbox(i) for i in range(self.shard_count)]
        self._gateway_out: dict[str, Outbox] = {}
        self._streams: dict[str, PeerStream] = {}
        self._secret = config.stream_secret
        self._me = config.gateway_id
        self._others: list[str] = []
        self._bridge_out: list[Outbox] = []
        #: casts made here go to bridges (the hub builds no Publish op otherwise)
        self.publishing = False
        # gateway index (its position in the cluster's gateway list) <-> id, for socket ids
        self._by_tag: list[str] = []
        self.socket_tag: int | None = None

    def _shard_outbox(self, index: int) -> Outbox:
        apply = self._rt.sender(self._shards[index], "apply", self.gateway_id)

        async def send(batch: list) -> Any:
            try:
                return await apply(batch)
            finally:  # applied (or failed): sockets held by these joins may go on
                if self._gw.hub is not None:
                    self._gw.hub.joins_confirmed(batch)

        return Outbox(
            send,
            on_result=partial(self._gw.shard_epoch, index),
            on_error=partial(self._gw.lost, f"shard {index}"),
        )

    def set_gateways(self, handles: dict[str, Any]) -> None:
        """Every gateway of the cluster, in the driver's order (the same for all of them:
        a gateway's position is the index its sockets' ids carry)."""
        self._others = [g for g in handles if g != self.gateway_id]
        # tags never move: a drained gateway keeps its index (casts to its sockets' ids
        # then go nowhere: it has none), a new one gets the next
        self._by_tag.extend(g for g in handles if g not in self._by_tag)
        if self.socket_tag is None and self.gateway_id in self._by_tag:
            tag = self._by_tag.index(self.gateway_id)
            self.socket_tag = tag if tag < SOCKET_TAG_LIMIT else None
        for gid in set(self._gateway_out) - set(handles):  # drained: nothing more goes there
            del self._gateway_out[gid]
            self._close_stream(gid)
        for gid, handle in handles.items():
            if gid not in self._gateway_out:
                send = self._rt.sender(handle, "receive")
                if self._secret and gid != self._me:
                    stream = PeerStream(
                        self._me, gid, self._secret, send,
                        partial(self._rt.call, handle, "stream_address"), self._gw.stream_stats,
                    )
                    self._streams[gid] = stream
                    send = stream.send
                self._gateway_out[gid] = self._cast_outbox(send, f"gateway {gid}")

    def _close_stream(self, gateway_id: str) -> None:
        stream = self._streams.pop(gateway_id, None)
        if stream is not None:
            stream.close()

    def close_streams(self) -> None:
        for gid in list(self._streams):
            self._close_stream(gid)

    def streams_open(self) -> list[str]:
        """The peers this gateway's casts reach over an open stream now."""
        return sorted(g for g, s in self._streams.items() if s.is_open)

    def _cast_outbox(self, send: Any, where: str) -> Outbox:
        """An outbox of casts only: bounded (``max_peer_backlog``), losses counted."""
        return Outbox(
            send,
            on_error=partial(self._gw.lost, where),
            max_queued=self._gw.spec.options.max_peer_backlog,
            on_drop=partial(self._gw.dropped, where),
        )

    def set_bridges(self, handles: list[Any]) -> None:
        self._bridge_out = [self._cast_outbox(self._rt.sender(h, "publish"), "bridge") for h in handles]
        self.publishing = bool(self._bridge_out)

    def gateway_for_tag(self, tag: int) -> str | None:
        return self._by_tag[tag] if tag < len(self._by_tag) else None

    def gateway_ids(self) -> tuple[str, ...]:
        """Every gateway of the cluster this one knows, itself included."""
        return tuple(self._gateway_out)

    def drop_gateway(self, gateway_id: str) -> None:
        """Stop sending to a gateway that is gone for good."""
        self._gateway_out.pop(gateway_id, None)
        self._close_stream(gateway_id)
        self._others = [g for g in self._others if g != gateway_id]

    def to_shard(self, index: int, op: Op) -> None:
        self._shard_out[index].put(op)

    def to_gateway(self, gateway_id: str, op: Op) -> None:
        out = self._gateway_out.get(gateway_id)
        if out is not None:
            out.put(op)

    def other_gateways(self) -> list[str]:
        return self._others

    def to_bridges(self, op: Op) -> None:
        for out in self._bridge_out:
            out.put(op)

    def shard(self, index: int) -> Any:
        return self._shards[index]

    def outboxes(self) -> list[Outbox]:
        return [*self._shard_out, *self._gateway_out.values(), *self._bridge_out]

    async def flush(self) -> None:
        for out in self.outboxes():
            await out.flush()


class GatewayActor:
    """One websocket server process. Created by the cluster runtime, never by users."""

    def __init__(self, spec: AppSpec, config: GatewayConfig, rt: Any = None) -> None:
        configure_logging()
        if rt is None:
            from .. import rayio as rt
        self.rt = rt
        self.spec = spec
        self.config = config
        self.links: _Links | None = None
        self.hub: Hub | None = None
        self.endpoint: Endpoint | None = None
        self.runner: web.AppRunner | None = None
        self._epochs: dict[int, str] = {}
        self._tasks: list[asyncio.Task] = []
        self._drained = False
        self._address = config.host
        #: counters of the gateway streams (folded into ``stats``)
        self.stream_stats: Counter[str] = Counter()
        self.stream_server: StreamServer | None = None

    async def start(self, gateways: dict[str, Any], bridges: list[Any]) -> dict[str, Any]:
        """Join the cluster (every gateway, bridge and shard known), then bind the port,
        shared with the other gateways of this node. Idempotent: the driver calls it again
        after Ray restarted this actor."""
        if self.runner is not None or self._drained:
            return self.info()
        cfg = self.config
        if self.links is not None:  # a start that failed half-way: nothing of it stays open
            self._close_streams()
        self.links = _Links(self, cfg, self.rt)
        self.links.set_gateways(gateways)
        self.links.set_bridges(bridges)
        self.hub = Hub(self.links)
        self.endpoint = Endpoint(self.spec, self.hub, cfg.path)
        if cfg.stream_secret:  # before the shards: peers may connect as soon as we are known
            self.stream_server = StreamServer(cfg.stream_secret, self.hub.receive, self.stream_stats)
            await self.stream_server.start(self.rt.node_ip())
        me = self.rt.me()
        for i in range(self.links.shard_count):
            known = self.links.gateway_ids()
            hello = self.rt.call(self.links.shard(i), "hello", cfg.gateway_id, me, [], known, True)
            self.shard_epoch(i, await hello)
        # access logs (one line per request, upgrades included) only when asked for
        access: dict[str, Any] = {} if self.spec.options.access_log else {"access_log": None}
        self.runner = web.AppRunner(self.endpoint.make_app(), handle_signals=False, **access)
        await self.runner.setup()
        self.endpoint.install(self.runner)
        host = self.rt.node_ip() if cfg.host == NODE_HOST else cfg.host
        site = web.TCPSite(self.runner, host, cfg.port, reuse_port=True)
        await site.start()
        self._address = host
        self._tasks.append(asyncio.get_running_loop().create_task(self._housekeeping()))
        log.info("gateway %s serving ws://%s:%d%s", cfg.gateway_id, cfg.host, cfg.port, cfg.path)
        return self.info()

    def info(self) -> dict[str, Any]:
        return {
            "gateway_id": self.config.gateway_id,
            "port": self.config.port,
            "pid": os.getpid(),
            "node_id": self.rt.node_id(),
            "host": _stdsocket.gethostname(),
            "address": self._address,
            "started": self.runner is not None,
            "stream": None if self.stream_server is None else list(self.stream_server.address or ()),
        }

    async def stream_address(self) -> list[Any] | None:
        """``[host, port]`` of this gateway's stream listener (None: not listening)."""
        if self.stream_server is None or self.stream_server.address is None:
            return None
        return list(self.stream_server.address)

    async def streams(self) -> list[str]:
        """The peers this gateway's casts go to over an open stream now (tests, operators)."""
        return [] if self.links is None else self.links.streams_open()

    async def set_gateways(self, handles: dict[str, Any]) -> None:
        """The gateways of the cluster changed (some were drained)."""
        assert self.links is not None, "start() first"
        self.links.set_gateways(handles)

    async def set_bridges(self, handles: list[Any]) -> None:
        assert self.links is not None, "start() first"
        self.links.set_bridges(handles)

    async def receive(self, ops: list[Any]) -> None:
        """Ops from shards, gateways, bridges and the driver (see hub.py)."""
        if self.hub is None:
            raise RuntimeError(f"gateway {self.config.gateway_id} is not started")
        self.hub.receive(ops)

    async def stats(self) -> dict[str, int]:
        if self.hub is None:
            return {}
        out = dict(self.hub.stats)
        out["sockets"] = len(self.hub.sessions)
        out["rooms"] = len(self.hub.rooms)
        out["watching"] = len(self.hub.watched)
        assert self.links is not None
        out["ray_calls_out"] = sum(o.calls for o in self.links.outboxes())
        out["ray_ops_out"] = sum(o.items_sent for o in self.links.outboxes())
        # ray_calls_out / ray_ops_out count every batch handed on, by either path; the
        # stream_* counters say how many of them went over a gateway stream
        out.update(self.stream_stats)
        return out

    async def drop_peer(self, gateway_id: str) -> None:
        """A peer gateway is gone for good (the driver's supervisor saw it die): no more
        casts to it, and no room lists it as a holder here."""
        if self.links is None or self.hub is None:
            return
        self.links.drop_gateway(gateway_id)
        for room, holders in list(self.hub.holders.items()):
            if gateway_id in holders:
                self.hub.holders[room] = holders - {gateway_id}

    async def holders(self, room: str) -> list[str] | None:
        """The other gateways this one was told hold ``room`` (None: not known here, so
        casts to it go to every gateway). For tests and operators."""
        if self.hub is None or room not in self.hub.holders:
            return None
        return sorted(self.hub.holders[room])

    async def socket_ids(self) -> list[str]:
        return [] if self.hub is None else list(self.hub.sessions)

    async def close_all(self, code: int = 1001) -> int:
        """Shutdown step one: close every socket with ``code`` and stop listening."""
        if self.endpoint is None or self.runner is None:
            return 0
        closed = await self.endpoint.close_all(code)
        self._close_streams()
        for task in self._tasks:
            task.cancel()
        await self.runner.cleanup()
        self.runner = None
        return closed

    def _close_streams(self) -> None:
        if self.stream_server is not None:
            self.stream_server.close()
        if self.links is not None:
            self.links.close_streams()

    async def begin_drain(self) -> None:
        """Stop accepting sockets: /healthz answers 503, upgrades get 503."""
        if self.endpoint is not None:
            self.endpoint.draining = True

    async def drain(self, timeout: float) -> int:
        """Graceful close: flush queued frames (up to ``timeout`` s), close every socket with
        1001, hand their room leaves on, stop listening. Returns how many were open."""
        self._drained = True  # never listens again (the supervisor may still call start())
        if self.endpoint is None or self.runner is None:
            return 0
        closed = await self.endpoint.drain(timeout)
        await self.flush()
        for task in self._tasks:
            task.cancel()
        await self.runner.cleanup()
        self.runner = None
        return closed

    async def flush(self) -> None:
        """Wait until every op queued so far has been handed to its destination."""
        if self.links is not None:
            await self.links.flush()

    # ---- shard incarnations --------------------------------------------------------------

    def shard_epoch(self, index: int, epoch: str) -> None:
        previous = self._epochs.get(index)
        self._epochs[index] = epoch
        if previous is not None and previous != epoch:
            log.warning("shard %d restarted; resending this gateway's rooms", index)
            if self.hub is not None:
                self.hub.forget_watches(index)
            asyncio.get_running_loop().create_task(self._resync(index))

    async def _resync(self, index: int) -> None:
        assert self.links is not None and self.hub is not None
        rooms = self.hub.rooms_for_shard(index)
        try:
            shard = self.links.shard(index)
            epoch = await self.rt.call(
                shard, "hello", self.config.gateway_id, self.rt.me(), rooms, self.links.gateway_ids()
            )
        except Exception as exc:  # noqa: BLE001 - retried at the next ping
            log.warning("resync of shard %d failed: %r", index, exc)
            self._epochs.pop(index, None)
            return
        self._epochs[index] = epoch
        self.hub.stats["shard_resyncs"] += 1

    async def _housekeeping(self) -> None:
        """Ping shards (to notice restarts while idle) and re-check slow consumers."""
        assert self.links is not None and self.endpoint is not None
        while True:
            await asyncio.sleep(SHARD_PING_SECONDS)
            self.endpoint.sweep_slow()
            for i in range(self.links.shard_count):
                try:
                    epoch = await self.rt.call(self.links.shard(i), "ping")
                except Exception:  # noqa: BLE001 - restarting; try again next round
                    continue
                if i not in self._epochs:
                    await self._resync(i)
                else:
                    self.shard_epoch(i, epoch)

    def lost(self, where: str, batch: list, exc: BaseException) -> None:
        """A batch that could not be delivered: counted and logged, never silent."""
        assert self.hub is not None
        casts = count_casts(batch)
        self.hub.stats["casts_lost"] += casts
        log.warning("%d ops (%d casts) to %s lost: %r", len(batch), casts, where, exc)

    def dropped(self, where: str, op: Any, first: bool) -> None:
        """A cast not queued for a peer that is max_peer_backlog behind: counted; the first
        of an episode is logged."""
        assert self.hub is not None
        self.hub.stats["casts_dropped_backlog"] += 1
        if first:
            log.warning(
                "%s is %d casts behind (hung or too slow?): further casts to it are dropped "
                "until it catches up (casts_dropped_backlog counts them)",
                where, self.spec.options.max_peer_backlog,
            )
