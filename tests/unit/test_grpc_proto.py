"""The committed protobuf/gRPC stubs: regenerated from the .proto they must match, and their
bytes match the shared vectors (PROTOCOL.md section 7)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sacsock_actors.bridges.proto import transport_pb2 as pb
from sacsock_actors.bridges.proto import transport_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "sacsock_actors" / "bridges" / "proto"
GENERATED = ("transport_pb2.py", "transport_pb2.pyi", "transport_pb2_grpc.py")
VECTORS = json.loads((ROOT / "tests" / "vectors" / "sacsock-vectors.json").read_text())["grpc"]


def test_regenerated_stubs_equal_the_committed_ones(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools is in the test extra")
    subprocess.run(["bash", str(ROOT / "scripts" / "gen_grpc.sh"), str(tmp_path)], check=True,
                   env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, timeout=120)
    for name in GENERATED:
        fresh = (tmp_path / "sacsock_actors" / "bridges" / "proto" / name).read_text()
        assert fresh == (PROTO_DIR / name).read_text(), (
            f"{name} differs from a fresh run of scripts/gen_grpc.sh: regenerate and commit it")


def test_service_and_method_names_are_upstreams():
    service = pb.DESCRIPTOR.services_by_name["Propagate"]
    assert service.full_name == "transport.Propagate"
    assert {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods} == {
        "DoBroadcast": ("transport.Broadcast", "transport.Result"),
        "DoRoomcast": ("transport.Roomcast", "transport.Result"),
    }
    assert hasattr(pb_grpc, "PropagateStub") and hasattr(pb_grpc, "add_PropagateServicer_to_server")


def test_field_numbers_and_types_are_upstreams():
    from google.protobuf.descriptor import FieldDescriptor as F

    want = {
        "Broadcast": [(1, "timestamp", F.TYPE_FIXED64), (2, "event", F.TYPE_STRING),
                      (3, "data", F.TYPE_BYTES), (4, "dataType", F.TYPE_ENUM)],
        "Roomcast": [(1, "timestamp", F.TYPE_FIXED64), (2, "room", F.TYPE_STRING),
                     (3, "event", F.TYPE_STRING), (4, "data", F.TYPE_BYTES), (5, "dataType", F.TYPE_ENUM)],
        "Result": [(1, "success", F.TYPE_BOOL), (2, "timestamp", F.TYPE_FIXED64)],
    }
    for name, fields in want.items():
        desc = pb.DESCRIPTOR.message_types_by_name[name]
        assert [(f.number, f.name, f.type) for f in desc.fields] == fields
    assert dict(pb.DataType.items()) == {"STR": 0, "BIN": 1, "JSON": 2}


def _message(vec):
    d = vec["decoded"]
    cls = getattr(pb, vec["message_type"])
    if vec["message_type"] == "Result":
        return cls(success=d["success"], timestamp=d["timestamp"])
    data = d["data"]
    if "str" in data:
        payload, code = data["str"].encode(), pb.STR
    elif "bytes_hex" in data:
        payload, code = bytes.fromhex(data["bytes_hex"]), pb.BIN
    else:
        payload, code = json.dumps(data["json"], separators=(",", ":")).encode(), pb.JSON
    fields = {"timestamp": d["timestamp"], "event": d["event"], "data": payload, "dataType": code}
    if "room" in d:
        fields["room"] = d["room"]
    return cls(**fields)


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors_encode_and_decode(vec):
    msg = _message(vec)
    assert msg.SerializeToString().hex() == vec["hex"]
    assert getattr(pb, vec["message_type"]).FromString(bytes.fromhex(vec["hex"])) == msg
    if vec["method"]:
        assert vec["method"] == f"/transport.Propagate/Do{vec['message_type']}"


def test_proto_file_ships_with_the_package():
    assert (PROTO_DIR / "transport.proto").is_file()
    assert shutil.which("bash")
