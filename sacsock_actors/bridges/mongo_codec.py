"""The documents of the MongoDB bridge, exactly as Go ``ssmongo`` writes them (docs/protocol.md).

Pure: no ``pymongo``/``bson`` import. Documents are plain dicts; pymongo stores ``bytes`` as
BSON binary subtype 0 and ``str`` as a BSON string, and reads them back the same way, so
the dicts here are what goes over the wire.

Database ``SSMultihome``; collections ``ss.activeServers`` (presence), ``ss.roomcasts`` and
``ss.broadcasts`` (one document per cast per TARGET server)::

    {"ServerName": <target>, "ServerGroup": <group>, "Expire": <now + 5 min>,
     "RoomName": <room>,            # roomcasts (and socketcasts) only
     "EventName": <event>, "Data": <str | bytes>, "JSON": <bool>, "Read": False}

``Data`` is a BSON string for sac-sock ``S`` data, binary for ``B`` and binary holding the
JSON text with ``JSON: true`` for ``J`` (never a string when ``JSON`` is true: the Go reader
type-asserts bytes). A reader marks what it delivered ``Read: true`` with ``Expire`` set
five minutes in the past, so the TTL index (``expireAfterSeconds: 1``) removes it.

:func:`decode_document` validates what another instance wrote and raises
:class:`InvalidDocument` with a short ``reason`` (see :data:`REASONS`) the transport
counts. It is stricter than upstream where upstream would emit a broken frame or crash:
an empty or 0x01/0x02 event name, a roomcast without a room, ``JSON: true`` on a string
(upstream's reader panics), bad JSON flagged ``JSON: true`` (upstream sends ``""``), and
``Data`` of any other BSON type (JavaScript code too, though pymongo reads it as a ``str``
subclass).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import SacSockError
from . import jsoncheck
from .base import Cast
from .redis_codec import mask_url

__all__ = [
    "ACTIVE_SERVERS", "BROADCASTS", "DATABASE", "DEFAULT_SERVER_GROUP", "EXPIRE_AFTER", "INDEXES",
    "REASONS", "ROOMCASTS", "InvalidDocument", "MongoCodec", "decode_document", "encode_cast",
    "mask_url",
]

DEFAULT_SERVER_GROUP = "ss-rmhb-group-default"
DATABASE = "SSMultihome"
ACTIVE_SERVERS = "ss.activeServers"
ROOMCASTS = "ss.roomcasts"
BROADCASTS = "ss.broadcasts"
COLLECTIONS = (ACTIVE_SERVERS, BROADCASTS, ROOMCASTS)

#: documents live this long; presence is refreshed every PRESENCE_EVERY
EXPIRE_AFTER = timedelta(minutes=5)
PRESENCE_EVERY = 60.0

#: (keys, options) of the indexes upstream ensures on each of the three collections
INDEXES: tuple[tuple[list[tuple[str, int]], dict[str, Any]], ...] = (
    ([("Expire", 1)], {"expireAfterSeconds": 1}),
    ([("ServerGroup", 1)], {}),
    ([("ServerName", 1)], {}),
)

#: the order a reader delivers in: upstream sorts by Expire (millisecond dates, so casts of
#: one millisecond tie); _id breaks the tie in insertion order of one publisher
RECEIVE_SORT = [("Expire", 1), ("_id", 1)]

#: every reason :class:`InvalidDocument` can carry (stats count ``invalid_<reason>``)
REASONS = (
    "bad_field",  # a field of the wrong BSON type (EventName, RoomName, JSON, _id missing)
    "no_event",  # EventName missing or empty
    "bad_event",  # EventName holds 0x01 or 0x02
    "no_room",  # a roomcast without RoomName
    "bad_data",  # Data missing or neither a string nor binary (subtype 0)
    "json_not_binary",  # JSON true but Data is a string
    "bad_json_payload",  # JSON true and Data is not JSON text
    "bad_utf8",  # a string holding a lone surrogate (cannot come from BSON; a caller's dict can)
)


class InvalidDocument(SacSockError, ValueError):
    """A document that must be skipped; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def utcnow() -> datetime:
    """Timezone-aware now, at BSON's millisecond precision."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# ---- presence ------------------------------------------------------------------------------


def presence_key(server_group: str, server_name: str) -> dict[str, Any]:
    """The filter of our presence document (upsert key and removal at shutdown)."""
    return {"ServerName": server_name, "ServerGroup": server_group}


def presence_update(server_group: str, server_name: str, now: datetime) -> dict[str, Any]:
    """The ``$set`` upstream's heartbeat upserts."""
    return {"$set": {"ServerName": server_name, "ServerGroup": server_group, "Expire": now + EXPIRE_AFTER}}


def peers_filter(server_group: str, server_name: str) -> dict[str, Any]:
    """Active servers of our group other than us: each gets one document per cast."""
    return {"ServerGroup": server_group, "ServerName": {"$ne": server_name}}


def peer_names(docs: list[dict[str, Any]], server_name: str) -> list[str]:
    """Distinct target names from presence documents (bad ones skipped), in first-seen order."""
    seen: dict[str, None] = {}
    for doc in docs:
        name = doc.get("ServerName")
        if type(name) is str and name and name != server_name:  # bson.Code is an unhashable str
            seen.setdefault(name, None)
    return list(seen)


# ---- casts -----------------------------------------------------------------------------------


def collection_for(cast: Cast) -> str:
    """Broadcasts go to ``ss.broadcasts``; roomcasts and socketcasts to ``ss.roomcasts``."""
    return BROADCASTS if cast.room is None else ROOMCASTS


def cast_data(cast: Cast) -> tuple[str | bytes, bool]:
    """(Data, JSON) for a cast: str for ``S``, bytes for ``B``, JSON bytes + True for ``J``."""
    if cast.type == "S":
        try:
            return cast.payload.decode("utf-8"), False
        except UnicodeDecodeError:
            raise ValueError("a string cast whose payload is not UTF-8 cannot be a BSON string") from None
    if cast.type == "B":
        return bytes(cast.payload), False
    if cast.type == "J":
        return bytes(cast.payload), True
    raise ValueError(f"unknown sac-sock data type {cast.type!r}; use 'S', 'B' or 'J'")


def encode_cast(cast: Cast, target: str, server_group: str, now: datetime) -> dict[str, Any]:
    """The document addressed to server ``target`` for ``cast``, in upstream's field order."""
    data, is_json = cast_data(cast)
    doc: dict[str, Any] = {"ServerName": target, "ServerGroup": server_group, "Expire": now + EXPIRE_AFTER}
    if cast.room is not None:
        doc["RoomName"] = cast.room
    doc["EventName"] = cast.event
    doc["Data"] = data
    doc["JSON"] = is_json
    doc["Read"] = False
    return doc


def unread_filter(server_group: str, server_name: str) -> dict[str, Any]:
    """What a reader polls for: documents addressed to it and not read yet."""
    return {"ServerName": server_name, "ServerGroup": server_group, "Read": False}


def mark_read_update(now: datetime) -> dict[str, Any]:
    """The ``$set`` that marks documents read and lets the TTL index remove them."""
    return {"$set": {"Read": True, "Expire": now - EXPIRE_AFTER}}


def _validate_json(payload: bytes) -> None:
    try:
        jsoncheck.loads(payload)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidDocument("bad_json_payload", f"JSON is true but Data is not JSON ({exc})") from None


def _check_utf8(text: str, field: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (never from BSON, which is UTF-8) is refused."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidDocument("bad_utf8", f"{field} holds a lone surrogate, not UTF-8 text") from None


def decode_document(doc: dict[str, Any], *, roomcast: bool) -> Cast:
    """The cast a document from ``ss.roomcasts`` (``roomcast``) or ``ss.broadcasts`` carries.

    Raises :class:`InvalidDocument`. A broadcast ignores any ``RoomName``, as upstream.
    """
    event = doc.get("EventName")
    if event is None or event == "":
        raise InvalidDocument("no_event", "EventName is missing or empty")
    if type(event) is not str:  # exactly: bson.Code (JavaScript) is a str subclass
        raise InvalidDocument("bad_field", f"EventName must be a string, got {type(event).__name__}")
    if "\x01" in event or "\x02" in event:
        raise InvalidDocument("bad_event", f"event name {event!r} holds 0x01 or 0x02")
    _check_utf8(event, "EventName")
    room: str | None = None
    if roomcast:
        room = doc.get("RoomName")
        if room is None or room == "":
            raise InvalidDocument("no_room", "a roomcast without RoomName")
        if type(room) is not str:
            raise InvalidDocument("bad_field", f"RoomName must be a string, got {type(room).__name__}")
        _check_utf8(room, "RoomName")
    is_json = doc.get("JSON", False)
    if is_json is None:
        is_json = False
    if not isinstance(is_json, bool):
        raise InvalidDocument("bad_field", f"JSON must be a bool, got {type(is_json).__name__}")
    data = doc.get("Data")
    if type(data) is str:
        if is_json:
            raise InvalidDocument("json_not_binary", "JSON is true but Data is a string, not binary")
        return Cast(room, event, "S", _check_utf8(data, "Data"))
    if isinstance(data, (bytes, bytearray)) and getattr(data, "subtype", 0) in (0, 2):
        payload = bytes(data)
        if is_json:
            _validate_json(payload)
            return Cast(room, event, "J", payload)
        return Cast(room, event, "B", payload)
    kind = "missing" if data is None else type(data).__name__
    if isinstance(data, (bytes, bytearray)):
        kind = f"binary subtype {getattr(data, 'subtype', '?')}"
    raise InvalidDocument("bad_data", f"Data must be a string or binary (subtype 0), got {kind}")


class MongoCodec:
    """Encode and decode for one server (group + name): what a MongoDB transport needs."""

    def __init__(self, server_group: str, server_name: str) -> None:
        if not server_group:
            raise ValueError("server_group must not be empty")
        if not server_name:
            raise ValueError("server_name must not be empty")
        self.server_group = server_group
        self.server_name = server_name

    def presence_key(self) -> dict[str, Any]:
        return presence_key(self.server_group, self.server_name)

    def presence_update(self, now: datetime) -> dict[str, Any]:
        return presence_update(self.server_group, self.server_name, now)

    def peers_filter(self) -> dict[str, Any]:
        return peers_filter(self.server_group, self.server_name)

    def peer_names(self, docs: list[dict[str, Any]]) -> list[str]:
        return peer_names(docs, self.server_name)

    def unread_filter(self) -> dict[str, Any]:
        return unread_filter(self.server_group, self.server_name)

    def encode(self, cast: Cast, targets: list[str], now: datetime) -> tuple[str, list[dict[str, Any]]]:
        """(collection, documents) for a cast: one document per target; raises ValueError."""
        data, is_json = cast_data(cast)  # validate once, even with no targets
        del data, is_json
        return collection_for(cast), [encode_cast(cast, t, self.server_group, now) for t in targets]

    def decode(self, collection: str, doc: dict[str, Any]) -> Cast:
        """The cast a document read from ``collection`` carries; raises InvalidDocument."""
        return decode_document(doc, roomcast=collection == ROOMCASTS)
