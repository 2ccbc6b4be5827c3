"""Hypothesis properties of the Redis bridge codec."""

from cast_strategies import casts, names
from hypothesis import example, given
from hypothesis import strategies as st

from sacsock_actors.bridges.redis_codec import (
    REASONS,
    InvalidMessage,
    RedisCodec,
    decode_message,
    encode_cast,
    mask_url,
)


@given(casts(), names)
def test_round_trip(cast, server):
    raw = encode_cast(cast, server)
    t = decode_message(raw, roomcast=cast.room is not None)
    assert t.cast == cast and t.server == server


@given(casts(), names, names)
def test_codec_drops_its_own_echo_only(cast, me, other):
    mine, theirs = RedisCodec("g", me), RedisCodec("g", other)
    channel, raw = theirs.encode(cast)
    assert mine.decode(channel, raw) == (None if me == other else cast)
    assert theirs.decode(channel, raw) is None


@given(st.one_of(st.binary(), st.text()), st.booleans())
def test_arbitrary_input_raises_only_invalid_message(raw, roomcast):
    try:
        decode_message(raw, roomcast=roomcast)
    except InvalidMessage as exc:
        assert exc.reason in REASONS


@given(
    st.dictionaries(
        st.sampled_from(["d", "e", "r", "p", "s", "D", "E", "x"]),
        st.one_of(st.none(), st.integers(-2, 5), st.text(max_size=12), st.booleans(), st.floats()),
        max_size=6,
    ),
    st.booleans(),
)
def test_arbitrary_objects_raise_only_invalid_message(obj, roomcast):
    import json

    try:
        decode_message(json.dumps(obj), roomcast=roomcast)
    except InvalidMessage as exc:
        assert exc.reason in REASONS


hostile_text = st.text(st.characters() | st.sampled_from(["\x01", "\x02", "\ud800", "\udfff", "é"]))


@given(st.fixed_dictionaries({"d": st.integers(0, 4), "e": hostile_text, "p": st.binary()},
                             optional={"r": hostile_text, "s": hostile_text}), st.booleans())
@example({"d": 1, "e": "\ud800", "r": "\udfff", "p": b""}, True)  # a lone surrogate escape
@example({"d": 3, "e": "e", "p": b"[" * 100_000}, False)  # RecursionError
def test_decoded_casts_are_deliverable(obj, roomcast):
    import base64
    import json

    raw = json.dumps({**obj, "p": base64.b64encode(obj["p"]).decode()})
    try:
        cast = decode_message(raw, roomcast=roomcast).cast
    except InvalidMessage as exc:
        assert exc.reason in REASONS
        return
    assert cast.frame().binary == (cast.type == "B")  # event and room encode as UTF-8
    assert cast.room is None or cast.room.encode()
    if cast.type != "B":
        cast.payload.decode("utf-8")


@given(st.text())
def test_mask_url_never_raises(url):
    assert isinstance(mask_url(url), str)


@given(st.text(min_size=1, alphabet="abcdefgh123%!"))
def test_mask_url_hides_the_password(secret):
    masked = mask_url(f"redis://user:{secret}@localhost:6379/0")
    assert masked == "redis://user:***@localhost:6379/0"
    masked = mask_url(f"redis://localhost:6379/0?password={secret}&db=1")
    assert "password=***" in masked and secret not in masked.split("password=")[1].split("&")[0]
