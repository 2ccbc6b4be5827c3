"""What the RFC 6455 checks cost per inbound message, next to what a message costs anyway.

    python bench/rfc6455_cost.py            # prints a table, writes bench/results/rfc6455.json

Side by side in one run, per message (ns), in reads of 64 frames as a busy socket
delivers them: the gateway's frame parser (``wsparse.FrameParser``, with the gateway's
unmask) plus ``parse_inbound`` with the UTF-8 check of text frames off (the reference:
what every message costs anyway) and on. The ratio column is (on - off) / off. The mask
rule costs one bit test per frame header inside the parser, too little to measure apart.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sacsock_actors.gateways.wsconn import UNMASK  # noqa: E402
from sacsock_actors.gateways.wsparse import FrameParser  # noqa: E402
from sacsock_actors.protocol import parse_inbound  # noqa: E402

BATCH = 64


def client_frame(payload: bytes) -> bytes:
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def per_message_ns(fn, messages: int) -> float:
    runs = timeit.repeat(fn, number=1, repeat=7)
    return min(runs) / messages * 1e9


def measure(label: str, payload: bytes) -> dict:
    message = b"chat\x02" + payload
    stream = client_frame(message) * BATCH
    loops = 2048

    def parse(check_utf8: bool):
        def run() -> None:
            parser = FrameParser(1 << 20, check_utf8=check_utf8, unmask=UNMASK)
            for _ in range(loops // BATCH):
                for _op, data in parser.feed(stream):
                    parse_inbound(data)
        return run

    messages = (loops // BATCH) * BATCH
    off = per_message_ns(parse(False), messages)
    on = per_message_ns(parse(True), messages)
    return {"message": label, "bytes": len(message), "reference_ns": round(off, 1),
            "utf8_on_ns": round(on, 1), "utf8_ratio": round((on - off) / off, 3)}


def main() -> None:
    rows = [
        measure("ascii 32 B", b"x" * 27),
        measure("ascii 1 KiB", b"x" * 1019),
        measure("utf-8 1 KiB", ("é" * 509).encode() + b"x"),
        measure("utf-8 16 KiB", ("✓" * 5460).encode()),
    ]
    print(f"{'message':<14}{'bytes':>7}{'utf8 off ns':>13}{'utf8 on ns':>12}{'extra':>8}")
    for r in rows:
        print(f"{r['message']:<14}{r['bytes']:>7}{r['reference_ns']:>13}{r['utf8_on_ns']:>12}"
              f"{r['utf8_ratio']:>8.1%}")
    out = Path(__file__).resolve().parent / "results" / "rfc6455.json"
    out.write_text(json.dumps({"rows": rows, "batch": BATCH}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
