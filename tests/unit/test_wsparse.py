"""FrameParser: client frames across any split of the stream, every RFC 6455 rule it
enforces, and (property) arbitrary bytes raise nothing but its own ProtocolError."""

import base64
import hashlib
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sacsock_actors.gateways.wsparse import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameParser,
    ProtocolError,
    accept_key,
    close_frame,
    parse_close,
    pong_frame,
    unmask_bytes,
)

try:  # the C helper the gateway uses when aiohttp has it: must agree with the pure one
    from aiohttp._websocket.helpers import websocket_mask
except ImportError:  # pragma: no cover - older aiohttp
    websocket_mask = None


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def feed_split(parser: FrameParser, stream: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    out = []
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        out += parser.feed(stream[start:cut])
        start = cut
    return out


messages = st.lists(
    st.tuples(st.sampled_from([OP_TEXT, OP_BINARY]),
              st.one_of(st.text(max_size=100).map(str.encode),
                        st.integers(126, 70_000).map(lambda n: b"p" * n))),
    min_size=1, max_size=6,
)


@given(messages, st.lists(st.integers(0, 1 << 20), max_size=12))
def test_messages_come_out_whole_and_in_order_however_the_stream_is_split(msgs, cuts):
    stream = b"".join(frame(op, p) for op, p in msgs)
    parser = FrameParser(1 << 20)
    assert feed_split(parser, stream, cuts) == msgs
    assert parser.buffered == 0


@given(st.lists(st.binary(max_size=300), min_size=2, max_size=5), st.sampled_from([OP_TEXT, OP_BINARY]),
       st.lists(st.integers(0, 5000), max_size=8))
def test_fragments_are_joined_and_control_frames_pass_between_them(parts, op, cuts):
    if op == OP_TEXT:
        parts = [p.decode("latin-1").encode() for p in parts]  # every fragment valid UTF-8
    stream = b""
    for i, p in enumerate(parts):
        stream += frame(op if i == 0 else 0, p, fin=i == len(parts) - 1)
        if i == 0:
            stream += frame(OP_PING, b"hi")
    out = feed_split(FrameParser(1 << 20), stream, cuts)
    assert out == [(OP_PING, b"hi"), (op, b"".join(parts))]


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_protocol_error(data):
    parser = FrameParser(1000)
    try:
        for i in range(0, len(data), 7):
            for op, payload in parser.feed(data[i:i + 7]):
                assert op in (OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)
                assert isinstance(payload, bytes)
    except ProtocolError as exc:
        assert exc.code in (1002, 1007, 1009)
        with pytest.raises(ProtocolError):  # stays failed
            parser.feed(frame(OP_TEXT, b"x"))


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_pure_unmask_is_an_xor_with_the_repeated_key(payload, mask):
    expected = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    assert unmask_bytes(payload, mask) == expected
    if websocket_mask is not None:
        ba = bytearray(payload)
        websocket_mask(mask, ba)
        assert bytes(ba) == expected


def test_an_unmasked_frame_is_1002_and_keeps_what_came_before():
    parser = FrameParser(1000)
    with pytest.raises(ProtocolError) as err:
        parser.feed(frame(OP_TEXT, b"ok") + frame(OP_TEXT, b"bad", mask=False))
    assert (err.value.code, err.value.kind) == (1002, "unmasked")
    assert err.value.frames == [(OP_TEXT, b"ok")]


def test_the_mask_bit_is_checked_from_the_first_two_bytes():
    parser = FrameParser(1000)
    with pytest.raises(ProtocolError):
        parser.feed(frame(OP_TEXT, b"x" * 50, mask=False)[:2])


def test_oversized_is_1009_from_the_header_alone():
    parser = FrameParser(100)
    with pytest.raises(ProtocolError) as err:
        parser.feed(frame(OP_BINARY, b"x" * 101)[:8])
    assert (err.value.code, err.value.kind) == (1009, "size")


def test_fragments_add_up_to_the_size_limit():
    parser = FrameParser(100)
    parser.feed(frame(OP_BINARY, b"x" * 60, fin=False))
    with pytest.raises(ProtocolError) as err:
        parser.feed(frame(0, b"x" * 41))
    assert err.value.code == 1009


def test_a_message_at_the_limit_passes():
    assert FrameParser(100).feed(frame(OP_BINARY, b"x" * 100)) == [(OP_BINARY, b"x" * 100)]


@pytest.mark.parametrize(("check", "code"), [(True, 1007), (False, None)])
def test_invalid_utf8_text(check, code):
    parser = FrameParser(100, check_utf8=check)
    data = frame(OP_TEXT, b"\xff\xfe")
    if code is None:
        assert parser.feed(data) == [(OP_TEXT, b"\xff\xfe")]
    else:
        with pytest.raises(ProtocolError) as err:
            parser.feed(data)
        assert (err.value.code, err.value.kind) == (code, "utf8")


def test_binary_need_not_be_utf8():
    assert FrameParser(100).feed(frame(OP_BINARY, b"\xff")) == [(OP_BINARY, b"\xff")]


@pytest.mark.parametrize("data", [
    frame(OP_TEXT, b"x", rsv=4),                      # reserved bit, no extension agreed
    frame(0x3, b"x"),                                 # unknown data opcode
    frame(0xB, b"x"),                                 # unknown control opcode
    frame(OP_PING, b"x", fin=False),                  # fragmented control frame
    frame(OP_PING, b"x" * 126),                       # control frame over 125 bytes
    frame(0, b"x"),                                   # continuation with nothing to continue
    frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"),  # new message inside a fragmented one
    b"\x82\xff\x80" + b"\x00" * 7 + b"mask",          # 64-bit length with the top bit set
])
def test_protocol_violations_are_1002(data):
    with pytest.raises(ProtocolError) as err:
        FrameParser(1 << 20).feed(data)
    assert (err.value.code, err.value.kind) == (1002, "protocol")


def test_close_frames():
    assert parse_close(b"") == (1005, "")
    assert parse_close(struct.pack("!H", 1000) + "bye ✓".encode()) == (1000, "bye ✓")
    assert parse_close(struct.pack("!H", 4000)) == (4000, "")
    for bad, code in [(b"\x03", 1002), (struct.pack("!H", 1005), 1002), (struct.pack("!H", 999), 1002),
                      (struct.pack("!H", 1006), 1002), (struct.pack("!H", 1000) + b"\xff", 1007)]:
        with pytest.raises(ProtocolError) as err:
            parse_close(bad)
        assert err.value.code == code
    assert close_frame(1009) == b"\x88\x02\x03\xf1"
    with pytest.raises(ValueError):
        close_frame(1)
    assert pong_frame(b"ab") == b"\x8a\x02ab"


def test_accept_key_is_the_rfc_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    key = base64.b64encode(os.urandom(16)).decode()
    guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    expected = base64.b64encode(hashlib.sha1((key + guid).encode()).digest())
    assert accept_key(key) == expected.decode()


def test_max_size_must_be_positive():
    with pytest.raises(ValueError, match="max_size"):
        FrameParser(0)
