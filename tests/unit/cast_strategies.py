"""Hypothesis strategies shared by the bridge codecs' property tests (Redis, MongoDB, gRPC):
casts of every kind (broadcast, roomcast, socketcast) and data type (S, B, J)."""

import json

from hypothesis import strategies as st

from sacsock_actors.bridges.base import Cast

#: event and room names: any text but the frame separators
names = st.text(min_size=1).filter(lambda e: "\x01" not in e and "\x02" not in e)
#: JSON documents (integers within int64: BSON has no larger ones)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
#: text that may hold what breaks frames: separators, lone surrogates, non-ASCII
hostile_text = st.text(st.characters() | st.sampled_from(["\x01", "\x02", "\ud800", "\udfff", "é", "\0"]))


@st.composite
def casts(draw):
    kind = draw(st.sampled_from("SBJ"))
    if kind == "S":
        payload = draw(st.text()).encode()
    elif kind == "B":
        payload = draw(st.binary())
    else:
        payload = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans())).encode()
    # broadcast, roomcast, socketcast (a socket's own room)
    room = draw(st.one_of(st.none(), names, names.map(lambda sid: f"__socket_id:{sid}")))
    return Cast(room, draw(names), kind, payload)
