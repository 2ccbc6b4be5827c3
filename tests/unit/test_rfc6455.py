"""MaskScanner follows frame boundaries across any split of the stream; valid_utf8."""

import os
import struct

from hypothesis import given
from hypothesis import strategies as st

from sacsock_actors.gateways.rfc6455 import MaskScanner, valid_utf8


def client_frame(payload: bytes, masked: bool = True, opcode: int = 2) -> bytes:
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)
    return head + (os.urandom(4) if masked else b"") + payload


def feed_split(stream: bytes, cuts: list[int]) -> bool:
    scanner = MaskScanner()
    ok = True
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        ok = scanner.feed(stream[start:cut])
        start = cut
    return ok


payloads = st.lists(
    st.one_of(st.binary(max_size=200), st.integers(126, 70_000).map(lambda n: b"p" * n)),
    min_size=1, max_size=6,
)


@given(payloads, st.lists(st.integers(0, 1 << 20), max_size=12))
def test_masked_frames_pass_however_the_stream_is_split(frames, cuts):
    stream = b"".join(client_frame(p) for p in frames)
    assert feed_split(stream, cuts)


@given(payloads, st.integers(0, 5), st.lists(st.integers(0, 1 << 20), max_size=12))
def test_the_first_unmasked_frame_is_caught_however_the_stream_is_split(frames, bad, cuts):
    bad %= len(frames)
    stream = b"".join(client_frame(p, masked=i != bad) for i, p in enumerate(frames))
    assert not feed_split(stream, cuts)


def test_a_mask_bit_inside_a_payload_is_not_a_header():
    # a payload whose bytes look like an unmasked header must be skipped, not parsed
    stream = client_frame(b"\x81\x05hello" * 20) + client_frame(b"x")
    assert feed_split(stream, [1, 3, 7, 50])


def test_scanner_stays_failed():
    s = MaskScanner()
    assert not s.feed(client_frame(b"x", masked=False))
    assert not s.feed(client_frame(b"x"))


@given(st.text())
def test_valid_utf8_accepts_every_str(text):
    assert valid_utf8(text.encode("utf-8"))


@given(st.binary())
def test_valid_utf8_agrees_with_decode(data):
    try:
        data.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    assert valid_utf8(data) is expected
