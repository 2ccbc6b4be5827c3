"""What the RFC 6455 checks cost per inbound message, next to what a message costs anyway.

    python bench/rfc6455_cost.py            # prints a table, writes bench/results/rfc6455.json

Side by side in one run, per message (ns): the UTF-8 check of a text frame
(``valid_utf8``), the mask scan of the raw stream (``MaskScanner.feed``, per frame, in reads
of 64 frames as a busy socket delivers them), and the reference: ``parse_inbound`` plus
aiohttp's own frame parser on the same bytes (what every message costs with or without
the checks). The ratio column is check / reference.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader  # noqa: E402

from sacsock_actors.gateways.rfc6455 import MaskScanner, valid_utf8  # noqa: E402
from sacsock_actors.protocol import parse_inbound  # noqa: E402

BATCH = 64


def client_frame(payload: bytes) -> bytes:
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class _Protocol:
    _reading_paused = False

    def pause_reading(self) -> None: ...


def per_message_ns(fn, messages: int) -> float:
    runs = timeit.repeat(fn, number=1, repeat=7)
    return min(runs) / messages * 1e9


def measure(label: str, payload: bytes) -> dict:
    message = b"chat\x02" + payload
    stream = client_frame(message) * BATCH
    scanner = MaskScanner()
    loop = asyncio.new_event_loop()
    loops = 2048

    def utf8() -> None:
        for _ in range(loops):
            valid_utf8(message)

    def mask() -> None:
        for _ in range(loops // BATCH):
            scanner.feed(stream)

    def reference() -> None:
        queue = WebSocketDataQueue(_Protocol(), 1 << 30, loop=loop)  # type: ignore[arg-type]
        reader = WebSocketReader(queue, 1 << 20, compress=False, decode_text=False)
        for _ in range(loops // BATCH):
            reader.feed_data(stream)
        for _ in range(loops):
            parse_inbound(message)

    ref = per_message_ns(reference, loops)
    u = per_message_ns(utf8, loops)
    m = per_message_ns(mask, (loops // BATCH) * BATCH)
    loop.close()
    return {"message": label, "bytes": len(message), "reference_ns": round(ref, 1),
            "utf8_ns": round(u, 1), "utf8_ratio": round(u / ref, 3),
            "mask_ns": round(m, 1), "mask_ratio": round(m / ref, 3)}


def main() -> None:
    rows = [
        measure("ascii 32 B", b"x" * 27),
        measure("ascii 1 KiB", b"x" * 1019),
        measure("utf-8 1 KiB", ("é" * 509).encode() + b"x"),
        measure("utf-8 16 KiB", ("✓" * 5460).encode()),
    ]
    print(f"{'message':<14}{'bytes':>7}{'reference ns':>14}"
          f"{'utf8 ns':>9}{'ratio':>7}{'mask ns':>9}{'ratio':>7}")
    for r in rows:
        print(f"{r['message']:<14}{r['bytes']:>7}{r['reference_ns']:>14}{r['utf8_ns']:>9}"
              f"{r['utf8_ratio']:>7}{r['mask_ns']:>9}{r['mask_ratio']:>7}")
    out = Path(__file__).resolve().parent / "results" / "rfc6455.json"
    out.write_text(json.dumps({"rows": rows, "batch": BATCH}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
