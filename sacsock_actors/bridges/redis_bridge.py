"""RedisBridge: federate over Redis Pub/Sub, byte-compatible with Go ``ssredis``.

    from sacsock_actors.bridges import RedisBridge
    server.set_multihome_backend(RedisBridge("redis://:secret@10.0.0.5:6379/0"))

Every instance of a server group (Go or Python) subscribes to ``<group>:_ss_roomcasts`` and
``<group>:_ss_broadcasts`` and publishes its own casts there; the byte format is in
``redis_codec``. The bridge runs in the cluster's BridgeActor, so the whole Ray cluster is
one instance with one server name.

Behaviour the caller can rely on:

- ``start()`` returns within ``start_wait`` seconds even when Redis is unreachable; a
  background task keeps (re)connecting with capped exponential backoff (with jitter) and
  resubscribes after Redis restarts, without restarting anything else.
- ``publish()`` sends a batch of casts in ONE pipelined round trip and never waits longer
  than ``publish_timeout``. While Redis is down (from the moment the subscriber notices, or
  a publish fails or times out, until the subscriber has reconnected and resubscribed)
  casts are dropped at once and counted in ``dropped_while_down``, not
  buffered: like upstream, the fleet is best-effort, and replaying stale casts after an
  outage would be worse than missing them. Local delivery is never affected.
- Incoming messages that are invalid (``redis_codec.REASONS``) are logged (rate-limited)
  and counted per reason; our own echoes are counted and dropped.
- The password in the URL (``redis://user:pass@host``, ``?password=``) is never logged;
  TLS is ``rediss://`` (redis-py's ``ssl_*`` query options apply).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..errors import ConfigError
from ..logs import Throttle
from .base import Bridge, Cast, Deliver
from .redis_codec import DEFAULT_SERVER_GROUP, REASONS, InvalidMessage, RedisCodec, mask_url

log = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_SCHEMES = ("redis://", "rediss://", "unix://")
_TRANSPORT_ERRORS = (RedisError, OSError, asyncio.TimeoutError, EOFError)


class RedisBridge(Bridge):
    """A Bridge over Redis Pub/Sub (see the module docstring).

    ``server_name`` must be unique in the group (default: 32 random hex chars, as
    upstream). Tunables are keyword-only: ``publish_timeout`` bounds one pipelined publish;
    ``connect_timeout`` bounds connecting and subscribing; reconnect delays grow from
    ``reconnect_min`` to ``reconnect_max`` seconds; an idle subscription is PINGed every
    ``keepalive`` seconds and given up when no answer comes within another ``keepalive``;
    ``start_wait`` bounds how long ``start()`` waits for the first subscription.
    """

    name = "redis"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        server_group: str = DEFAULT_SERVER_GROUP,
        server_name: str | None = None,
        *,
        publish_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
        keepalive: float = 10.0,
        start_wait: float = 10.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(_SCHEMES):
            raise ConfigError(
                f"a Redis URL must start with redis://, rediss:// or unix://, got {mask_url(str(url))!r}"
            )
        try:
            parse_url(url)
        except ValueError as exc:
            raise ConfigError(f"bad Redis URL {mask_url(url)!r}: {exc}") from None
        if not server_group:
            raise ConfigError("server_group must not be empty")
        if server_name is not None and not server_name:
            raise ConfigError("server_name must not be empty (None: generate one)")
        if not 0 < reconnect_min <= reconnect_max:
            raise ConfigError("need 0 < reconnect_min <= reconnect_max")
        self.url = url
        self.server_group = server_group
        self.server_name = server_name or secrets.token_hex(16)
        self.codec = RedisCodec(server_group, self.server_name)
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.keepalive = keepalive
        self.start_wait = start_wait
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self.counts: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self._client: Any = None
        self._task: asyncio.Task | None = None
        self._deliver: Deliver | None = None
        self._connected = False
        self._ever_connected = False
        self._stopping: asyncio.Event | None = None
        self._first_attempt: asyncio.Event | None = None
        self._kick = False  # a publish failed: the subscriber reconnects too
        self._throttle = Throttle(log)

    # the bridge is pickled into its actor: only the configuration travels
    def __getstate__(self) -> dict[str, Any]:
        keep = ("url", "server_group", "server_name", "publish_timeout", "connect_timeout",
                "reconnect_min", "reconnect_max", "keepalive", "start_wait")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.codec = RedisCodec(self.server_group, self.server_name)
        self._reset_runtime()

    def __repr__(self) -> str:
        return (f"RedisBridge({mask_url(self.url)!r}, server_group={self.server_group!r}, "
                f"server_name={self.server_name!r})")

    @property
    def connected(self) -> bool:
        """True while subscribed to both channels."""
        return self._connected

    # ---- Bridge interface -----------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        if self._task is not None:
            return
        self._deliver = deliver
        self._stopping = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._client = aioredis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.publish_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),  # we own reconnecting, and count it
        )
        log.info("redis bridge: server %s in group %s, url %s",
                 self.server_name, self.server_group, mask_url(self.url))
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(self._first_attempt.wait(), self.start_wait)
        except asyncio.TimeoutError:
            log.warning("redis bridge: not subscribed after %.1f s; serving anyway, still trying",
                        self.start_wait)

    async def publish(self, casts: list[Cast]) -> None:
        if not casts:
            return
        if not self._connected or self._client is None:
            self.counts["dropped_while_down"] += len(casts)
            self._throttle.log(logging.WARNING, "down", "redis bridge: Redis is down; %d casts dropped",
                               len(casts))
            return
        sent = 0
        pipe = self._client.pipeline(transaction=False)
        try:
            for cast in casts:
                try:
                    channel, message = self.codec.encode(cast)
                except ValueError as exc:
                    self.counts["unencodable"] += 1
                    self._throttle.log(logging.WARNING, "encode", "redis bridge: cast not published: %s", exc)
                    continue
                pipe.publish(channel, message)
                sent += 1
            if sent:
                await asyncio.wait_for(pipe.execute(), self.publish_timeout)
                self.counts["published"] += sent
        except _TRANSPORT_ERRORS as exc:
            self.counts["publish_errors"] += 1
            self.counts["dropped_while_down"] += sent
            # Redis is gone or too slow to count on: drop further casts at once (instead of
            # each waiting publish_timeout) until the subscriber has reconnected
            self._connected = False
            self._kick = True
            self._throttle.log(logging.WARNING, "publish", "redis bridge: publishing %d casts failed: %r",
                               sent, exc)
        finally:
            try:
                await pipe.reset()
            except _TRANSPORT_ERRORS:
                pass

    async def shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except _TRANSPORT_ERRORS as exc:
                log.debug("closing the redis client: %r", exc)
        self._connected = False
        nonzero = {k: v for k, v in self.stats().items() if v}
        log.info("redis bridge %s stopped: %s", self.server_name, nonzero)

    def stats(self) -> dict[str, Any]:
        out = {k: self.counts[k] for k in (
            "published", "received", "delivered", "own_echoes", "reconnects",
            "dropped_while_down", "publish_errors", "unencodable",
        )}
        out["invalid"] = sum(self.invalid.values())
        for reason in REASONS:
            out[f"invalid_{reason}"] = self.invalid[reason]
        out["connected"] = int(self._connected)
        return out

    # ---- the subscriber ---------------------------------------------------------------------

    async def _run(self) -> None:
        """Subscribe, read, and on any failure reconnect with capped exponential backoff."""
        assert self._stopping is not None and self._first_attempt is not None
        failures = 0
        while not self._stopping.is_set():
            pubsub = self._client.pubsub()
            try:
                await asyncio.wait_for(self._subscribe(pubsub), self.connect_timeout)
                self._connected, self._kick = True, False
                if self._ever_connected:
                    self.counts["reconnects"] += 1
                    log.warning("redis bridge: reconnected to %s and resubscribed", mask_url(self.url))
                else:
                    log.info("redis bridge: subscribed to %s and %s", *self.codec.channels)
                self._ever_connected = True
                failures = 0
                self._first_attempt.set()
                await self._listen(pubsub)
            except _TRANSPORT_ERRORS as exc:
                if self._connected:
                    log.warning("redis bridge: lost Redis at %s: %r; reconnecting", mask_url(self.url), exc)
                else:
                    self._throttle.log(logging.WARNING, "connect", "redis bridge: cannot reach %s: %r",
                                       mask_url(self.url), exc)
            except Exception:  # noqa: BLE001 - a bug must not end federation for good
                log.exception("redis bridge: subscriber failed; reconnecting")
            finally:
                self._connected = False
                self._first_attempt.set()
                await _quietly_close(pubsub)
            # stale publishing connections go too; the next publish opens a fresh one
            await _quietly(self._client.connection_pool.disconnect())
            delay = min(self.reconnect_max, self.reconnect_min * 2**failures) * random.uniform(0.5, 1.0)
            failures = min(failures + 1, 30)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _subscribe(self, pubsub: Any) -> None:
        """Subscribe to both channels and wait until Redis has confirmed both."""
        wanted = {c.encode() for c in self.codec.channels}
        await pubsub.subscribe(*self.codec.channels)
        confirmed: set[bytes] = set()
        while confirmed != wanted:
            msg = await pubsub.get_message(timeout=self.connect_timeout)
            if msg is None:
                raise asyncio.TimeoutError("no subscribe confirmation from Redis")
            if msg["type"] == "subscribe":
                confirmed.add(msg["channel"])
            elif msg["type"] == "message":
                self._on_message(msg["channel"], msg["data"])

    async def _listen(self, pubsub: Any) -> None:
        last_heard = time.monotonic()
        pinged_at: float | None = None
        while not self._stopping.is_set():  # type: ignore[union-attr]
            if self._kick:
                raise ConnectionError("publishing failed")
            msg = await pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if msg is None:
                if pinged_at is not None and now - pinged_at > self.keepalive:
                    raise ConnectionError(f"no answer to PING in {self.keepalive:.0f} s")
                if pinged_at is None and now - last_heard > self.keepalive:
                    await pubsub.ping()
                    pinged_at = now
                continue
            last_heard, pinged_at = now, None
            kind = msg["type"]
            if kind == "message":
                self._on_message(msg["channel"], msg["data"])
            elif kind == "unsubscribe" and not pubsub.subscribed:
                raise ConnectionError("unsubscribed by the server")

    def _on_message(self, channel: bytes, data: bytes) -> None:
        self.counts["received"] += 1
        if self.codec.is_own_echo(data):
            self.counts["own_echoes"] += 1
            return
        try:
            cast = self.codec.decode(channel, data)
        except InvalidMessage as exc:
            self.invalid[exc.reason] += 1
            self._throttle.log(logging.WARNING, f"invalid:{exc.reason}",
                               "redis bridge: dropped an invalid message on %s: %s (%r)",
                               channel.decode("utf-8", "replace"), exc, data[:200])
            return
        if cast is None:
            self.counts["own_echoes"] += 1
            return
        self.counts["delivered"] += 1
        assert self._deliver is not None
        self._deliver(cast)


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except _TRANSPORT_ERRORS as exc:
        log.debug("redis cleanup: %r", exc)


async def _quietly_close(pubsub: Any) -> None:
    try:
        await asyncio.wait_for(pubsub.aclose(), 2.0)
    except (*_TRANSPORT_ERRORS, RuntimeError) as exc:
        log.debug("closing pubsub: %r", exc)
