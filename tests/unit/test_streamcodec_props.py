"""Hypothesis: any batch round-trips; any bytes decode or raise the codec's own error."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from sacsock_actors import streamcodec as codec
from sacsock_actors.ops import Deliver, DeliverAll

ops = st.lists(
    st.one_of(
        st.builds(Deliver, st.text(max_size=40), st.binary(max_size=300)),
        st.builds(DeliverAll, st.binary(max_size=300)),
    ),
    max_size=20,
)


@given(st.integers(0, 2**64 - 1), ops)
def test_round_trip(seq, batch):
    buf = bytearray(codec.encode_batch(seq, batch))
    (body,) = codec.split_frames(buf)
    assert codec.decode_batch(body) == (seq, batch)
    assert not buf


@given(st.lists(ops, min_size=1, max_size=5), st.integers(1, 64))
def test_any_chunking_of_the_stream_gives_the_same_batches(batches, chunk):
    data = b"".join(codec.encode_batch(i, b) for i, b in enumerate(batches))
    buf = bytearray()
    got = []
    for i in range(0, len(data), chunk):
        buf += data[i : i + chunk]
        got += [codec.decode_batch(b) for b in codec.split_frames(buf)]
    assert got == list(enumerate(batches))


@given(st.binary(max_size=200))
def test_garbage_decodes_or_raises_the_codec_error(data):
    try:
        codec.decode_batch(data)
    except codec.StreamCodecError:
        pass
    buf = bytearray(struct.pack(">I", len(data)) + data)
    try:
        for body in codec.split_frames(buf):
            codec.decode_batch(body)
    except codec.StreamCodecError:
        pass


@given(st.binary(max_size=400))
def test_garbage_handshakes_never_authenticate(data):
    try:
        codec.verify_response(b"s" * 32, b"n" * 16, data)
    except codec.StreamCodecError:
        return
    raise AssertionError("random bytes passed the handshake")
