"""Hypothesis properties of the sac-sock codec (protocol.py)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sacsock_actors.errors import SacSockError
from sacsock_actors.protocol import Inbound, decode_outbound, encode, encode_typed, parse_inbound

event_names = st.text(min_size=1).filter(lambda e: "\x01" not in e and "\x02" not in e)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.binary())
def test_parse_inbound_never_raises_on_arbitrary_bytes(raw):
    got = parse_inbound(raw)
    assert got is None or isinstance(got, Inbound)


@given(event_names, st.binary())
def test_inbound_round_trip(event, payload):
    got = parse_inbound(event.encode() + b"\x02" + payload)
    assert got == (event, payload)


@given(st.binary())
def test_inbound_splits_at_the_first_separator(raw):
    got = parse_inbound(raw)
    cut = raw.find(b"\x02")
    if got is not None:
        assert got.event.encode() == raw[:cut] and got.payload == raw[cut + 1 :]
    else:
        assert cut <= 0 or not _utf8(raw[:cut])


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@given(event_names, st.text())
def test_str_round_trip(event, data):
    frame = encode(event, data)
    assert not frame.binary
    assert decode_outbound(frame.data) == (event, "S", data.encode())


@given(event_names, st.binary())
def test_bytes_round_trip(event, data):
    frame = encode(event, data)
    assert frame.binary
    assert decode_outbound(frame.data) == (event, "B", data)


@given(event_names, json_values)
def test_json_round_trip(event, value):
    frame = encode(event, value)
    name, kind, payload = decode_outbound(frame.data)
    if isinstance(value, str):
        assert (kind, payload) == ("S", value.encode())
    else:
        assert kind == "J" and json.loads(payload) == value
    assert name == event


@given(st.text(), st.one_of(st.text(), st.binary(), json_values, st.builds(object)))
def test_encode_raises_only_its_own_errors(event, data):
    try:
        encode(event, data)
    except SacSockError:
        pass


@given(st.text(), st.text(max_size=2), st.binary())
def test_encode_typed_raises_only_its_own_errors(event, type_char, payload):
    try:
        frame = encode_typed(event, type_char, payload)
    except SacSockError:
        return
    assert decode_outbound(frame.data) == (event, type_char, payload)


@pytest.mark.parametrize("bad", ["", "a\x01b", "a\x02b"])
def test_bad_event_names_raise_invalid_event_name(bad):
    from sacsock_actors.errors import InvalidEventName

    with pytest.raises(InvalidEventName):
        encode(bad, "x")
