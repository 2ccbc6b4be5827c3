"""Hypothesis properties of the MongoDB bridge codec (mongo_codec.py), through real BSON
(pymongo's ``bson``: what a document is after a trip through MongoDB). No MongoDB server."""

import json
from datetime import datetime, timezone

import bson
from cast_strategies import casts, hostile_text, names
from hypothesis import example, given
from hypothesis import strategies as st

from sacsock_actors.bridges.base import Cast
from sacsock_actors.bridges.mongo_codec import (
    BROADCASTS,
    EXPIRE_AFTER,
    REASONS,
    ROOMCASTS,
    InvalidDocument,
    MongoCodec,
    decode_document,
    peer_names,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
OPTS = bson.CodecOptions(tz_aware=True, tzinfo=timezone.utc)
FIELDS = ["ServerName", "ServerGroup", "Expire", "RoomName", "EventName", "Data", "JSON", "Read", "_id"]

int64s = st.integers(-2**63, 2**63 - 1)  # BSON has no larger integers
#: values of every BSON type a foreign writer could put in a field
bson_values = st.one_of(
    st.none(), st.booleans(), int64s, st.floats(), st.text(), st.binary(),
    st.builds(bson.Binary, st.binary(), st.sampled_from([0, 1, 2, 3, 4, 5, 6, 128])),
    st.builds(bson.Code, st.text()), st.builds(bson.ObjectId), st.builds(bson.Int64, int64s),
    st.just(NOW), st.lists(int64s, max_size=3), st.dictionaries(st.text(max_size=5), int64s, max_size=3),
)




def through_bson(doc: dict) -> dict:
    """The document as pymongo reads it back: encoded, an ``_id`` added, decoded."""
    return bson.decode(bson.encode({"_id": bson.ObjectId(), **doc}), codec_options=OPTS)


def _not_json(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON: a browser's JSON.parse refuses it")


def assert_deliverable(cast: Cast) -> None:
    """A decoded cast is a frame local sockets can receive: text UTF-8, JSON what JSON.parse takes."""
    assert cast.frame().binary == (cast.type == "B")
    if cast.type != "B":
        text = cast.payload.decode("utf-8")
        if cast.type == "J":
            json.loads(text, parse_constant=_not_json)
    assert cast.event and "\x01" not in cast.event and "\x02" not in cast.event
    assert cast.room is None or (cast.room and cast.room.encode("utf-8"))


@given(casts(), names, names)
def test_round_trip_through_bson(cast, group, target):
    sender, receiver = MongoCodec(group, "sender"), MongoCodec(group, target)
    collection, docs = sender.encode(cast, [target], NOW)
    assert collection == (BROADCASTS if cast.room is None else ROOMCASTS)
    (doc,) = docs
    assert doc["ServerName"] == target and doc["ServerGroup"] == group and not doc["Read"]
    assert doc["Expire"] == NOW + EXPIRE_AFTER
    read = through_bson(doc)
    assert type(read["Data"]) is (str if cast.type == "S" else bytes)  # a BSON string or binary 0
    assert receiver.decode(collection, read) == cast


@given(casts(), st.lists(names, max_size=4))
def test_one_document_per_target(cast, targets):
    collection, docs = MongoCodec("g", "me").encode(cast, targets, NOW)
    assert [d["ServerName"] for d in docs] == targets


@given(st.dictionaries(st.sampled_from(FIELDS), bson_values, max_size=8), st.booleans())
def test_arbitrary_bson_documents_raise_only_invalid_document(doc, roomcast):
    try:
        read = through_bson(doc)
    except bson.errors.InvalidDocument:
        return  # not storable (a str with a lone surrogate): never read back from MongoDB
    try:
        cast = decode_document(read, roomcast=roomcast)
    except InvalidDocument as exc:
        assert exc.reason in REASONS
        return
    assert_deliverable(cast)
    assert type(read["Data"]) in (str, bytes)  # not JavaScript code, not another subtype


@given(st.dictionaries(st.sampled_from(FIELDS), st.one_of(bson_values, hostile_text), max_size=8),
       st.booleans())
@example({"EventName": "e", "JSON": True, "Data": "[1]".encode("utf-16")}, False)
@example({"EventName": "e", "JSON": True, "Data": b"[" * 100_000}, False)  # RecursionError
@example({"EventName": "e", "JSON": True, "Data": b"Infinity"}, False)  # not JSON
@example({"EventName": "e", "Data": "\ud800"}, False)  # lone surrogate: no frame carries it
@example({"EventName": "\udfff", "Data": ""}, False)
@example({"EventName": "e", "RoomName": "\udfff", "Data": ""}, True)
@example({"EventName": "e", "Data": bson.Code("x")}, False)  # JavaScript is not a string
def test_arbitrary_dicts_raise_only_invalid_document(doc, roomcast):
    try:
        cast = decode_document(doc, roomcast=roomcast)
    except InvalidDocument as exc:
        assert exc.reason in REASONS
        return
    assert_deliverable(cast)


@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), st.one_of(bson_values, hostile_text), max_size=4),
                max_size=6), names)
@example([{"ServerName": bson.Code("x")}], "me")  # a str subclass that is not hashable
def test_peer_names_never_raise(docs, me):
    got = peer_names(docs, me)
    assert me not in got and len(set(got)) == len(got) and all(isinstance(n, str) and n for n in got)
