"""The Redis bridge wire format (PROTOCOL.md section 5) against the shared vectors. No Redis."""

import base64
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from sacsock_actors.bridges import Cast
from sacsock_actors.bridges.redis_codec import (
    REASONS,
    InvalidMessage,
    RedisCodec,
    channels,
    decode_message,
    encode_cast,
    go_json_string,
    mask_url,
)

HERE = Path(__file__).resolve().parent.parent
VECTORS = json.loads((HERE / "vectors" / "sacsock-vectors.json").read_text())["redis"]
VALID = [v for v in VECTORS if v["decoded"] is not None]
INVALID = [v for v in VECTORS if v["decoded"] is None]
CHANNELS = channels()

# why each invalid vector must be rejected
EXPECTED_REASON = {
    "invalid: data type 0": "bad_data_type",
    "invalid: empty event": "no_event",
    "invalid: bad base64": "bad_base64",
    "invalid: payload is not JSON": "bad_json_payload",
    "invalid: not JSON": "bad_json",
    "invalid: unknown data type": "bad_data_type",
}


def _is_roomcast(channel: str) -> bool:
    assert channel in CHANNELS, channel
    return channel == CHANNELS.roomcasts


def _cast_of(decoded: dict) -> Cast:
    data = decoded["data"]
    if "str" in data:
        type_char, payload = "S", data["str"].encode()
    elif "bytes_hex" in data:
        type_char, payload = "B", bytes.fromhex(data["bytes_hex"])
    else:
        type_char, payload = "J", json.dumps(data["json"], separators=(",", ":")).encode()
    return Cast(decoded.get("room"), decoded["event"], type_char, payload)


def test_every_vector_is_covered():
    assert VALID and INVALID
    assert {v["name"] for v in INVALID} == set(EXPECTED_REASON)
    assert set(EXPECTED_REASON.values()) <= set(REASONS)


def test_channel_names():
    assert CHANNELS.roomcasts == "ss-rmhb-group-default:_ss_roomcasts"
    assert CHANNELS.broadcasts == "ss-rmhb-group-default:_ss_broadcasts"
    assert channels("g1") == ("g1:_ss_roomcasts", "g1:_ss_broadcasts")


@pytest.mark.parametrize("vec", VALID, ids=lambda v: v["name"])
def test_valid_vector_decodes(vec):
    t = decode_message(vec["message"].encode(), roomcast=_is_roomcast(vec["channel"]))
    want = vec["decoded"]
    assert t.server == want["server"]
    assert t.cast.event == want["event"]
    assert t.cast.room == (want["room"] if want["kind"] == "roomcast" else None)
    data = want["data"]
    if "str" in data:
        assert (t.cast.type, t.cast.payload.decode()) == ("S", data["str"])
    elif "bytes_hex" in data:
        assert (t.cast.type, t.cast.payload) == ("B", bytes.fromhex(data["bytes_hex"]))
    else:
        assert t.cast.type == "J" and json.loads(t.cast.payload) == data["json"]


@pytest.mark.parametrize("vec", VALID, ids=lambda v: v["name"])
def test_encoding_a_decoded_vector_reproduces_its_bytes(vec):
    cast = _cast_of(vec["decoded"])
    assert encode_cast(cast, vec["decoded"]["server"]) == vec["message"].encode()
    codec = RedisCodec("ss-rmhb-group-default", vec["decoded"]["server"])
    assert codec.encode(cast) == (vec["channel"], vec["message"].encode())


@pytest.mark.parametrize("vec", INVALID, ids=lambda v: v["name"])
def test_invalid_vector_is_rejected_with_a_reason(vec):
    with pytest.raises(InvalidMessage) as err:
        decode_message(vec["message"].encode(), roomcast=_is_roomcast(vec["channel"]))
    assert err.value.reason == EXPECTED_REASON[vec["name"]]
    codec = RedisCodec("ss-rmhb-group-default", "me")
    with pytest.raises(InvalidMessage):
        codec.decode(vec["channel"], vec["message"].encode())


def test_own_echo_is_dropped_and_foreign_is_not():
    vec = VALID[0]
    mine = RedisCodec("ss-rmhb-group-default", vec["decoded"]["server"])
    other = RedisCodec("ss-rmhb-group-default", "ffff")
    raw = vec["message"].encode()
    assert mine.is_own_echo(raw)
    assert mine.decode(vec["channel"], raw) is None
    assert not other.is_own_echo(raw)
    assert other.decode(vec["channel"].encode(), raw) is not None
    # an echo written with a different key order is still recognised by the full decode
    reordered = json.dumps(dict(reversed(list(json.loads(raw).items())))).encode()
    assert not mine.is_own_echo(reordered)
    assert mine.decode(vec["channel"], reordered) is None


# ---- encoding details --------------------------------------------------------------------


def test_key_order_and_omitted_room():
    b = encode_cast(Cast(None, "ev", "B", b"\x00"), "srv")
    assert b == b'{"d":2,"e":"ev","p":"AA==","s":"srv"}'
    assert list(json.loads(b)) == ["d", "e", "p", "s"]
    r = encode_cast(Cast("room", "ev", "J", b"[1]"), "srv")
    assert list(json.loads(r)) == ["d", "e", "r", "p", "s"]
    # an empty room is omitted like Go's omitempty
    assert encode_cast(Cast("", "ev", "S", b""), "srv") == b'{"d":1,"e":"ev","p":"","s":"srv"}'


@pytest.mark.parametrize(
    ("text", "go"),
    [
        ("plain", '"plain"'),
        ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'),
        ('q"b\\s', '"q\\"b\\\\s"'),
        ("\n\r\t\b\f", '"\\n\\r\\t\\b\\f"'),
        ("\x00\x01\x1f\x7f", '"\\u0000\\u0001\\u001f\x7f"'),
        ("é✓😀", '"é✓😀"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("bad\ud800", '"bad\ufffd"'),
    ],
)
def test_strings_are_escaped_as_go_does(text, go):
    assert go_json_string(text) == go
    if "\ud800" not in text:
        assert json.loads(go) == text


def test_unknown_type_cannot_be_encoded():
    with pytest.raises(ValueError):
        encode_cast(Cast(None, "e", "X", b""), "s")


def test_round_trip_of_awkward_names():
    cast = Cast("r<&>\u2028", "ev\t\"x\"", "S", "héllo".encode())
    raw = encode_cast(cast, "me")
    assert decode_message(raw, roomcast=True).cast == cast


# ---- decoding like Go's json.Unmarshal, then validating ----------------------------------


def _msg(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_any_key_order_case_insensitive_keys_unknown_keys_and_null():
    raw = b'{"S":"x","p":"aGk=","E":"ev","extra":[1],"D":1,"r":null}'
    t = decode_message(raw, roomcast=False)
    assert t == (Cast(None, "ev", "S", b"hi"), "x")


def test_last_duplicate_key_wins():
    raw = b'{"d":9,"e":"ev","p":"","s":"x","d":2}'
    assert decode_message(raw, roomcast=False).cast.type == "B"


def test_missing_payload_is_empty():
    assert decode_message(b'{"d":1,"e":"ev","s":"x"}', roomcast=False).cast.payload == b""


def test_broadcast_ignores_room_and_roomcast_needs_one():
    raw = _msg(d=1, e="ev", r="lobby", p="", s="x")
    assert decode_message(raw, roomcast=False).cast.room is None
    assert decode_message(raw, roomcast=True).cast.room == "lobby"
    with pytest.raises(InvalidMessage) as err:
        decode_message(_msg(d=1, e="ev", p="", s="x"), roomcast=True)
    assert err.value.reason == "no_room"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1,2]", "bad_json"),
        (b'"str"', "bad_json"),
        (b'{"d":1,"e":"x"', "bad_json"),
        (b'{"d":1,"e":"x","p":"","s":"z"} trailing', "bad_json"),
        (b'{"d":"1","e":"x","p":"","s":"z"}', "bad_json"),
        (b'{"d":1.0,"e":"x","p":"","s":"z"}', "bad_json"),
        (b'{"d":true,"e":"x","p":"","s":"z"}', "bad_json"),
        (b'{"d":NaN,"e":"x","p":"","s":"z"}', "bad_json"),
        (b'{"d":1,"e":5,"p":"","s":"z"}', "bad_json"),
        (b'{"d":1,"e":"x","p":[],"s":"z"}', "bad_json"),
        (b'{"e":"x","p":"","s":"z"}', "bad_data_type"),
        (b'{"d":-1,"e":"x","p":"","s":"z"}', "bad_data_type"),
        (b'{"d":4,"e":"x","p":"","s":"z"}', "bad_data_type"),
        (b'{"d":1,"p":"","s":"z"}', "no_event"),
        (b'{"d":1,"e":null,"p":"","s":"z"}', "no_event"),
        (b'{"d":1,"e":"a\\u0001b","p":"","s":"z"}', "bad_event"),
        (b'{"d":1,"e":"a\\u0002b","p":"","s":"z"}', "bad_event"),
        (b'{"d":1,"e":"x","p":"aGk","s":"z"}', "bad_base64"),
        (b'{"d":1,"e":"x","p":"aGk===","s":"z"}', "bad_base64"),
        (b'{"d":2,"e":"x","p":"-_8=","s":"z"}', "bad_base64"),
        (b'{"d":1,"e":"x","p":"aG k=","s":"z"}', "bad_base64"),
        (b'{"d":3,"e":"x","p":"TmFO","s":"z"}', "bad_json_payload"),  # NaN
        (b'{"d":3,"e":"x","p":"","s":"z"}', "bad_json_payload"),
        (b'{"d":3,"e":"x","p":"/w==","s":"z"}', "bad_json_payload"),
        (b'{"d":1,"e":"x","p":"/w==","s":"z"}', "bad_utf8"),
    ],
)
def test_rejections(raw, reason):
    with pytest.raises(InvalidMessage) as err:
        decode_message(raw, roomcast=False)
    assert err.value.reason == reason
    assert reason in REASONS


def test_base64_with_line_breaks_is_accepted_as_go_does():
    assert decode_message(_msg(d=2, e="x", p="AA\r\nEC/w==", s="z"), roomcast=False).cast.payload == (
        b"\x00\x01\x02\xff"
    )


def test_binary_and_json_payloads_are_kept_byte_for_byte():
    payload = b'{ "b" : 1, "a" : [true, null] }'
    raw = _msg(d=3, e="x", p=base64.b64encode(payload).decode(), s="z")
    assert decode_message(raw, roomcast=False).cast.payload == payload


def test_codec_needs_group_and_name():
    with pytest.raises(ValueError):
        RedisCodec("", "x")
    with pytest.raises(ValueError):
        RedisCodec("g", "")


# ---- URL masking and the lazy import ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:p%40ss@h/1", "rediss://user:***@h/1"),
        ("redis://user@h", "redis://user@h"),
        ("unix:///tmp/r.sock?db=0&password=s3cret", "unix:///tmp/r.sock?db=0&password=***"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_importing_bridges_or_the_codec_does_not_import_redis():
    code = (
        "import sys; import sacsock_actors.bridges, sacsock_actors.bridges.redis_codec; "
        "assert 'redis' not in sys.modules, 'redis imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- RedisBridge configuration (needs redis-py, not a server) -----------------------------


def test_redis_bridge_configuration():
    pytest.importorskip("redis")
    from sacsock_actors import ConfigError
    from sacsock_actors.bridges import RedisBridge

    b = RedisBridge()
    assert b.url == "redis://127.0.0.1:6379/0" and b.server_group == "ss-rmhb-group-default"
    assert len(b.server_name) == 32 and b.server_name == b.server_name.lower()
    int(b.server_name, 16)
    assert RedisBridge().server_name != b.server_name
    for bad in ("http://h", "127.0.0.1:6379", ""):
        with pytest.raises(ConfigError):
            RedisBridge(bad)
    with pytest.raises(ConfigError):
        RedisBridge(server_group="")
    with pytest.raises(ConfigError) as err:
        RedisBridge("redis://:topsecret@h:notaport/0")
    assert "topsecret" not in str(err.value)

    secret = RedisBridge("rediss://u:topsecret@h:6380/2", "g", "n1")
    assert "topsecret" not in repr(secret)
    copy = pickle.loads(pickle.dumps(secret))
    assert (copy.url, copy.server_group, copy.server_name) == (secret.url, "g", "n1")
    assert copy.stats()["published"] == 0 and copy.stats()["connected"] == 0


# regressions found by the properties in test_redis_codec_props.py


def test_lone_surrogate_escapes_read_as_replacement_characters_as_in_go():
    raw = '{"d":1,"e":"a\\ud800b\\ud83d\\ude00","r":"\\udfff","p":"","s":"x"}'
    t = decode_message(raw, roomcast=True)
    assert t.cast == Cast("\ufffd", "a\ufffdb\U0001f600", "S", b"")  # a pair stays one character
    assert t.cast.frame().data.startswith("a\ufffdb\U0001f600".encode())  # was a UnicodeEncodeError


@pytest.mark.parametrize("raw, reason", [
    ("[" * 100_000, "bad_json"),  # the envelope: RecursionError escaped
    ('{"d":3,"e":"e","p":"' + base64.b64encode(b"[" * 100_000).decode() + '"}', "bad_json_payload"),
])
def test_deep_nesting_is_refused_not_a_recursion_error(raw, reason):
    with pytest.raises(InvalidMessage) as err:
        decode_message(raw, roomcast=False)
    assert err.value.reason == reason
