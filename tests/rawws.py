"""A raw-socket websocket client for hostile-input tests: hand-built frames, half-sent
upgrades, unmasked frames. asyncio streams; no websocket library in between."""

from __future__ import annotations

import asyncio
import os
import struct

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: sac-sock\r\n{extra}\r\n"
)


def upgrade_request(port: int, path: str = "/socket", extra: str = "") -> bytes:
    return UPGRADE.format(path=path, port=port, extra=extra).encode()


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    """One client frame (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + body


class RawWS:
    """An upgraded connection speaking raw frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, path: str = "/socket", extra: str = "") -> RawWS:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(upgrade_request(port, path, extra))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            writer.close()
            raise ConnectionError(f"upgrade refused: {status!r}")
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self, timeout: float = 20.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (servers never mask)."""
        async def read() -> tuple[int, bytes]:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return b0 & 0x0F, await self.reader.readexactly(n)

        return await asyncio.wait_for(read(), timeout)

    async def close_code(self, timeout: float = 20.0) -> int | None:
        """Read until the server's close frame; its code (None if the connection just ended)."""
        try:
            while True:
                op, payload = await self.read_frame(timeout)
                if op == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def ended(self, timeout: float = 20.0) -> bool:
        """True once the server has closed the TCP connection (EOF or reset)."""
        async def drain() -> None:
            while await self.reader.read(65536):
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()
