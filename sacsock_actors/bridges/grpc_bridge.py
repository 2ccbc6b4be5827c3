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
  (``queue_size``) drained by its own thread, one RPC in flight: a publisher's casts reach each
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
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import grpc

from ..errors import ConfigError
from ..logs import Throttle
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
    """One peer: its channel, its bounded ordered queue, and the thread that drains it.

    The sender is a thread making blocking unary calls, one in flight: gRPC's blocking stub
    costs about 2/3 of the asyncio stub per call, and one call at a time is what keeps a
    publisher's order at an upstream peer (which handles each RPC in its own goroutine).
    The event loop only appends to the queue.
    """

    def __init__(self, bridge: GrpcBridge, peer: Peer) -> None:
        self.peer = peer
        self.queue: deque[tuple[str, Any]] = deque()
        self.sent = self.failed = self.dropped = 0
        self.connected = False
        self.last_error = ""
        self._limit = bridge.queue_size
        self._timeout = bridge.rpc_timeout
        self._throttle = bridge._throttle
        self._tokens = None if bridge.insecure else TokenSource(bridge._shared_key)
        self._cv = threading.Condition()
        self._stopping = False
        self._kick: Any = None
        options: list[tuple[str, Any]] = [
            ("grpc.initial_reconnect_backoff_ms", int(bridge.reconnect_min * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(bridge.reconnect_min * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(bridge.reconnect_max * 1000)),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.use_local_subchannel_pool", 1),  # our own connection, never shared
        ]
        if bridge.insecure:
            self.channel = grpc.insecure_channel(peer.target, options=options)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=bridge._cert_pem)
            options.append(("grpc.ssl_target_name_override", peer.tls_name))
            self.channel = grpc.secure_channel(peer.target, creds, options=options)
        stub = pb_grpc.PropagateStub(self.channel)
        self._calls = {BROADCAST: stub.DoBroadcast, "DoRoomcast": stub.DoRoomcast}
        # gRPC reconnects (capped jittered backoff) as long as someone watches the state
        self.channel.subscribe(self._on_state, try_to_connect=True)
        self._thread = threading.Thread(target=self._send_loop, name=f"grpc-peer {peer.spec}", daemon=True)
        self._thread.start()

    def put_all(self, items: list[tuple[str, Any]]) -> None:
        """From the event loop: queue casts in order; what does not fit is dropped, counted."""
        with self._cv:
            if not self.connected:
                self.dropped += len(items)
                return
            room = self._limit - len(self.queue)
            if room < len(items):
                self.dropped += len(items) - max(room, 0)
                items = items[:max(room, 0)]
            self.queue.extend(items)
            self._cv.notify()

    def _on_state(self, state: grpc.ChannelConnectivity) -> None:
        up = state == _READY
        if state == grpc.ChannelConnectivity.IDLE and not self._stopping:
            # a lost connection leaves the channel IDLE: ask gRPC to connect again (a pending
            # "ready" future is what makes its state watcher try; it resolves when READY)
            if self._kick is None or self._kick.done():
                self._kick = grpc.channel_ready_future(self.channel)
        with self._cv:
            if up == self.connected:
                return
            self.connected = up
            if not up:  # a peer that is away gets nothing stale when it comes back
                self.dropped += len(self.queue)
                self.queue.clear()
        if up:
            log.info("grpc bridge: connected to %s", self.peer.spec)
        else:
            self._throttle.log(logging.WARNING, f"down:{self.peer.spec}",
                               "grpc bridge: peer %s is not connected (%s)", self.peer.spec, state.name)

    def _send_loop(self) -> None:
        while True:
            with self._cv:
                while not self.queue and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                method, message = self.queue.popleft()
            metadata = None if self._tokens is None else (("authorization", self._tokens.header()),)
            try:
                self._calls[method](message, timeout=self._timeout, metadata=metadata)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
                self.failed += 1
                self.last_error = code.name
                details = (exc.details() if hasattr(exc, "details") else "") or ""
                self._throttle.log(logging.WARNING, f"fail:{self.peer.spec}:{code.name}",
                                   "grpc bridge: a cast to %s failed: %s %s", self.peer.spec,
                                   code.name, details[:200])
            else:
                self.sent += 1

    def stats(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                "queued": len(self.queue), "connected": int(self.connected), "last_error": self.last_error}

    def close(self) -> None:
        """Blocking: stop the thread (an RPC in flight is cancelled) and close the channel."""
        with self._cv:
            self._stopping = True
            self.dropped += len(self.queue)
            self.queue.clear()
            self._cv.notify()
        self.channel.unsubscribe(self._on_state)
        if self._kick is not None:
            self._kick.cancel()
        # gRPC's state watcher notices it has no subscriber within its 0.2 s poll; closing
        # the channel under it makes that thread raise. Wait (bounded) for it to stop.
        watcher = getattr(self.channel, "_connectivity_state", None)
        deadline = time.monotonic() + 2.0
        while getattr(watcher, "polling", False) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.channel.close()
        self._thread.join(self._timeout + 5)


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
        self._verifier = None if self.insecure else TokenVerifier(self._shared_key)
        self._throttle = Throttle(log)

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
        items: list[tuple[str, Any]] = []
        for cast in casts:
            try:
                method, fields = cast_fields(cast)
            except ValueError as exc:
                self.counts["unencodable"] += 1
                self._throttle.log(logging.WARNING, "unencodable", "grpc bridge: cannot send %s", exc)
                continue
            kind = pb.Broadcast if method == BROADCAST else pb.Roomcast
            items.append((method, kind(timestamp=now, **fields)))
        self.counts["published"] += len(items)
        for link in self._links:
            link.put_all(items)

    async def shutdown(self) -> None:
        links, self._links = self._links, []
        for link in links:
            await asyncio.to_thread(link.close)
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
        deliver = self._deliver
        if deliver is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the receiver is not ready")
            raise AssertionError("unreachable: abort raises")
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
        deliver(cast)
        return pb.Result(success=True, timestamp=request.timestamp)
