"""Hypothesis properties of the gRPC bridge codec (grpc_codec.py), through the real protobuf
messages the bridge sends (``transport_pb2``). No grpc channel, no network."""

import json

from cast_strategies import casts, hostile_text, json_values, names
from google.protobuf.message import DecodeError
from hypothesis import example, given
from hypothesis import strategies as st

from sacsock_actors.bridges.base import Cast
from sacsock_actors.bridges.grpc_codec import (
    AUTH_REASONS,
    BROADCAST,
    REASONS,
    AuthError,
    InvalidCast,
    bearer_token,
    cast_fields,
    check_claims,
    decode_fields,
    parse_hostport,
    parse_peer,
)
from sacsock_actors.bridges.proto import transport_pb2 as pb
from sacsock_actors.errors import ConfigError


def to_message(cast: Cast) -> tuple[str, bytes]:
    method, fields = cast_fields(cast)
    kind = pb.Broadcast if method == BROADCAST else pb.Roomcast
    return method, kind(timestamp=1, **fields).SerializeToString()


def from_message(method: str, raw: bytes) -> Cast:
    msg = (pb.Broadcast if method == BROADCAST else pb.Roomcast).FromString(raw)
    room = None if method == BROADCAST else msg.room
    return decode_fields(room, msg.event, msg.data, msg.dataType)


def _not_json(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON: a browser's JSON.parse refuses it")


def assert_deliverable(cast: Cast) -> None:
    """What a decoded cast must be: a frame local sockets can receive, text frames UTF-8,
    JSON data what a browser's JSON.parse takes."""
    frame = cast.frame()
    assert frame.binary == (cast.type == "B")
    if cast.type != "B":
        text = cast.payload.decode("utf-8")
        if cast.type == "J":
            json.loads(text, parse_constant=_not_json)
    assert cast.event.encode("utf-8") and "\x01" not in cast.event and "\x02" not in cast.event
    if cast.room is not None:
        assert cast.room.encode("utf-8")


@given(casts())
def test_round_trip_through_protobuf(cast):
    method, raw = to_message(cast)
    assert method == ("DoBroadcast" if cast.room is None else "DoRoomcast")
    assert from_message(method, raw) == cast


@given(st.sampled_from(["DoBroadcast", "DoRoomcast"]), st.binary())
def test_arbitrary_message_bytes_raise_only_invalid_cast(method, raw):
    try:
        cast = from_message(method, raw)
    except DecodeError:
        return  # refused by protobuf before the codec sees it (grpc's deserializer)
    except InvalidCast as exc:
        assert exc.reason in REASONS
        return
    assert_deliverable(cast)


@given(st.one_of(st.none(), hostile_text), hostile_text, st.binary(), st.integers(-2**31, 2**31 - 1))
@example(None, "e", '[1]'.encode("utf-16"), 2)  # json.loads guesses UTF-16 from bytes
@example(None, "e", b"[" * 100_000, 2)  # RecursionError, not a ValueError
@example(None, "e", b"NaN", 2)  # a Python extension, not JSON
@example("\udfff", "\ud800", b"", 0)  # lone surrogates: no frame can carry them
def test_arbitrary_fields_raise_only_invalid_cast(room, event, data, data_type):
    try:
        cast = decode_fields(room, event, data, data_type)
    except InvalidCast as exc:
        assert exc.reason in REASONS
        return
    assert_deliverable(cast)
    assert (cast.room, cast.event, cast.payload) == (room, event, data)


@given(st.lists(st.text(), max_size=3))
def test_bearer_token_raises_only_auth_error(values):
    try:
        token = bearer_token(values)
    except AuthError as exc:
        assert exc.reason in AUTH_REASONS
        return
    assert values == [f"Bearer {token}"] and token and " " not in token


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(["iam", "exp", "x"]), json_values)),
       st.floats(0, 2e9))
def test_check_claims_raises_only_auth_error(claims, now):
    try:
        check_claims(claims, now)
    except AuthError as exc:
        assert exc.reason in AUTH_REASONS
        return
    assert claims["iam"] and type(claims["exp"]) is int and claims["exp"] >= int(now)


@given(st.text())
@example("h:²")  # str.isdigit() is True, int() refuses it
@example("h:" + "9" * 5000)  # int() refuses more than 4300 digits
@example("h:١٢")  # Arabic-Indic digits: int() would read 12
def test_addresses_raise_only_config_error(value):
    try:
        host, port = parse_hostport(value)
    except ConfigError:
        pass
    else:
        digits = value.rpartition(":")[2]
        assert host and digits.isascii() and int(digits) == port <= 65535
    try:
        peer = parse_peer(value)
    except ConfigError:
        return
    assert peer.spec == value and peer.tls_name and value.endswith(peer.target)


@given(st.from_regex(r"\A[a-z0-9.]{1,20}\Z"), st.integers(1, 65535), st.one_of(st.none(), names))
def test_parse_peer_reads_what_it_is_given(host, port, cn):
    spec = f"{host}:{port}" if cn is None or "@" in cn else f"{cn}@{host}:{port}"
    peer = parse_peer(spec)
    assert peer.target == f"{host}:{port}" and peer.tls_name == (host if spec == peer.target else cn)
