"""The gRPC bridge's pure wire rules (PROTOCOL.md section 7). No grpc, no network."""

import subprocess
import sys
import time

import pytest

from sacsock_actors.bridges import Cast
from sacsock_actors.bridges.grpc_codec import (
    AUTH_REASONS,
    BROADCAST,
    ROOMCAST,
    AuthError,
    InvalidCast,
    Peer,
    bearer_token,
    cast_fields,
    check_claims,
    decode_fields,
    parse_hostport,
    parse_peer,
)
from sacsock_actors.errors import ConfigError


@pytest.mark.parametrize("cast, method, code", [
    (Cast(None, "news", "S", b"hi"), BROADCAST, 0),
    (Cast(None, "bin", "B", b"\x00\xff"), BROADCAST, 1),
    (Cast("lobby", "j", "J", b'{"a":1}'), ROOMCAST, 2),
    (Cast("__socket_id:abc", "dm", "S", "é".encode()), ROOMCAST, 0),
])
def test_cast_fields_round_trip(cast, method, code):
    got_method, fields = cast_fields(cast)
    assert got_method == method and fields["dataType"] == code
    assert fields["event"] == cast.event and fields["data"] == cast.payload
    assert fields.get("room") == cast.room
    assert decode_fields(fields.get("room"), fields["event"], fields["data"], fields["dataType"]) == cast


def test_cast_fields_refuses_an_unknown_type():
    with pytest.raises(ValueError, match="'S', 'B' or 'J'"):
        cast_fields(Cast(None, "e", "X", b""))


@pytest.mark.parametrize("room, event, data, code, reason", [
    (None, "e", b"", 3, "bad_data_type"),
    (None, "e", b"", -1, "bad_data_type"),
    (None, "", b"x", 0, "no_event"),
    (None, "a\x01b", b"x", 0, "bad_event"),
    ("r", "a\x02", b"x", 1, "bad_event"),
    ("", "e", b"x", 0, "no_room"),
    (None, "e", b"{nope", 2, "bad_json_payload"),
    (None, "e", b"\xff\xfe", 2, "bad_json_payload"),
    ("r", "e", b"\xff", 0, "bad_utf8"),
])
def test_decode_fields_refuses_with_a_reason(room, event, data, code, reason):
    with pytest.raises(InvalidCast) as err:
        decode_fields(room, event, data, code)
    assert err.value.reason == reason


def test_decode_fields_accepts_any_bytes_as_binary_and_empty_data():
    assert decode_fields(None, "b", b"\xff\x00", 1) == Cast(None, "b", "B", b"\xff\x00")
    assert decode_fields("r", "s", b"", 0) == Cast("r", "s", "S", b"")


@pytest.mark.parametrize("values, reason", [
    ([], "no_header"),
    (["Bearer a", "Bearer b"], "no_header"),
    (["bearer tok"], "bad_bearer"),
    (["Bearer"], "bad_bearer"),
    (["Bearer "], "bad_bearer"),
    (["Bearer a b"], "bad_bearer"),
    (["Basic dXNlcjpwYXNz"], "bad_bearer"),
    (["Bearer  tok"], "bad_bearer"),
])
def test_bearer_token_refusals(values, reason):
    with pytest.raises(AuthError) as err:
        bearer_token(values)
    assert err.value.reason == reason and err.value.reason in AUTH_REASONS


def test_bearer_token_takes_the_token():
    assert bearer_token(["Bearer abc.def.ghi"]) == "abc.def.ghi"


NOW = 1_800_000_000


@pytest.mark.parametrize("claims, reason", [
    ([1, 2], "bad_token"),
    ({"exp": NOW + 60}, "no_iam"),
    ({"iam": "", "exp": NOW + 60}, "no_iam"),
    ({"iam": 5, "exp": NOW + 60}, "no_iam"),
    ({"iam": "x"}, "expired"),
    ({"iam": "x", "exp": 0}, "expired"),
    ({"iam": "x", "exp": NOW - 1}, "expired"),
    ({"iam": "x", "exp": float(NOW + 60)}, "expired"),
    ({"iam": "x", "exp": True}, "expired"),
])
def test_check_claims_refusals(claims, reason):
    with pytest.raises(AuthError) as err:
        check_claims(claims, NOW)
    assert err.value.reason == reason


def test_check_claims_accepts_until_the_second_of_expiry():
    check_claims({"iam": "ssgrpcClient", "exp": NOW}, NOW + 0.9)
    check_claims({"iam": "ssgrpcClient", "exp": NOW + 3600}, NOW)


@pytest.mark.parametrize("spec, peer", [
    ("cn@10.0.0.1:30001", Peer("cn@10.0.0.1:30001", "10.0.0.1:30001", "cn")),
    ("host.example:7", Peer("host.example:7", "host.example:7", "host.example")),
    ("a@b@h:1", Peer("a@b@h:1", "h:1", "a@b")),
    ("[::1]:9000", Peer("[::1]:9000", "[::1]:9000", "::1")),
])
def test_parse_peer(spec, peer):
    assert parse_peer(spec) == peer


@pytest.mark.parametrize("spec", ["", "@h:1", "h", "h:", ":80", "h:port", "h:70000", "h:0", None])
def test_parse_peer_refuses_with_a_clear_message(spec):
    with pytest.raises(ConfigError, match="gRPC peer"):
        parse_peer(spec)


def test_parse_hostport():
    assert parse_hostport("0.0.0.0:0") == ("0.0.0.0", 0)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_hostport("8080")


def test_auth_error_message_never_holds_the_token():
    with pytest.raises(AuthError) as err:
        bearer_token(["Token s3cr3t-value"])
    assert "s3cr3t" not in str(err.value)


def test_codec_is_pure():
    code = ("import sys, sacsock_actors.bridges.grpc_codec; "
            "bad = [m for m in ('grpc', 'google.protobuf', 'jwt', 'ray', 'aiohttp') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_claim_check_uses_the_given_clock_not_the_wall():
    check_claims({"iam": "x", "exp": 10}, 5)  # long past on the wall clock, valid at t=5
    assert time.time() > 10


# regressions found by the properties in test_grpc_codec_props.py


@pytest.mark.parametrize("room, event, data, reason", [
    (None, "e", "[1]".encode("utf-16"), "bad_json_payload"),  # json.loads took UTF-16 bytes
    (None, "e", b"[" * 100_000, "bad_json_payload"),  # RecursionError escaped
    (None, "e", b"[NaN]", "bad_json_payload"),
    (None, "e\ud800", b"1", "bad_utf8"),  # was a cast no frame can carry
    ("\udfff", "e", b"1", "bad_utf8"),
])
def test_json_and_name_regressions(room, event, data, reason):
    with pytest.raises(InvalidCast) as err:
        decode_fields(room, event, data, 2)
    assert err.value.reason == reason


@pytest.mark.parametrize("value", ["h:²", "h:١٢", "h:" + "9" * 5000])
def test_parse_hostport_takes_ascii_port_digits_only(value):
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_hostport(value)
