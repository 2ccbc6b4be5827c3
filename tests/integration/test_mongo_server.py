"""The MongoDB-wire test server itself (tests/mongo_server): what pymongo and the Go peer's
legacy mgo driver need from it, spoken over raw sockets (legacy OP_QUERY / OP_KILL_CURSORS)
and through pymongo. No Ray."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from datetime import datetime, timedelta, timezone

import pytest

bson = pytest.importorskip("bson")
pymongo = pytest.importorskip("pymongo")

OP_REPLY, OP_QUERY, OP_KILL_CURSORS = 1, 2004, 2007


class Legacy:
    """A raw connection speaking the legacy opcodes, as mgo does."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.request_id = 0

    def _send(self, opcode: int, body: bytes) -> int:
        self.request_id += 1
        self.sock.sendall(struct.pack("<iiii", 16 + len(body), self.request_id, 0, opcode) + body)
        return self.request_id

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return data

    def command(self, db: str, cmd: dict) -> dict:
        """OP_QUERY on ``db.$cmd``; the single document of the OP_REPLY."""
        namespace = f"{db}.$cmd".encode() + b"\x00"
        body = struct.pack("<i", 0) + namespace + struct.pack("<ii", 0, -1) + bson.encode(cmd)
        rid = self._send(OP_QUERY, body)
        length, _, response_to, opcode = struct.unpack("<iiii", self._recv_exact(16))
        rest = self._recv_exact(length - 16)
        assert (opcode, response_to) == (OP_REPLY, rid)
        _flags, _cursor, _start, n = struct.unpack("<iqii", rest[:20])
        assert n == 1
        return bson.decode(rest[20:])

    def kill_cursors(self, ids: list[int]) -> None:
        ids_bytes = b"".join(struct.pack("<q", i) for i in ids)
        self._send(OP_KILL_CURSORS, struct.pack("<ii", 0, len(ids)) + ids_bytes)

    def close(self) -> None:
        self.sock.close()


def test_legacy_handshake_getnonce_errors_and_kill_cursors(mongo_server):
    c = Legacy(mongo_server.port)
    hello = c.command("admin", {"ismaster": 1})
    assert hello["ok"] == 1 and hello["maxWireVersion"] == 9  # MongoDB 4.4: what pymongo needs
    assert c.command("admin", {"buildinfo": 1})["versionArray"][:2] == [4, 4]
    nonce = c.command("admin", {"getnonce": 1})
    assert nonce["ok"] == 1 and isinstance(nonce["nonce"], str) and nonce["nonce"]
    err = c.command("test", {"noSuchCommand": 1})  # an error reply, the connection stays
    assert err["ok"] == 0 and err["errmsg"] and isinstance(err["code"], int)
    # a cursor left open, then killed with the legacy message (no reply; the connection stays)
    assert c.command("test", {"insert": "c", "documents": [{"i": i} for i in range(5)]})["n"] == 5
    cursor = c.command("test", {"find": "c", "batchSize": 2})["cursor"]
    assert cursor["id"] != 0 and len(cursor["firstBatch"]) == 2
    c.kill_cursors([cursor["id"]])
    more = c.command("test", {"getMore": cursor["id"], "collection": "c"})
    assert more["ok"] == 0  # the cursor is gone
    assert c.command("admin", {"ping": 1})["ok"] == 1
    c.close()


async def test_pymongo_connects_and_ttl_indexes_expire_documents(mongo_server):
    client = pymongo.AsyncMongoClient(mongo_server.url, tz_aware=True, serverSelectionTimeoutMS=20000)
    coll = client["SSMultihome"]["ttl"]
    await coll.create_index([("Expire", 1)], expireAfterSeconds=1)
    now = datetime.now(timezone.utc)
    await coll.insert_many([{"k": "past", "Expire": now - timedelta(minutes=5)},
                            {"k": "future", "Expire": now + timedelta(minutes=5)}])
    deadline = time.monotonic() + 30
    while await coll.count_documents({"k": "past"}):
        assert time.monotonic() < deadline, "the TTL sweep did not remove an expired document"
        await asyncio.sleep(0.1)
    assert [d["k"] async for d in coll.find()] == ["future"]
    await client.close()
