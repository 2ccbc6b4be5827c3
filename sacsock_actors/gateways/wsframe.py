"""Server-to-client websocket frame headers (RFC 6455), built once per cast. Pure.

The gateway writes ``header + payload`` straight to every member's transport, so a cast
is framed once however many sockets receive it. Server frames are never masked.
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_BINARY = 0x2


def frame_header(length: int, binary: bool) -> bytes:
    """Header of a final, unmasked, uncompressed text or binary frame of ``length`` bytes."""
    first = 0x80 | (OP_BINARY if binary else OP_TEXT)
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def ws_frame(payload: bytes, binary: bool) -> bytes:
    """A whole websocket frame carrying ``payload``."""
    return frame_header(len(payload), binary) + payload
