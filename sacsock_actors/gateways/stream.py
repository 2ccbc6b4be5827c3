"""Casts between gateways over one authenticated TCP stream per ordered gateway pair.

With ``gateway_transport="stream"`` a gateway listens on an ephemeral port of its node's
address (:class:`StreamServer`), and sends its casts to a peer through a
:class:`PeerStream`: the peer's stream once connected, Ray calls before that and
whenever the stream is down. Bytes and handshake: ``sacsock_actors/streamcodec.py``.

Order: a PeerStream is the ``send`` of the peer's ``batching.Outbox``, which keeps one
batch in flight; a batch on the stream counts as sent only once the peer acked it (it
was applied), a Ray call once it returned. So when the path changes the other path has
nothing in flight, and a publisher's casts reach the peer in the order they were made.

Faults: a stream that breaks with a batch unacked fails that batch (the Outbox's
``on_error`` counts its casts lost: it may or may not have been applied, so it is not
resent); later batches go over Ray while the stream reconnects, with a capped, jittered
exponential backoff, asking the peer's address again over Ray (a restarted peer listens
on a new port). A connection that fails the handshake is closed and counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from .. import streamcodec as codec

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
#: connections a gateway lets wait for their handshake at once; more are closed at once
MAX_PENDING_HANDSHAKES = 64
BACKOFF_BASE = 0.05
BACKOFF_CAP = 5.0


class StreamLost(ConnectionError):
    """A gateway stream broke with a batch written and not acked."""


class StreamServer:
    """Accepts authenticated streams from peer gateways; ``apply(ops)`` gets each batch."""

    def __init__(
        self,
        secret: bytes,
        apply: Callable[[list], None],
        stats: Counter[str],
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        codec.check_secret(secret)
        self._secret = secret
        self.apply = apply
        self.stats = stats
        self.handshake_timeout = handshake_timeout
        self._server: asyncio.AbstractServer | None = None
        self.conns: set[_Inbound] = set()
        self.address: tuple[str, int] | None = None

    async def start(self, host: str) -> tuple[str, int]:
        """Listen on an ephemeral port of ``host``; returns ``(host, port)``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Inbound(self), host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = (host, port)
        return self.address

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.conns):
            conn.abort()

    def __repr__(self) -> str:  # never the secret
        return f"StreamServer(address={self.address!r})"


class _Inbound(asyncio.Protocol):
    """One peer's stream, server side: challenge, verify, then apply batches and ack."""

    def __init__(self, server: StreamServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.nonce = os.urandom(codec.NONCE_SIZE)
        self.peer: str | None = None  # the sender's gateway id once authenticated
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        pending = sum(1 for c in self.server.conns if c.peer is None)
        self.server.conns.add(self)
        if pending >= MAX_PENDING_HANDSHAKES:
            self.server.stats["stream_auth_failed"] += 1
            log.warning("gateway stream from %s refused: %d handshakes pending", self._remote(), pending)
            self.abort()
            return
        transport.write(codec.challenge(self.nonce))
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.server.handshake_timeout, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        if self.peer is None:
            self.server.stats["stream_auth_failed"] += 1
            log.warning("gateway stream from %s: no handshake in time; closed", self._remote())
            self.abort()

    def _remote(self) -> Any:
        return None if self.transport is None else self.transport.get_extra_info("peername")

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.server.conns.discard(self)
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        stats = self.server.stats
        if self.peer is None:
            try:
                if len(buf) < codec.RESPONSE_HEAD:
                    return
                size = codec.response_size(bytes(buf[: codec.RESPONSE_HEAD]))
                if len(buf) < size:
                    return
                client_nonce, peer = codec.verify_response(self.server._secret, self.nonce, bytes(buf[:size]))
            except codec.StreamCodecError as exc:
                stats["stream_auth_failed"] += 1
                log.warning("gateway stream from %s refused: %s", self._remote(), exc)
                self.abort()
                return
            del buf[:size]
            self.peer = peer
            if self._timer is not None:
                self._timer.cancel()
            assert self.transport is not None
            self.transport.write(codec.proof(self.server._secret, self.nonce, client_nonce))
            stats["stream_accepted"] += 1
            if not buf:
                return
        try:
            bodies = codec.split_frames(buf)
            last = -1
            for body in bodies:
                seq, ops = codec.decode_batch(body)
                stats["stream_batches_in"] += 1
                try:
                    self.server.apply(ops)
                except Exception:  # noqa: BLE001 - a bug in applying must not kill the stream
                    stats["stream_apply_errors"] += 1
                    log.exception("gateway stream from %s: applying a batch failed", self.peer)
                last = seq
        except codec.StreamCodecError as exc:
            stats["stream_bad_frames"] += 1
            log.warning("gateway stream from %s: bad batch (%s); closed", self.peer, exc)
            self.abort()
            return
        if last >= 0 and self.transport is not None:
            self.transport.write(codec.ack(last))


class _Outbound(asyncio.Protocol):
    """A stream to one peer, client side: answer the challenge, check the proof, then
    write batches and read cumulative acks."""

    def __init__(self, secret: bytes, sender: str) -> None:
        self._secret = secret
        self.sender = sender
        self.buf = bytearray()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready.add_done_callback(_retrieve)
        self.transport: asyncio.Transport | None = None
        self.open = False
        self._server_nonce = b""
        self._client_nonce = os.urandom(codec.NONCE_SIZE)
        self._state = "challenge"
        self._waiting: tuple[int, asyncio.Future[None]] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.open = False
        err = StreamLost(f"gateway stream closed: {exc!r}")
        if not self.ready.done():
            self.ready.set_exception(err)
        if self._waiting is not None and not self._waiting[1].done():
            self._waiting[1].set_exception(err)
        self._waiting = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        try:
            if self._state == "challenge":
                if len(buf) < codec.CHALLENGE_SIZE:
                    return
                self._server_nonce = codec.parse_challenge(bytes(buf[: codec.CHALLENGE_SIZE]))
                del buf[: codec.CHALLENGE_SIZE]
                assert self.transport is not None
                self.transport.write(
                    codec.response(self._secret, self._server_nonce, self._client_nonce, self.sender)
                )
                self._state = "proof"
            if self._state == "proof":
                if len(buf) < codec.MAC_SIZE:
                    return
                mac = bytes(buf[: codec.MAC_SIZE])
                codec.verify_proof(self._secret, self._server_nonce, self._client_nonce, mac)
                del buf[: codec.MAC_SIZE]
                self._state = "open"
                self.open = True
                if not self.ready.done():
                    self.ready.set_result(None)
        except codec.StreamCodecError as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
            self.abort()
            return
        n = len(buf) // codec.ACK_SIZE
        if not n:
            return
        (seq,) = codec.ACK.unpack_from(buf, (n - 1) * codec.ACK_SIZE)  # cumulative: the last counts
        del buf[: n * codec.ACK_SIZE]
        waiting = self._waiting
        if waiting is not None and seq >= waiting[0]:
            self._waiting = None
            if not waiting[1].done():
                waiting[1].set_result(None)

    async def send(self, seq: int, data: bytes) -> None:
        """Write one encoded batch and wait for its ack (StreamLost if the stream breaks)."""
        if not self.open or self.transport is None:
            raise StreamLost("gateway stream is not open")
        fut = asyncio.get_running_loop().create_future()
        self._waiting = (seq, fut)
        self.transport.write(data)
        await fut


def _retrieve(fut: asyncio.Future) -> None:
    """Mark a future's exception as seen (a handshake nobody waits for any more)."""
    if not fut.cancelled():
        fut.exception()


class PeerStream:
    """How casts reach one peer gateway: ``send(batch)``, the peer Outbox's sender.

    ``ray_send`` is the Ray call path; ``ask_address()`` asks the peer (over Ray) where
    its stream listens (None: not listening yet)."""

    def __init__(
        self,
        sender: str,
        peer: str,
        secret: bytes,
        ray_send: Callable[[list], Awaitable[Any]],
        ask_address: Callable[[], Awaitable[Any]],
        stats: Counter[str],
        *,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        connect_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        codec.check_secret(secret)
        self.sender = sender
        self.peer = peer
        self._secret = secret
        self.ray_send = ray_send
        self.ask_address = ask_address
        self.stats = stats
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.connect_timeout = connect_timeout
        self.conn: _Outbound | None = None
        self._connecting: asyncio.Task | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._seq = 0
        self._closed = False

    def __repr__(self) -> str:  # never the secret
        return f"PeerStream({self.sender!r} -> {self.peer!r}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        return self.conn is not None and self.conn.open

    async def send(self, batch: list) -> Any:
        conn = self.conn
        if conn is not None and conn.open:
            try:
                data = codec.encode_batch(self._seq + 1, batch)
            except (TypeError, ValueError) as exc:  # nothing in flight on the stream: Ray is safe
                log.warning("batch to %s not encodable for the stream (%s); sent over Ray", self.peer, exc)
                self.stats["stream_unencodable"] += 1
                return await self.ray_send(batch)
            self._seq += 1
            try:
                await conn.send(self._seq, data)
            except StreamLost:
                self._broken(conn)
                raise
            self.stats["stream_batches_out"] += 1
            self.stats["stream_ops_out"] += len(batch)
            return None
        if conn is not None:  # closed since the last batch (acked): nothing lost
            self._broken(conn)
        self._maybe_connect()
        self.stats["stream_fallback_batches"] += 1
        return await self.ray_send(batch)

    def _broken(self, conn: _Outbound) -> None:
        if self.conn is conn:
            self.conn = None
            self.stats["stream_disconnects"] += 1
            log.warning("gateway stream %s -> %s broke; casts go over Ray until it reconnects",
                        self.sender, self.peer)
            self._schedule_retry()
        conn.abort()

    def _schedule_retry(self) -> None:
        self._failures += 1
        delay = min(self.backoff_cap, self.backoff_base * (2 ** min(self._failures, 20)))
        self._retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)

    def _maybe_connect(self) -> None:
        if self._closed or self._connecting is not None or time.monotonic() < self._retry_at:
            return
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        proto: _Outbound | None = None
        try:
            address = await asyncio.wait_for(self.ask_address(), self.connect_timeout)
            if not address:
                raise ConnectionError(f"gateway {self.peer} has no stream listening yet")
            host, port = address
            loop = asyncio.get_running_loop()
            _, made = await asyncio.wait_for(
                loop.create_connection(lambda: _Outbound(self._secret, self.sender), host, port),
                self.connect_timeout,
            )
            proto = made
            await asyncio.wait_for(asyncio.shield(made.ready), self.connect_timeout)
        except asyncio.CancelledError:  # close() while connecting: nothing of it stays open
            if proto is not None:
                proto.abort()
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: Ray meanwhile, retry later
            if proto is not None:
                proto.abort()
            if isinstance(exc, codec.StreamCodecError):
                self.stats["stream_auth_failed"] += 1
            self.stats["stream_connect_failures"] += 1
            self._schedule_retry()
            log.info("gateway stream %s -> %s: connect failed (%r); retry in %.2fs",
                     self.sender, self.peer, exc, max(0.0, self._retry_at - time.monotonic()))
            return
        finally:
            self._connecting = None
        assert proto is not None
        if self._closed:
            proto.abort()
            return
        self.conn = proto
        self._failures = 0
        self.stats["stream_connects"] += 1

    def close(self) -> None:
        """Stop using the stream (the peer is gone or drained); idempotent."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self.conn is not None:
            self.conn.abort()
            self.conn = None
