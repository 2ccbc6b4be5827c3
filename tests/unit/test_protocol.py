import base64
import json
from pathlib import Path

import pytest

from sacsock_actors import protocol
from sacsock_actors.errors import EncodeError, InvalidEventName

HERE = Path(__file__).resolve().parent.parent
VECTORS = json.loads((HERE / "vectors" / "sacsock-vectors.json").read_text())


def test_vectors_copy_is_identical_to_shared():
    shared = HERE.parent.parent / "shared" / "vectors" / "sacsock-vectors.json"
    if not shared.exists():
        pytest.skip("../shared is not beside the checkout")
    assert shared.read_bytes() == (HERE / "vectors" / "sacsock-vectors.json").read_bytes()


@pytest.mark.parametrize("vec", VECTORS["client_to_server"], ids=lambda v: v["name"])
def test_client_to_server_vectors(vec):
    raw = bytes.fromhex(vec["hex"])
    message = raw.decode("utf-8") if vec["opcode"] == "text" else raw
    parsed = protocol.parse_inbound(message)
    if vec["expect_event"] is None:
        assert parsed is None
        return
    assert parsed is not None
    assert parsed.event == vec["expect_event"]
    if "expect_event_hex" in vec:
        assert parsed.event.encode() == bytes.fromhex(vec["expect_event_hex"])
    assert parsed.payload == bytes.fromhex(vec["expect_payload_hex"])
    assert isinstance(parsed.payload, bytes)


def _data(spec):
    if "str" in spec:
        return spec["str"]
    if "bytes_hex" in spec:
        return bytes.fromhex(spec["bytes_hex"])
    return spec["json"]


@pytest.mark.parametrize("vec", VECTORS["server_to_client"], ids=lambda v: v["name"])
def test_server_to_client_vectors(vec):
    frame = protocol.encode(vec["emit_event"], _data(vec["emit_data"]))
    assert frame.data == bytes.fromhex(vec["hex"])
    assert frame.binary == (vec["opcode"] == "binary")
    if vec["text"] is not None:
        assert frame.data.decode() == vec["text"]


def test_bytes_like_types_are_binary():
    for data in (b"\x00\x01", bytearray(b"\x00\x01"), memoryview(b"\x00\x01")):
        assert protocol.encode("b", data) == protocol.Frame(b"b\x01B\x02\x00\x01", True)


def test_dataclass_is_json():
    import dataclasses

    @dataclasses.dataclass
    class P:
        x: int

    assert protocol.encode("p", P(3)).data == b'p\x01J\x02{"x":3}'


def test_non_ascii_json_is_utf8():
    assert protocol.encode("j", {"k": "é"}).data == 'j\x01J\x02{"k":"é"}'.encode()


@pytest.mark.parametrize("bad", ["", "a\x01b", "a\x02", 5])
def test_bad_event_names_raise(bad):
    with pytest.raises(InvalidEventName):
        protocol.encode(bad, "x")


@pytest.mark.parametrize("bad", [object(), {1, 2}, float("nan"), {"k": object()}])
def test_unencodable_data_raises_with_advice(bad):
    with pytest.raises(EncodeError, match="JSON"):
        protocol.encode("e", bad)


def test_parse_ignores_invalid_utf8_event():
    assert protocol.parse_inbound(b"\xff\xfe\x02x") is None


def test_decode_outbound_round_trip():
    frame = protocol.encode("ev", {"a": [1, 2]})
    assert protocol.decode_outbound(frame.data) == ("ev", "J", b'{"a":[1,2]}')


def test_encode_typed_rejects_unknown_type():
    with pytest.raises(EncodeError):
        protocol.encode_typed("e", "X", b"")


def test_socket_ids_are_upstream_shaped_and_unique():
    ids = {protocol.new_socket_id() for _ in range(2000)}
    assert len(ids) == 2000
    for sid in list(ids)[:50]:
        assert len(sid) == 32
        assert len(base64.b64decode(sid)) == 24
    assert protocol.socket_room("abc") == "__socket_id:abc"


def test_a_socket_id_carries_its_gateway_tag_and_keeps_22_random_bytes():
    ids = [protocol.new_socket_id(513) for _ in range(1000)]
    assert len(set(ids)) == 1000
    raws = [base64.b64decode(i) for i in ids]
    assert all(len(r) == 24 and r[:2] == (513).to_bytes(2, "big") for r in raws)
    assert len({r[2:] for r in raws}) == 1000
    assert len({r[2] for r in raws}) > 200, "the rest is random"
    assert {protocol.socket_id_tag(i) for i in ids} == {513}
    assert protocol.socket_id_tag("short") is None
    assert protocol.socket_id_tag("!" * 32) is None
    with pytest.raises(ValueError, match="tag"):
        protocol.new_socket_id(1 << 16)


def test_exact_str_and_bytes_take_the_fast_path_to_the_same_frames():
    assert protocol.encode("e", b"\x00") == protocol.encode("e", bytearray(b"\x00"))
    assert type(protocol.encode("e", b"\x00")) is protocol.Frame
    frame = protocol.encode("e", "h\u00e9")
    assert type(frame) is protocol.Frame and frame == protocol.Frame("e\x01S\x02h\u00e9".encode(), False)
    for bad in ("", "a\x02b"):
        with pytest.raises(InvalidEventName):
            protocol.encode(bad, b"x")
