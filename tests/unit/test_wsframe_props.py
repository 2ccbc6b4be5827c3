"""Hypothesis: the server frame writer against an independent RFC 6455 reader."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from sacsock_actors.gateways.wsframe import ws_frame

sizes = st.one_of(
    st.integers(0, 300), st.integers(65_530, 65_540), st.sampled_from([125, 126, 65_535, 65_536])
)


def read_frame(data: bytes) -> tuple[bool, int, bytes, int]:
    """(fin, opcode, payload, bytes used) of one unmasked frame, checking RFC 6455 rules."""
    b0, b1 = data[0], data[1]
    assert b0 & 0x70 == 0, "reserved bits set"
    assert not b1 & 0x80, "server frames are never masked"
    n, pos = b1 & 0x7F, 2
    if n == 126:
        (n,) = struct.unpack_from("!H", data, 2)
        pos = 4
        assert n >= 126, "minimal length encoding"
    elif n == 127:
        (n,) = struct.unpack_from("!Q", data, 2)
        pos = 10
        assert n >= 1 << 16 and n < 1 << 63, "minimal length encoding"
    return bool(b0 & 0x80), b0 & 0x0F, data[pos : pos + n], pos + n


@given(sizes, st.booleans(), st.binary(max_size=8))
def test_frame_round_trip(size, binary, seed):
    payload = (seed or b"x") * (size // max(1, len(seed or b"x")) + 1)
    payload = payload[:size]
    fin, opcode, got, used = read_frame(ws_frame(payload, binary))
    assert (fin, opcode, got) == (True, 2 if binary else 1, payload)
    assert used == len(ws_frame(payload, binary))


@given(st.lists(st.tuples(st.binary(max_size=300), st.booleans()), max_size=8))
def test_concatenated_frames_split_back(frames):
    stream = b"".join(ws_frame(p, b) for p, b in frames)
    out = []
    while stream:
        _, opcode, payload, used = read_frame(stream)
        out.append((payload, opcode == 2))
        stream = stream[used:]
    assert out == frames
