"""GrpcBridge: a peer mesh over gRPC, compatible with Go ``ssgrpc`` (PROTOCOL.md section 7).

    from sacsock_actors.bridges import GrpcBridge
    server.set_multihome_backend(GrpcBridge(
        "0.0.0.0:30001", ["ss-peer@10.0.0.6:30001", "10.0.0.7:30001"],
        cert_file="peer.crt", key_file="peer.key", shared_key=open("key", "rb").read()))

There is no broker: every instance serves ``transport.Propagate`` on ``listen`` and dials every
entry of ``peers``. The bridge runs in the cluster's one BridgeActor, so the whole Ray cluster
has ONE listener and sends each cast to each peer once.

Behaviour the caller can rely on:

- Secure by default: TLS with the shared certificate (our server presents ``cert_file`` +
  ``key_file``; our client trusts ``cert_file`` as its only root and checks the peer's name:
  the ``cn@`` part of the entry, else its host) and an HS256 JWT on every RPC (see
  ``grpc_auth``). An RPC without a valid token is refused with UNAUTHENTICATED, counted
  (``rejected_<reason>``) and logged without the token. ``insecure=True`` turns both off,
  loudly: plaintext, no authentication, for development only.
- ``start()`` returns once the listener is bound (it raises if it cannot bind); peers may be
  up or not, in any order. Each peer has its own channel, which gRPC reconnects with capped,
  jittered backoff (``reconnect_min`` .. ``reconnect_max``), and its own bounded queue
  (``queue_size``) drained by its own task, one RPC in flight: a publisher's casts reach each
  peer in order, and a slow or dead peer never delays the others. A cast for a peer that is
  not connected, or whose queue is full, is dropped and counted (``dropped``), not replayed
  later; an RPC that fails (``rpc_timeout``, refused) is counted (``failed``) and not retried,
  so nothing is ever delivered twice. Like upstream, the fleet is best-effort.
- What arrives is delivered locally only, never forwarded, so a full mesh has no loops.
  Invalid casts (``grpc_codec.REASONS``) are refused with INVALID_ARGUMENT and counted.
- ``stats()``: per peer ``sent``, ``failed``, ``dropped``, ``queued``, ``connected``,
  ``last_error``; per remote host that called us ``received`` and ``rejected``; and totals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import grpc

from ..errors import ConfigError
from .base import Bridge, Cast, Deliver
from .grpc_auth import RECOMMENDED_KEY_BYTES, TokenSource, TokenVerifier
from .grpc_codec import (
    BROADCAST,
    AuthError,
    InvalidCast,
    Peer,
    cast_fields,
    decode_fields,
    parse_hostport,
    parse_peer,
)
from .proto import transport_pb2 as pb
from .proto import transport_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

_READY = grpc.ChannelConnectivity.READY
_INSECURE_WARNING = (
    "gRPC bridge is INSECURE: plaintext on %s, and every peer's casts are accepted WITHOUT "
    "authentication; anyone who can reach the port can cast to every socket. Development only."
)


class _Throttle:
    """At most one log line per key per ``every`` seconds; says how many were held back."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def log(self, level: int, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.every:
            self._held[key] += 1
            return
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like this not logged)"
            args = (*args, held)
        log.log(level, msg, *args)


def _read(path: str | None, what: str) -> bytes:
    if not path:
        raise ConfigError(f"the secure gRPC bridge needs {what} (or insecure=True for development)")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the gRPC {what} {path!r}: {exc.strerror}") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"the gRPC {what} {path!r} is not PEM")
    return data


def _remote_host(peer: str) -> str:
    """``ipv4:127.0.0.1:5555`` / ``ipv6:[::1]:5555`` -> the host part."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host = rest.rpartition(":")[0]
        return host.strip("[]") or rest
    return peer or "unknown"


class _PeerLink:
    """One peer: its channel, its bounded ordered queue, and the task that drains it."""

    def __init__(self, bridge: GrpcBridge, peer: Peer) -> None:
        self.peer = peer
        self.bridge = bridge
        self.queue: deque[tuple[str, Any]] = deque()
        self.counts: Counter[str] = Counter()
        self.connected = False
        self.last_error = ""
        self._wake = asyncio.Event()
        options = [
            ("grpc.initial_reconnect_backoff_ms", int(bridge.reconnect_min * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(bridge.reconnect_min * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(bridge.reconnect_max * 1000)),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.use_local_subchannel_pool", 1),  # our own connection, never shared
        ]
        if bridge.insecure:
            self.channel = grpc.aio.insecure_channel(peer.target, options=options)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=bridge._cert_pem)
            options.append(("grpc.ssl_target_name_override", peer.tls_name))
            self.channel = grpc.aio.secure_channel(peer.target, creds, options=options)
        stub = pb_grpc.PropagateStub(self.channel)
        self._calls = {BROADCAST: stub.DoBroadcast, "DoRoomcast": stub.DoRoomcast}
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch()), loop.create_task(self._send_loop())]

    def put(self, method: str, message: Any) -> None:
        if not self.connected or len(self.queue) >= self.bridge.queue_size:
            self.counts["dropped"] += 1
            return
        self.queue.append((method, message))
        self._wake.set()

    async def _watch(self) -> None:
        """Track the channel's state; gRPC reconnects (with capped jittered backoff) when asked."""
        state = self.channel.get_state(try_to_connect=True)
        while True:
            up = state == _READY
            if up != self.connected:
                self.connected = up
                if up:
                    log.info("grpc bridge: connected to %s", self.peer.spec)
                else:
                    self._drop_queue()
                    self.bridge._throttle.log(logging.WARNING, f"down:{self.peer.spec}",
                                              "grpc bridge: peer %s is not connected (%s)",
                                              self.peer.spec, state.name)
            await self.channel.wait_for_state_change(state)
            state = self.channel.get_state(try_to_connect=True)

    def _drop_queue(self) -> None:
        self.counts["dropped"] += len(self.queue)
        self.queue.clear()

    async def _send_loop(self) -> None:
        metadata_of = self.bridge._metadata
        timeout = self.bridge.rpc_timeout
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            method, message = self.queue.popleft()
            try:
                await self._calls[method](message, timeout=timeout, metadata=metadata_of())
            except grpc.aio.AioRpcError as exc:
                self.counts["failed"] += 1
                self.last_error = exc.code().name
                self.bridge._throttle.log(logging.WARNING, f"fail:{self.peer.spec}:{exc.code().name}",
                                          "grpc bridge: a cast to %s failed: %s %s", self.peer.spec,
                                          exc.code().name, (exc.details() or "")[:200])
            else:
                self.counts["sent"] += 1

    def stats(self) -> dict[str, Any]:
        return {"sent": self.counts["sent"], "failed": self.counts["failed"],
                "dropped": self.counts["dropped"], "queued": len(self.queue),
                "connected": int(self.connected), "last_error": self.last_error}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.channel.close(grace=None)


class _Servicer(pb_grpc.PropagateServicer):
    def __init__(self, bridge: GrpcBridge) -> None:
        self.bridge = bridge

    async def DoBroadcast(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        return await self.bridge._receive(None, request, context)

    async def DoRoomcast(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        return await self.bridge._receive(request.room, request, context)


class GrpcBridge(Bridge):
    """A Bridge over a gRPC peer mesh (see the module docstring).

    ``listen`` is ``host:port`` to serve on; ``peers`` a list of ``cn@host:port`` or
    ``host:port``. Secure mode (the default) needs ``cert_file``, ``key_file`` (PEM; the same
    certificate on every peer, with the names peers are dialled by in its subjectAltName) and
    ``shared_key`` (bytes or str, the same on every peer). ``insecure=True`` takes none of them.
    """

    name = "grpc"

    def __init__(
        self,
        listen: str,
        peers: list[str] | tuple[str, ...] = (),
        *,
        cert_file: str | None = None,
        key_file: str | None = None,
        shared_key: bytes | str | None = None,
        insecure: bool = False,
        queue_size: int = 10_000,
        rpc_timeout: float = 5.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
    ) -> None:
        parse_hostport(listen, "the gRPC listen address")
        if isinstance(peers, str):
            raise ConfigError("peers is a list of 'cn@host:port' or 'host:port' entries, not one string")
        parsed = [parse_peer(p) for p in peers]
        if len({p.target for p in parsed}) != len(parsed):
            raise ConfigError(f"a gRPC peer is listed twice: {list(peers)}")
        if queue_size < 1 or rpc_timeout <= 0:
            raise ConfigError("need queue_size >= 1 and rpc_timeout > 0")
        if not 0 < reconnect_min <= reconnect_max:
            raise ConfigError("need 0 < reconnect_min <= reconnect_max")
        self.listen = listen
        self.peers = parsed
        self.insecure = bool(insecure)
        if self.insecure:
            if cert_file or key_file or shared_key:
                raise ConfigError("insecure=True uses no certificate, key or shared key; drop them "
                                  "(or drop insecure to use them)")
            self._cert_pem = self._key_pem = self._shared_key = b""
            log.warning(_INSECURE_WARNING, listen)
        else:
            self._cert_pem = _read(cert_file, "certificate file (cert_file)")
            self._key_pem = _read(key_file, "private key file (key_file)")
            key = shared_key.encode("utf-8") if isinstance(shared_key, str) else shared_key
            if not key or not isinstance(key, bytes):
                raise ConfigError("the secure gRPC bridge needs shared_key (bytes or str, the same on "
                                  "every peer), or insecure=True for development")
            if len(key) < RECOMMENDED_KEY_BYTES:
                log.warning("grpc bridge: the shared key is %d bytes; %d or more are recommended",
                            len(key), RECOMMENDED_KEY_BYTES)
            self._shared_key = key
        self.queue_size = queue_size
        self.rpc_timeout = rpc_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._reset_runtime()

    _CONFIG = ("listen", "peers", "insecure", "_cert_pem", "_key_pem", "_shared_key", "queue_size",
               "rpc_timeout", "reconnect_min", "reconnect_max")

    def _reset_runtime(self) -> None:
        self.counts: Counter[str] = Counter()
        self.inbound: dict[str, Counter[str]] = {}
        self._links: list[_PeerLink] = []
        self._server: Any = None
        self._deliver: Deliver | None = None
        self._tokens = None if self.insecure else TokenSource(self._shared_key)
        self._verifier = None if self.insecure else TokenVerifier(self._shared_key)
        self._throttle = _Throttle()

    # the bridge is pickled into its actor: only the configuration travels
    def __getstate__(self) -> dict[str, Any]:
        return {k: self.__dict__[k] for k in self._CONFIG}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_runtime()

    def __repr__(self) -> str:  # never the key
        mode = "insecure" if self.insecure else "tls+token"
        return f"GrpcBridge({self.listen!r}, {[p.spec for p in self.peers]!r}, {mode})"

    # ---- Bridge interface -----------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        if self._server is not None:
            return
        self._deliver = deliver
        server = grpc.aio.server(options=[
            ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared listener
            # upstream fires one goroutine per cast, so a Go peer's burst arrives as thousands
            # of concurrent RPCs; gRPC's defaults (1,000 soft / 3,000 hard) cancel some of them
            ("grpc.server.max_pending_requests", self.queue_size),
            ("grpc.server.max_pending_requests_hard_limit", 2 * self.queue_size),
        ])
        pb_grpc.add_PropagateServicer_to_server(_Servicer(self), server)
        try:
            if self.insecure:
                log.warning(_INSECURE_WARNING, self.listen)
                bound = server.add_insecure_port(self.listen)
            else:
                creds = grpc.ssl_server_credentials([(self._key_pem, self._cert_pem)])
                bound = server.add_secure_port(self.listen, creds)
        except RuntimeError as exc:
            await server.stop(None)
            raise ConfigError(f"the gRPC bridge cannot listen on {self.listen}: {exc}") from None
        if not bound:
            await server.stop(None)
            raise ConfigError(f"the gRPC bridge cannot listen on {self.listen} (in use?)")
        await server.start()
        self._server = server
        self._links = [_PeerLink(self, p) for p in self.peers]
        log.info("grpc bridge: listening on %s (%s), %d peers: %s", self.listen,
                 "INSECURE" if self.insecure else "TLS + token", len(self.peers),
                 ", ".join(p.spec for p in self.peers) or "none")

    async def publish(self, casts: list[Cast]) -> None:
        now = time.time_ns()
        for cast in casts:
            try:
                method, fields = cast_fields(cast)
            except ValueError as exc:
                self.counts["unencodable"] += 1
                self._throttle.log(logging.WARNING, "unencodable", "grpc bridge: cannot send %s", exc)
                continue
            message = (pb.Broadcast if method == BROADCAST else pb.Roomcast)(timestamp=now, **fields)
            self.counts["published"] += 1
            for link in self._links:
                link.put(method, message)

    async def shutdown(self) -> None:
        links, self._links = self._links, []
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None

    def stats(self) -> dict[str, Any]:
        peers = {link.peer.spec: link.stats() for link in self._links}
        return {
            "published": 0, "received": 0, "rejected": 0, "invalid": 0,
            **self.counts,
            "listening": int(self._server is not None),
            "connected": sum(1 for link in self._links if link.connected),
            "sent": sum(p["sent"] for p in peers.values()),
            "failed": sum(p["failed"] for p in peers.values()),
            "dropped": sum(p["dropped"] for p in peers.values()),
            "peers": peers,
            "inbound": {host: dict(c) for host, c in self.inbound.items()},
        }

    # ---- receiving --------------------------------------------------------------------------

    def _metadata(self) -> tuple[tuple[str, str], ...] | None:
        if self._tokens is None:
            return None
        return (("authorization", self._tokens.header()),)

    async def _receive(self, room: str | None, request: Any, context: Any) -> Any:
        host = _remote_host(context.peer())
        counts = self.inbound.get(host)
        if counts is None:
            counts = self.inbound[host] = Counter()
        if self._verifier is not None:
            values = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
            try:
                self._verifier.verify(values)
            except AuthError as exc:
                counts["rejected"] += 1
                self.counts["rejected"] += 1
                self.counts[f"rejected_{exc.reason}"] += 1
                self._throttle.log(logging.WARNING, f"auth:{host}:{exc.reason}",
                                   "grpc bridge: refused an RPC from %s: %s", host, exc.reason)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"refused: {exc.reason}")
        if self._deliver is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the receiver is not ready")
        try:
            cast = decode_fields(room, request.event, request.data, request.dataType)
        except InvalidCast as exc:
            counts["invalid"] += 1
            self.counts["invalid"] += 1
            self.counts[f"invalid_{exc.reason}"] += 1
            self._throttle.log(logging.WARNING, f"invalid:{exc.reason}",
                               "grpc bridge: refused a cast from %s: %s", host, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:200])
        counts["received"] += 1
        self.counts["received"] += 1
        self._deliver(cast)
        return pb.Result(success=True, timestamp=request.timestamp)
