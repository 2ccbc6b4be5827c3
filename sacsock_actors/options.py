"""Server options with safe defaults, and the upgrade origin check. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from .errors import ConfigError

OriginCheck = Callable[[str | None, str | None], bool]
"""``check(origin_header, host_header) -> allowed``."""

MiB = 1 << 20


def same_origin(origin: str | None, host: str | None) -> bool:
    """No Origin is allowed; else Origin's host:port must equal Host (docs/protocol.md).

    Compared case-insensitively, as upstream compares the Origin URL's host with the
    request's Host header.
    """
    if origin is None:
        return True
    try:
        origin_host = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(origin_host) and host is not None and origin_host.lower() == host.lower()


def allow_origins(origins: Sequence[str]) -> OriginCheck:
    """An origin check admitting same-origin requests plus the listed origins.

    Entries are full origins (``https://app.example.com``) or ``*`` for any origin.
    """
    allowed = {o.rstrip("/").lower() for o in origins}

    def check(origin: str | None, host: str | None) -> bool:
        if "*" in allowed or same_origin(origin, host):
            return True
        return origin is not None and origin.rstrip("/").lower() in allowed

    return check


#: values of ``ServerOptions.shard_placement``
SHARD_PLACEMENTS = ("auto", "spread")
#: values of ``ServerOptions.gateway_transport``
GATEWAY_TRANSPORTS = ("stream", "ray")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Everything configurable about serving. Defaults are the safe choice.

    - ``allowed_origins``: extra origins allowed besides same-origin (``["*"]`` allows all);
      ``origin_check`` replaces the rule entirely with your own function.
    - ``max_message_size``: largest inbound message in bytes; larger closes that socket
      with 1009.
    - ``heartbeat``: seconds between websocket pings (None disables).
    - ``max_outgoing_buffer``: unsent bytes a socket may hold; a socket still above it
      after ``slow_consumer_grace`` seconds is closed (1013) and counted.
    - ``room_shards``: number of RoomShardActors rooms are hashed onto.
    - ``shard_placement``: where the shards run. ``"auto"``: where Ray puts them (in
      practice the driver's node). ``"spread"``: round-robin over the nodes alive at
      start, each shard preferring its node; when that node dies Ray re-creates the shard
      on another one and the gateways rebuild it (needs a Ray whose actors take
      ``label_selector`` and ``fallback_strategy``).
    - ``handler_threads``: thread pool size, per gateway, for plain handlers that block.
    - ``blocking_threshold``: seconds; plain handlers run inline on the gateway's loop, and
      one whose call takes longer than this moves to the thread pool for good (None: every
      plain handler runs in the pool). See ``sacsock_actors.gateways.dispatch``.
    - ``gateway_transport``: how casts go from one gateway to another. ``"stream"`` (the
      default): one authenticated TCP stream per gateway pair, listening on an ephemeral
      port of each gateway's node address (a random cluster key made at start; Ray calls
      while a stream is down), less CPU per cast; ``"ray"``: a Ray actor call per batch.
      See ``sacsock_actors.gateways.stream``.
    - ``max_peer_backlog``: casts a gateway queues for one other gateway or one bridge
      that is slow or hung (behind the batch in flight). Past it, further casts to that
      peer are dropped, counted (``casts_dropped_backlog``) and logged once per episode,
      so a stopped process cannot exhaust the others' memory (Ray fails calls to a dead
      actor at once, but waits for a hung one). A bridge actor bounds its queue of
      arrivals toward the gateways alike (``dropped_backlog`` in its stats). Membership
      changes are never dropped.
    - ``access_log``: one log line per HTTP request (upgrades included) through Ray's log
      pipeline; off by default (it does not scale to many connections).

    Limits on what one client can make a gateway do (a socket that breaks one is closed
    with 1008, policy violation, and counted in ``stats()``; None turns a limit off):

    - ``max_event_name``: longest inbound event name, in characters.
    - ``max_room_name``: longest room name a socket may join, in characters
      (``Socket.join`` raises ``LimitExceeded``; the socket is then closed).
    - ``max_rooms_per_socket``: rooms one socket may be in, its id room not counted.
    - ``max_messages_per_second``: inbound messages per socket per second (bursts of up to
      one second's worth).
    - ``handshake_timeout``: seconds a connection has to send a complete upgrade (or any
      HTTP) request, and on keep-alive each next request after a response (an idle
      keep-alive connection is closed then); ``max_pending_upgrades``: connections per
      gateway that may be waiting to do so. Slower or further ones are aborted.
    - ``check_utf8``: text frames must be valid UTF-8 (RFC 6455), else close 1007.
      Unmasked client frames always close the connection (1002).
    - ``error_log_burst``: handler errors logged with a traceback per handler per minute;
      the rest are only counted (``handler_errors``, ``log_lines_suppressed``).
    """

    allowed_origins: tuple[str, ...] = ()
    origin_check: OriginCheck | None = None
    max_message_size: int = MiB
    heartbeat: float | None = 30.0
    max_outgoing_buffer: int = 4 * MiB
    slow_consumer_grace: float = 5.0
    room_shards: int = 2
    shard_placement: str = "auto"
    handler_threads: int = 16
    blocking_threshold: float | None = 0.01
    access_log: bool = False
    max_event_name: int | None = 256
    max_room_name: int | None = 256
    max_rooms_per_socket: int | None = 1000
    max_messages_per_second: float | None = 5000.0
    handshake_timeout: float = 10.0
    max_pending_upgrades: int = 256
    check_utf8: bool = True
    error_log_burst: int = 5
    gateway_transport: str = "stream"
    max_peer_backlog: int = 1_000_000

    def __post_init__(self) -> None:
        if isinstance(self.allowed_origins, str):
            raise ConfigError("allowed_origins takes a list of origins, not one string")
        object.__setattr__(self, "allowed_origins", tuple(self.allowed_origins))
        for name in ("max_message_size", "max_outgoing_buffer", "room_shards", "handler_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.shard_placement not in SHARD_PLACEMENTS:
            raise ConfigError(
                f"shard_placement must be one of {', '.join(map(repr, SHARD_PLACEMENTS))}, "
                f"got {self.shard_placement!r}"
            )
        if self.gateway_transport not in GATEWAY_TRANSPORTS:
            raise ConfigError(
                f"gateway_transport must be one of {', '.join(map(repr, GATEWAY_TRANSPORTS))}, "
                f"got {self.gateway_transport!r}"
            )
        if self.heartbeat is not None and self.heartbeat <= 0:
            raise ConfigError("heartbeat must be a positive number of seconds or None")
        if self.blocking_threshold is not None and not self.blocking_threshold > 0:
            raise ConfigError("blocking_threshold must be a positive number of seconds or None")
        for name in ("max_event_name", "max_room_name", "max_rooms_per_socket"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive int or None, got {value!r}")
        rate = self.max_messages_per_second
        if rate is not None and not (isinstance(rate, (int, float)) and rate > 0):
            raise ConfigError(f"max_messages_per_second must be a positive number or None, got {rate!r}")
        if not (isinstance(self.handshake_timeout, (int, float)) and self.handshake_timeout > 0):
            raise ConfigError(
                f"handshake_timeout must be a positive number of seconds, got {self.handshake_timeout!r}"
            )
        for name in ("max_pending_upgrades", "error_log_burst", "max_peer_backlog"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.slow_consumer_grace < 0:
            raise ConfigError("slow_consumer_grace must be >= 0 seconds")

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Apply the configured origin rule to one upgrade request."""
        if self.origin_check is not None:
            return bool(self.origin_check(origin, host))
        if self.allowed_origins:
            return allow_origins(self.allowed_origins)(origin, host)
        return same_origin(origin, host)


def options_from_kwargs(base: ServerOptions, kwargs: dict) -> ServerOptions:
    """``base`` with ``kwargs`` applied; unknown names raise ConfigError listing valid ones."""
    names = {f.name for f in dataclasses.fields(ServerOptions)}
    unknown = set(kwargs) - names
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}; valid options: {sorted(names)}")
    return dataclasses.replace(base, **kwargs)
