"""The gateway stream's bytes: handshake MACs, batch framing, and bad input."""

import os
import struct

import pytest

from sacsock_actors import streamcodec as codec
from sacsock_actors.ops import Deliver, DeliverAll, Join

SECRET = b"k" * 32


def handshake(client_secret: bytes, server_secret: bytes, sender: str = "gw-1") -> tuple[bytes, str]:
    server_nonce = os.urandom(16)
    client_nonce = os.urandom(16)
    nonce = codec.parse_challenge(codec.challenge(server_nonce))
    reply = codec.response(client_secret, nonce, client_nonce, sender)
    assert codec.response_size(reply[: codec.RESPONSE_HEAD]) == len(reply)
    got_nonce, got_sender = codec.verify_response(server_secret, server_nonce, reply)
    server_proof = codec.proof(server_secret, server_nonce, got_nonce)
    codec.verify_proof(client_secret, nonce, client_nonce, server_proof)
    return got_nonce, got_sender


def test_handshake_with_the_same_secret_names_the_sender():
    assert handshake(SECRET, SECRET, "gw-7")[1] == "gw-7"


def test_a_wrong_secret_fails_the_response():
    with pytest.raises(codec.StreamCodecError, match="authentication"):
        handshake(b"x" * 32, SECRET)


def test_a_server_without_the_secret_fails_the_proof():
    nonce, cnonce = os.urandom(16), os.urandom(16)
    with pytest.raises(codec.StreamCodecError, match="authentication"):
        codec.verify_proof(SECRET, nonce, cnonce, codec.proof(b"y" * 32, nonce, cnonce))


def test_a_response_is_bound_to_its_challenge():
    cnonce = os.urandom(16)
    old = codec.response(SECRET, b"a" * 16, cnonce, "gw-1")
    with pytest.raises(codec.StreamCodecError):
        codec.verify_response(SECRET, b"b" * 16, old)  # a replayed answer to another challenge


def test_a_tampered_sender_id_fails():
    reply = bytearray(codec.response(SECRET, b"a" * 16, b"c" * 16, "gw-1"))
    reply[codec.RESPONSE_HEAD + 3] = ord("2")
    with pytest.raises(codec.StreamCodecError):
        codec.verify_response(SECRET, b"a" * 16, bytes(reply))


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n\r\nxxxxx", b"SSG2" + b"\0" * 17, b""])
def test_not_a_handshake(data):
    with pytest.raises(codec.StreamCodecError):
        codec.response_size(data)
    with pytest.raises(codec.StreamCodecError):
        codec.parse_challenge(data)


def test_short_secrets_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        codec.check_secret(b"short")
    with pytest.raises(ValueError):
        codec.check_secret("a str secret of enough length")  # type: ignore[arg-type]


def test_batch_round_trip_through_split_frames():
    ops = [Deliver("room", b"\x81\x02hi"), DeliverAll(b"\x82\x00"), Deliver("ünï\ud800", b"")]
    buf = bytearray(codec.encode_batch(5, ops) + codec.encode_batch(6, ops[:1]))
    tail = codec.encode_batch(7, [])
    buf += tail[:3]  # an incomplete third one stays in the buffer
    bodies = codec.split_frames(buf)
    assert [codec.decode_batch(b) for b in bodies] == [(5, ops), (6, ops[:1])]
    assert bytes(buf) == tail[:3]
    buf += tail[3:]
    assert [codec.decode_batch(b) for b in codec.split_frames(buf)] == [(7, [])]
    assert buf == bytearray()


def test_only_casts_go_over_the_stream():
    with pytest.raises(TypeError, match="Join"):
        codec.encode_batch(1, [Join("r")])


def test_oversized_length_prefix_is_an_error_not_an_allocation():
    with pytest.raises(codec.StreamCodecError, match="out of bounds"):
        codec.split_frames(bytearray(struct.pack(">I", codec.MAX_BATCH + 1)))


@pytest.mark.parametrize(
    "body",
    [
        b"\0" * 5,  # shorter than the header
        struct.pack(">QI", 1, 1) + b"\x09",  # unknown op
        struct.pack(">QI", 1, 1) + struct.pack(">BH", 1, 10) + b"abc",  # room past the end
        struct.pack(">QI", 1, 1) + struct.pack(">BI", 2, 100) + b"x",  # wire past the end
        struct.pack(">QI", 1, 2) + struct.pack(">BI", 2, 0),  # fewer ops than counted
        struct.pack(">QI", 1, 0) + b"junk",  # bytes after the last op
        struct.pack(">QI", 1, 1) + struct.pack(">BH", 1, 1) + b"\xff" + struct.pack(">I", 0),  # not UTF-8
    ],
)
def test_malformed_batches_raise_the_codec_error(body):
    with pytest.raises(codec.StreamCodecError):
        codec.decode_batch(body)


def test_ack_is_eight_bytes():
    assert codec.ACK.unpack(codec.ack(2**40)) == (2**40,)
    assert codec.ACK_SIZE == 8
