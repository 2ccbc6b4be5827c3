"""The floor of a Python websocket server on uvloop: what any of them must spend per message.

One ``asyncio.Protocol`` on uvloop, nothing else: a minimal HTTP upgrade (no origin check,
no limits), then each read is cut into masked client frames, unmasked with aiohttp's C
helper, and answered with one ``transport.write``. It speaks the benchmark app's events
(``echo`` -> ``echo`` back; ``join`` -> ``joined``; ``pub`` ``room|data`` -> ``m`` to the
room) and nothing of the product: no handler dispatch, no hub, no heartbeat, no Ray. It is
not a server to use: it exists so that ``bench/run.py --servers uvloop_floor,...`` shows how
close to the interpreter's and the kernel's cost the product is, and how far that cost
itself is from Go's.

    python bench/servers/uvloop_floor.py --port 8081

Prints ``READY {"pid": ..., "port": ...}`` once listening; stops on SIGTERM/SIGINT or when
its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib

import uvloop
from aiohttp._websocket.helpers import websocket_mask
from rawserver import answer, leave_all, ready_until_stopped

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Floor(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.mine: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        leave_all(self.transport, self.mine)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.upgrade(buf[:end])
            buf = buf[end + 4:]
        transport = self.transport
        assert transport is not None
        pos, size = 0, len(buf)
        while size - pos >= 6:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = pos + 2
            if n == 126:
                if size - pos < 8:
                    break
                n = int.from_bytes(buf[head:head + 2], "big")
                head += 2
            elif n == 127:
                if size - pos < 14:
                    break
                n = int.from_bytes(buf[head:head + 8], "big")
                head += 8
            if size < head + 4 + n:
                break
            mask = buf[head:head + 4]
            payload = bytearray(buf[head + 4:head + 4 + n])
            websocket_mask(mask, payload)
            pos = head + 4 + n
            op = b0 & 0x0F
            if op == 0x8:  # close: answer it and end
                transport.write(b"\x88\x02\x03\xe8")
                transport.close()
                return
            if op == 0x9:
                transport.write(bytes((0x8A, n)) + payload)  # control payloads are < 126 B
                continue
            if op not in (0x1, 0x2):
                continue
            answer(bytes(payload), transport, self.mine)
        self.buf = buf[pos:]

    def upgrade(self, head: bytes) -> None:
        transport = self.transport
        assert transport is not None
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get(b"sec-websocket-key")
        if key is None:
            transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            transport.close()
            return
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        proto = b"Sec-WebSocket-Protocol: sac-sock\r\n" if b"sac-sock" in headers.get(
            b"sec-websocket-protocol", b"") else b""
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                        + proto + b"\r\n")
        self.upgraded = True


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", port, backlog=1024)
    await ready_until_stopped(port)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    uvloop.run(main(parser.parse_args().port))
