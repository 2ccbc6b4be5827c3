"""The MongoDB bridge documents (PROTOCOL.md section 6) against fixtures. No MongoDB server.

Fixtures are canonical Extended JSON (tests/vectors/mongo-documents.json, derived from
PROTOCOL.md, plus the shared vectors' "mongo" entries); ``bson`` (pymongo's) turns them into
BSON so every field's BSON type and the field order are compared byte for byte.
"""

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import bson
import pytest
from bson import json_util

from sacsock_actors.bridges import Cast
from sacsock_actors.bridges.mongo_codec import (
    ACTIVE_SERVERS,
    BROADCASTS,
    DATABASE,
    INDEXES,
    REASONS,
    ROOMCASTS,
    InvalidDocument,
    MongoCodec,
    decode_document,
    encode_cast,
    mark_read_update,
    peer_names,
    utcnow,
)

HERE = Path(__file__).resolve().parent.parent
OPTS = json_util.JSONOptions(tz_aware=True, tzinfo=timezone.utc)
FIXTURES = json_util.loads((HERE / "vectors" / "mongo-documents.json").read_text(), json_options=OPTS)
SHARED = json.loads((HERE / "vectors" / "sacsock-vectors.json").read_text())["mongo"]
NOW: datetime = FIXTURES["now"]


def _cast(spec: dict) -> Cast:
    payload = bytes.fromhex(spec["hex"]) if "hex" in spec else spec["text"].encode()
    return Cast(spec["room"], spec["event"], spec["type"], payload)


def _bson(doc: dict) -> bytes:
    return bson.encode(doc)


@pytest.mark.parametrize("fx", FIXTURES["valid"], ids=lambda f: f["name"])
def test_encode_matches_fixture_byte_for_byte(fx):
    cast = _cast(fx["cast"])
    doc = encode_cast(cast, fx["target"], fx["group"], NOW)
    assert list(doc) == list(fx["document"])  # upstream's field order
    assert _bson(doc) == _bson(fx["document"])  # every BSON type and value


@pytest.mark.parametrize("fx", FIXTURES["valid"], ids=lambda f: f["name"])
def test_decode_fixture_after_a_bson_round_trip(fx):
    raw = bson.decode(_bson({"_id": bson.ObjectId(), **fx["document"]}))  # as pymongo reads it
    codec = MongoCodec(fx["group"], fx["target"])
    assert codec.decode(fx["collection"], raw) == _cast(fx["cast"])


@pytest.mark.parametrize("fx", FIXTURES["valid"], ids=lambda f: f["name"])
def test_codec_encode_one_document_per_target(fx):
    cast = _cast(fx["cast"])
    codec = MongoCodec(fx["group"], "me")
    collection, docs = codec.encode(cast, ["t1", fx["target"]], NOW)
    assert collection == fx["collection"]
    assert [d["ServerName"] for d in docs] == ["t1", fx["target"]]
    assert _bson(docs[1]) == _bson(fx["document"])
    assert codec.encode(cast, [], NOW) == (fx["collection"], [])


@pytest.mark.parametrize("vec", SHARED, ids=lambda v: v["name"])
def test_shared_vectors(vec):
    doc = json_util.loads(json.dumps(vec["document_canonical_extjson"]), json_options=OPTS)
    assert vec["database"] == DATABASE
    if vec["decoded"] is None:  # presence
        assert vec["collection"] == ACTIVE_SERVERS
        update = MongoCodec(doc["ServerGroup"], doc["ServerName"]).presence_update(NOW)
        assert _bson(update["$set"]) == _bson(doc)
        return
    d = vec["decoded"]
    cast = decode_document(doc, roomcast=vec["collection"] == ROOMCASTS)
    assert cast.event == d["event"]
    assert cast.room == (d["room"] if d["kind"] == "roomcast" else None)
    data = d["data"]
    if "str" in data:
        assert (cast.type, cast.payload) == ("S", data["str"].encode())
    elif "bytes_hex" in data:
        assert (cast.type, cast.payload) == ("B", bytes.fromhex(data["bytes_hex"]))
    else:
        assert cast.type == "J" and json.loads(cast.payload) == data["json"]
    assert _bson(encode_cast(cast, doc["ServerName"], doc["ServerGroup"], NOW)) == _bson(doc)


def test_presence_and_queries_match_fixture():
    p = FIXTURES["presence"]
    codec = MongoCodec(p["group"], p["name"])
    assert codec.presence_key() == p["key"]
    assert _bson(codec.presence_update(NOW)) == _bson(p["update"])
    assert codec.peers_filter() == p["peers_filter"]
    assert _bson(codec.unread_filter()) == _bson(p["unread_filter"])
    assert _bson(mark_read_update(NOW)) == _bson(p["mark_read"])


def test_names_and_indexes_are_upstreams():
    assert (DATABASE, ACTIVE_SERVERS, ROOMCASTS, BROADCASTS) == (
        "SSMultihome", "ss.activeServers", "ss.roomcasts", "ss.broadcasts")
    assert [(keys, opts) for keys, opts in INDEXES] == [
        ([("Expire", 1)], {"expireAfterSeconds": 1}), ([("ServerGroup", 1)], {}), ([("ServerName", 1)], {})]


@pytest.mark.parametrize("fx", FIXTURES["invalid"], ids=lambda f: f["name"])
def test_invalid_documents_raise_with_reason(fx):
    raw = bson.decode(_bson({"_id": bson.ObjectId(), **fx["document"]}))
    with pytest.raises(InvalidDocument) as info:
        MongoCodec("g", "b").decode(fx["collection"], raw)
    assert info.value.reason == fx["reason"]
    assert info.value.reason in REASONS


def test_every_reason_has_a_fixture_but_bad_utf8():
    covered = {fx["reason"] for fx in FIXTURES["invalid"]}
    assert set(REASONS) - covered == {"bad_utf8"}  # a BSON string is always UTF-8


def test_broadcast_ignores_a_room_name():
    doc = {"EventName": "e", "RoomName": "r", "Data": "x", "JSON": False}
    assert decode_document(doc, roomcast=False) == Cast(None, "e", "S", b"x")


def test_missing_json_flag_reads_as_false():
    cast = decode_document({"EventName": "e", "Data": b"\x00"}, roomcast=False)
    assert cast == Cast(None, "e", "B", b"\x00")


def test_unencodable_casts_raise():
    with pytest.raises(ValueError, match="UTF-8"):
        encode_cast(Cast(None, "e", "S", b"\xff"), "t", "g", NOW)
    with pytest.raises(ValueError, match="'S', 'B' or 'J'"):
        MongoCodec("g", "me").encode(Cast(None, "e", "X", b""), [], NOW)


def test_codec_refuses_empty_names():
    with pytest.raises(ValueError):
        MongoCodec("", "n")
    with pytest.raises(ValueError):
        MongoCodec("g", "")


def test_peer_names_skip_self_duplicates_and_junk():
    docs = [{"ServerName": "a"}, {"ServerName": "me"}, {"ServerName": 3}, {}, {"ServerName": "a"},
            {"ServerName": "b"}, {"ServerName": ""}]
    assert peer_names(docs, "me") == ["a", "b"]


def test_utcnow_is_aware_and_millisecond():
    now = utcnow()
    assert now.tzinfo is not None and now.microsecond % 1000 == 0


def test_codec_is_pure():
    code = ("import sys, sacsock_actors.bridges.mongo_codec; "
            "bad = [m for m in ('pymongo', 'bson', 'ray', 'aiohttp', 'redis') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# regressions found by the properties in test_mongo_codec_props.py


@pytest.mark.parametrize("doc, roomcast, reason", [
    ({"EventName": "e", "JSON": True, "Data": "[1]".encode("utf-16")}, False, "bad_json_payload"),
    ({"EventName": "e", "JSON": True, "Data": b"[" * 100_000}, False, "bad_json_payload"),  # RecursionError
    ({"EventName": "e", "JSON": True, "Data": b"NaN"}, False, "bad_json_payload"),
    ({"EventName": "e", "Data": "a\ud800"}, False, "bad_utf8"),  # was an S cast no frame can carry
    ({"EventName": "\udfff", "Data": ""}, False, "bad_utf8"),
    ({"EventName": "e", "RoomName": "r\udfff", "Data": ""}, True, "bad_utf8"),
    ({"EventName": "e", "Data": bson.Code("1")}, False, "bad_data"),  # JavaScript, a str subclass
    ({"EventName": bson.Code("e"), "Data": ""}, False, "bad_field"),
])
def test_property_regressions_raise_with_reason(doc, roomcast, reason):
    with pytest.raises(InvalidDocument) as err:
        decode_document(doc, roomcast=roomcast)
    assert err.value.reason == reason


def test_peer_names_skip_javascript_names():
    assert peer_names([{"ServerName": bson.Code("x")}, {"ServerName": "b"}], "me") == ["b"]
