"""Bytes of the gateway-to-gateway stream (``gateway_transport="stream"``). Pure.

One TCP connection per ordered gateway pair carries the casts one gateway sends another
(``Deliver`` and ``DeliverAll`` ops); ``gateways/stream.py`` does the I/O. Everything
multi-byte is big-endian.

Handshake (``secret`` is the cluster's random key, given to every gateway at spawn)::

    server -> client   CHALLENGE  b"SSG1" | server nonce (16)
    client -> server   RESPONSE   b"SSG1" | client nonce (16) | id length (1) | sender id
                                  | HMAC-SHA256(secret, b"c" | server nonce | client nonce | id)
    server -> client   PROOF      HMAC-SHA256(secret, b"s" | client nonce | server nonce)

Then the client sends batches and the server answers each applied batch with an ack::

    batch   length (4, of what follows) | seq (8) | op count (4) | ops
    op      0x01 | room length (2) | room (UTF-8) | wire length (4) | wire     Deliver
            0x02 | wire length (4) | wire                                      DeliverAll
    ack     seq (8): every batch up to ``seq`` was applied (cumulative)

Nothing from the network is unpickled; any malformed input raises
:class:`StreamCodecError` (the caller closes the connection and counts it).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from .ops import Deliver, DeliverAll

MAGIC = b"SSG1"
NONCE_SIZE = 16
MAC_SIZE = 32
CHALLENGE_SIZE = len(MAGIC) + NONCE_SIZE
#: bytes of a RESPONSE before the sender id (magic, nonce, id length)
RESPONSE_HEAD = len(MAGIC) + NONCE_SIZE + 1
MAX_ID = 255
#: largest batch body accepted (a bigger length prefix is an error, not an allocation)
MAX_BATCH = 64 << 20
MIN_SECRET = 16

OP_DELIVER = 1
OP_DELIVER_ALL = 2

_LEN = struct.Struct(">I")
_HEAD = struct.Struct(">IQI")  # length, seq, count
_SEQ_COUNT = struct.Struct(">QI")
_ROOM = struct.Struct(">BH")  # op, room length
_WIRE = struct.Struct(">I")
_ALL = struct.Struct(">BI")  # op, wire length
ACK = struct.Struct(">Q")
ACK_SIZE = ACK.size
LEN_SIZE = _LEN.size


class StreamCodecError(ValueError):
    """Bytes on a gateway stream that break this format (or fail authentication)."""


# ---- handshake ----------------------------------------------------------------------------


def check_secret(secret: bytes) -> None:
    """Raise ValueError unless ``secret`` is usable as the cluster key."""
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET:
        raise ValueError(f"the gateway stream secret must be at least {MIN_SECRET} random bytes")


def challenge(server_nonce: bytes) -> bytes:
    if len(server_nonce) != NONCE_SIZE:
        raise ValueError(f"a nonce is {NONCE_SIZE} bytes")
    return MAGIC + server_nonce


def parse_challenge(data: bytes) -> bytes:
    """The server nonce of a CHALLENGE (exactly :data:`CHALLENGE_SIZE` bytes)."""
    if len(data) != CHALLENGE_SIZE or data[: len(MAGIC)] != MAGIC:
        raise StreamCodecError("not a gateway stream challenge")
    return bytes(data[len(MAGIC) :])


def _client_mac(secret: bytes, server_nonce: bytes, client_nonce: bytes, sender: bytes) -> bytes:
    return hmac.new(secret, b"c" + server_nonce + client_nonce + sender, hashlib.sha256).digest()


def _server_mac(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(secret, b"s" + client_nonce + server_nonce, hashlib.sha256).digest()


def response(secret: bytes, server_nonce: bytes, client_nonce: bytes, sender: str) -> bytes:
    """The client's RESPONSE to a challenge, naming the sending gateway."""
    raw = sender.encode()
    if len(raw) > MAX_ID or len(client_nonce) != NONCE_SIZE:
        raise ValueError("gateway id longer than 255 bytes or a bad nonce")
    mac = _client_mac(secret, server_nonce, client_nonce, raw)
    return MAGIC + client_nonce + bytes((len(raw),)) + raw + mac


def response_size(head: bytes) -> int:
    """The whole RESPONSE's size from its first :data:`RESPONSE_HEAD` bytes."""
    if len(head) < RESPONSE_HEAD or head[: len(MAGIC)] != MAGIC:
        raise StreamCodecError("not a gateway stream handshake")
    return RESPONSE_HEAD + head[RESPONSE_HEAD - 1] + MAC_SIZE


def verify_response(secret: bytes, server_nonce: bytes, data: bytes) -> tuple[bytes, str]:
    """``(client nonce, sender id)`` of a RESPONSE whose MAC is right; else StreamCodecError."""
    if len(data) != response_size(data):
        raise StreamCodecError("gateway stream handshake of the wrong size")
    client_nonce = bytes(data[len(MAGIC) : len(MAGIC) + NONCE_SIZE])
    raw = bytes(data[RESPONSE_HEAD:-MAC_SIZE])
    expected = _client_mac(secret, server_nonce, client_nonce, raw)
    if not hmac.compare_digest(expected, bytes(data[-MAC_SIZE:])):
        raise StreamCodecError("gateway stream handshake failed authentication")
    try:
        return client_nonce, raw.decode()
    except UnicodeDecodeError:
        raise StreamCodecError("gateway id is not UTF-8") from None


def proof(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    """The server's PROOF that it knows the secret too."""
    return _server_mac(secret, server_nonce, client_nonce)


def verify_proof(secret: bytes, server_nonce: bytes, client_nonce: bytes, data: bytes) -> None:
    if not hmac.compare_digest(_server_mac(secret, server_nonce, client_nonce), bytes(data)):
        raise StreamCodecError("gateway stream server failed authentication")


# ---- batches ------------------------------------------------------------------------------


def encode_batch(seq: int, ops: list) -> bytes:
    """One batch (length prefix included) of ``Deliver``/``DeliverAll`` ops.

    Raises TypeError for any other op (caller misuse: those go over Ray)."""
    parts = [b""]
    append = parts.append
    for op in ops:
        kind = type(op)
        if kind is Deliver:
            room = op.room.encode("utf-8", "surrogatepass")
            if len(room) > 0xFFFF:
                raise ValueError(f"room name of {len(room)} bytes is too long for the stream")
            append(_ROOM.pack(OP_DELIVER, len(room)))
            append(room)
            append(_WIRE.pack(len(op.wire)))
            append(op.wire)
        elif kind is DeliverAll:
            append(_ALL.pack(OP_DELIVER_ALL, len(op.wire)))
            append(op.wire)
        else:
            raise TypeError(f"only Deliver and DeliverAll go over a gateway stream, not {kind.__name__}")
    size = sum(map(len, parts)) + _SEQ_COUNT.size
    if size > MAX_BATCH:
        raise ValueError(f"batch of {size} bytes is over the stream limit of {MAX_BATCH}")
    parts[0] = _HEAD.pack(size, seq, len(ops))
    return b"".join(parts)


def split_frames(buf: bytearray) -> list[bytes]:
    """Take every complete batch body (length prefix removed) off the front of ``buf``."""
    out = []
    pos = 0
    end = len(buf)
    while end - pos >= LEN_SIZE:
        (size,) = _LEN.unpack_from(buf, pos)
        if size > MAX_BATCH or size < _SEQ_COUNT.size:
            raise StreamCodecError(f"batch length {size} out of bounds")
        if end - pos - LEN_SIZE < size:
            break
        out.append(bytes(buf[pos + LEN_SIZE : pos + LEN_SIZE + size]))
        pos += LEN_SIZE + size
    if pos:
        del buf[:pos]
    return out


def decode_batch(body: bytes) -> tuple[int, list]:
    """``(seq, ops)`` of one batch body (as :func:`split_frames` gives it)."""
    n = len(body)
    if n < _SEQ_COUNT.size:
        raise StreamCodecError("batch shorter than its header")
    seq, count = _SEQ_COUNT.unpack_from(body, 0)
    pos = _SEQ_COUNT.size
    ops: list = []
    append = ops.append
    try:
        for _ in range(count):
            kind = body[pos]
            if kind == OP_DELIVER:
                _, rlen = _ROOM.unpack_from(body, pos)
                pos += _ROOM.size
                room = body[pos : pos + rlen]
                pos += rlen
                (wlen,) = _WIRE.unpack_from(body, pos)
                pos += _WIRE.size
                if pos + wlen > n or len(room) != rlen:
                    raise StreamCodecError("op runs past the end of its batch")
                append(Deliver(room.decode("utf-8", "surrogatepass"), body[pos : pos + wlen]))
                pos += wlen
            elif kind == OP_DELIVER_ALL:
                _, wlen = _ALL.unpack_from(body, pos)
                pos += _ALL.size
                if pos + wlen > n:
                    raise StreamCodecError("op runs past the end of its batch")
                append(DeliverAll(body[pos : pos + wlen]))
                pos += wlen
            else:
                raise StreamCodecError(f"unknown op code {kind}")
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise StreamCodecError(f"malformed batch: {exc}") from None
    if pos != n:
        raise StreamCodecError(f"{n - pos} bytes after the last op of a batch")
    return seq, ops


def ack(seq: int) -> bytes:
    return ACK.pack(seq)
