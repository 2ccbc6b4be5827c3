"""Client-to-server websocket frames (RFC 6455), parsed from the raw byte stream. Pure.

:class:`FrameParser` takes every byte a client sends after the upgrade, in reads of any
size, and returns whole messages and control frames, unmasked. It enforces what the
server side of RFC 6455 must: every client frame masked (else 1002), no reserved bits
(no extension is negotiated), known opcodes, control frames final and at most 125
bytes, continuation frames only inside a fragmented message, text valid UTF-8 (1007,
when ``check_utf8``), and a message no larger than ``max_size`` (1009, noticed from the
frame header, before its payload is buffered). Any violation raises
:class:`ProtocolError`; the parser is unusable afterwards (the connection must close).

Also the bits of the handshake and of closing that are pure: :func:`accept_key`,
:func:`parse_close`, :func:`close_frame`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from .rfc6455 import INVALID_TEXT, PROTOCOL_ERROR, valid_utf8

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

MESSAGE_TOO_BIG = 1009
NO_STATUS = 1005  # a close frame without a code (never sent on the wire)

PING = b"\x89\x00"
"""A server ping frame without payload."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Unmask = Callable[[bytes, bytes], bytes]
"""``unmask(masked_payload, mask4) -> payload``."""


class ProtocolError(Exception):
    """A client broke RFC 6455: close the connection with ``code``.

    ``kind`` names the rule (``unmasked``, ``utf8``, ``size``, ``protocol``) for counters;
    ``frames`` holds what the same read parsed correctly before the violation.
    """

    def __init__(self, code: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.kind = kind
        self.frames: list[tuple[int, bytes]] = []


def unmask_bytes(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` repeated (pure Python, whole payload at once)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class FrameParser:
    """Incremental parser of one client's frames (see the module docstring).

    ``feed(data)`` returns ``[(opcode, payload), ...]``: ``OP_TEXT``/``OP_BINARY`` for whole
    messages (fragments joined), ``OP_CLOSE``/``OP_PING``/``OP_PONG`` for control frames,
    in arrival order. Payloads are ``bytes``.
    """

    __slots__ = ("max_size", "check_utf8", "unmask", "_buf", "_parts", "_part_op", "_part_len",
                 "_failed")

    def __init__(self, max_size: int, check_utf8: bool = True, unmask: Unmask = unmask_bytes) -> None:
        if not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be a positive int, got {max_size!r}")
        self.max_size = max_size
        self.check_utf8 = check_utf8
        self.unmask = unmask
        self._buf = bytearray()
        self._parts: list[bytes] | None = None  # fragments of a message not finished yet
        self._part_op = 0
        self._part_len = 0
        self._failed: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held back: the start of a frame not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._failed is not None:
            raise self._failed
        out: list[tuple[int, bytes]] = []
        buf = self._buf
        if buf:
            buf += data
            data = buf  # type: ignore[assignment]  # parsed in place; slices of it are copies
        n = len(data)
        pos = 0
        unmask = self.unmask
        try:
            while n - pos >= 2:
                b0 = data[pos]
                b1 = data[pos + 1]
                if not b1 & 0x80:
                    raise ProtocolError(PROTOCOL_ERROR, "unmasked", "client frame without the mask bit")
                length = b1 & 0x7F
                if length < 126:
                    head = 6
                elif length == 126:
                    if n - pos < 4:
                        break
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    head = 8
                else:
                    if n - pos < 10:
                        break
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                    if length >> 63:
                        raise ProtocolError(PROTOCOL_ERROR, "protocol", "64-bit length with the top bit set")
                    head = 14
                op = b0 & 0x0F
                if b0 & 0x70:
                    raise ProtocolError(PROTOCOL_ERROR, "protocol", "reserved bits set (no extension agreed)")
                if op > OP_BINARY:
                    if op > OP_PONG or op < OP_CLOSE:
                        raise ProtocolError(PROTOCOL_ERROR, "protocol", f"unknown opcode {op:#x}")
                    if not b0 & 0x80 or length > 125:
                        raise ProtocolError(PROTOCOL_ERROR, "protocol", "fragmented or long control frame")
                elif op == OP_CONTINUATION:
                    if self._parts is None:
                        raise ProtocolError(PROTOCOL_ERROR, "protocol", "continuation outside a message")
                    if self._part_len + length > self.max_size:
                        raise self._too_big(self._part_len + length)
                elif self._parts is not None:
                    raise ProtocolError(PROTOCOL_ERROR, "protocol", "new message inside a fragmented one")
                elif length > self.max_size:
                    raise self._too_big(length)
                end = pos + head + length
                if end > n:
                    break
                payload = unmask(data[pos + head : end], data[pos + head - 4 : pos + head]) if length else b""
                pos = end
                if b0 & 0x80 and op:  # the common case: a whole message in one frame
                    if op == OP_TEXT and self.check_utf8 and not valid_utf8(payload):
                        raise ProtocolError(INVALID_TEXT, "utf8", "text message is not valid UTF-8")
                    out.append((op, payload))
                elif op:  # the first fragment
                    self._parts, self._part_op, self._part_len = [payload], op, length
                else:
                    parts = self._parts
                    assert parts is not None
                    parts.append(payload)
                    self._part_len += length
                    if b0 & 0x80:  # the last fragment
                        payload = b"".join(parts)
                        self._parts = None
                        if self._part_op == OP_TEXT and self.check_utf8 and not valid_utf8(payload):
                            raise ProtocolError(INVALID_TEXT, "utf8", "text message is not valid UTF-8")
                        out.append((self._part_op, payload))
        except ProtocolError as exc:
            exc.frames = out
            self._failed = exc
            self._buf = bytearray()
            self._parts = None
            raise
        if data is buf:
            del buf[:pos]
        elif pos < n:
            self._buf = bytearray(data[pos:])
        return out

    def _too_big(self, size: int) -> ProtocolError:
        return ProtocolError(MESSAGE_TOO_BIG, "size",
                             f"message of {size}+ bytes is over max_message_size={self.max_size}")


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a client's close frame; ``NO_STATUS`` when it carries none.

    Raises ProtocolError for a 1-byte payload, a code a peer must not send, or a reason
    that is not UTF-8."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) < 2:
        raise ProtocolError(PROTOCOL_ERROR, "protocol", "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not (3000 <= code < 5000 or code in _PEER_CODES):
        raise ProtocolError(PROTOCOL_ERROR, "protocol", f"close code {code} may not be sent")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(INVALID_TEXT, "utf8", "close reason is not valid UTF-8") from None
    return code, reason


# RFC 6455 section 7.4.1: the codes an endpoint may put in a close frame (IANA registry)
_PEER_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def close_frame(code: int) -> bytes:
    """A server close frame carrying ``code`` and no reason."""
    if not 1000 <= code < 5000:
        raise ValueError(f"close code must be in 1000..4999, got {code}")
    return bytes((0x88, 2)) + code.to_bytes(2, "big")


def pong_frame(payload: bytes) -> bytes:
    """The server's answer to a ping (same payload, at most 125 bytes)."""
    return bytes((0x8A, len(payload))) + payload


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")
