"""The sac-sock wire codec (docs/protocol.md). Pure: no I/O, no imports of ray/aiohttp.

Client -> server:  ``<event> 0x02 <payload>`` (text or binary frame, treated alike).
Server -> client:  ``<event> 0x01 <type> 0x02 <payload>`` where type is S (text frame),
B (binary frame) or J (text frame, JSON payload).

A server-to-client message is encoded once into a :class:`Frame` (the exact bytes plus
whether it goes out as a binary websocket frame) and that frame is what travels to every
recipient.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import secrets
from typing import Any, NamedTuple

from .errors import EncodeError, InvalidEventName, InvalidRoomName

EVENT_SEP = 0x02
TYPE_SEP = 0x01
SOCKET_ID_ROOM_PREFIX = "__socket_id:"

TYPE_STR = "S"
TYPE_BIN = "B"
TYPE_JSON = "J"


class Frame(NamedTuple):
    """One encoded server-to-client message: ``data`` is sent as-is, binary or text."""

    data: bytes
    binary: bool


class Inbound(NamedTuple):
    """A parsed client-to-server message: event name and raw payload bytes."""

    event: str
    payload: bytes


_new_inbound = tuple.__new__  # Inbound(...) without the NamedTuple constructor's overhead


def parse_inbound(message: bytes | str) -> Inbound | None:
    """Split a client message at its first 0x02.

    Returns ``None`` for a message the server must ignore: no 0x02, an empty event name,
    or an event name that is not valid UTF-8.
    """
    if type(message) is bytes:
        raw = message
    else:
        raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    cut = raw.find(EVENT_SEP)
    if cut <= 0:
        return None
    try:
        event = raw[:cut].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _new_inbound(Inbound, (event, raw[cut + 1 :]))


def check_event_name(event: str) -> bytes:
    """Return the UTF-8 bytes of an outgoing event name, or raise InvalidEventName."""
    if not isinstance(event, str):
        raise InvalidEventName(f"event name must be a str, got {type(event).__name__}")
    if not event:
        raise InvalidEventName("event name must not be empty")
    if "\x01" in event or "\x02" in event:
        raise InvalidEventName(
            f"event name {event!r} holds 0x01 or 0x02, which separate the sac-sock frame; "
            "remove those characters"
        )
    return event.encode("utf-8")


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(value: Any) -> bytes:
    """Compact JSON bytes for ``value`` (dataclasses become objects); EncodeError if impossible."""
    try:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
        )
    except (TypeError, ValueError) as exc:
        raise EncodeError(
            f"cannot send {type(value).__name__} as JSON ({exc}); pass str, bytes, "
            "or a JSON-serialisable value (dict, list, number, bool, None, dataclass)"
        ) from None
    return text.encode("utf-8")


@functools.lru_cache(maxsize=4096)
def _head(event: str, type_char: str) -> bytes:
    """``<event> 0x01 <type> 0x02``, cached: apps use a handful of event names."""
    return check_event_name(event) + bytes((TYPE_SEP, ord(type_char), EVENT_SEP))


def encode_typed(event: str, type_char: str, payload: bytes) -> Frame:
    """Frame for an already-classified payload (used by bridges that carry the type)."""
    if type_char not in (TYPE_STR, TYPE_BIN, TYPE_JSON):
        raise EncodeError(f"unknown sac-sock data type {type_char!r}; use 'S', 'B' or 'J'")
    if type(event) is not str:
        check_event_name(event)  # raises the clear error (and keeps unhashables out of the cache)
    return Frame(_head(event, type_char) + payload, type_char == TYPE_BIN)


_new_frame = tuple.__new__  # Frame(...) without the NamedTuple constructor's overhead


def encode(event: str, data: Any) -> Frame:
    """Encode one server-to-client message; raises InvalidEventName or EncodeError."""
    if type(event) is not str:
        check_event_name(event)
    elif type(data) is bytes:  # the hot cases first: exact types, one cached header
        return _new_frame(Frame, (_head(event, TYPE_BIN) + data, True))
    elif type(data) is str:
        return _new_frame(Frame, (_head(event, TYPE_STR) + data.encode("utf-8"), False))
    if isinstance(data, str):
        return Frame(_head(event, TYPE_STR) + data.encode("utf-8"), False)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Frame(_head(event, TYPE_BIN) + bytes(data), True)
    return Frame(_head(event, TYPE_JSON) + encode_json(data), False)


def decode_outbound(frame: bytes) -> tuple[str, str, bytes]:
    """Inverse of :func:`encode` (for tests, bridges and clients): (event, type char, payload)."""
    cut = frame.index(TYPE_SEP)
    end = frame.index(EVENT_SEP, cut)
    return frame[:cut].decode("utf-8"), frame[cut + 1 : end].decode("ascii"), frame[end + 1 :]


SOCKET_TAG_LIMIT = 1 << 16


def new_socket_id(tag: int | None = None) -> str:
    """A fresh, unguessable socket id: std base64 of 24 CSPRNG bytes (32 chars), as upstream.

    With ``tag`` (0 to 65535: the index of the gateway that owns the socket), the first two
    bytes carry it, big-endian, and the other 22 stay random (176 bits), so a socketcast
    goes straight to the owner (:func:`socket_id_tag`) and the id stays unguessable.
    """
    raw = secrets.token_bytes(24)
    if tag is not None:
        if not 0 <= tag < SOCKET_TAG_LIMIT:
            raise ValueError(f"socket id tag must be in 0..{SOCKET_TAG_LIMIT - 1}, got {tag!r}")
        raw = tag.to_bytes(2, "big") + raw[2:]
    return base64.b64encode(raw).decode("ascii")


def socket_id_tag(socket_id: str) -> int | None:
    """The tag :func:`new_socket_id` put in ``socket_id``; None when it is no id of that
    format (not 32 chars of std base64 of 24 bytes, e.g. from a foreign server). An id
    minted elsewhere in that format gives a meaningless tag: only a hint for routing."""
    if len(socket_id) != 32:
        return None
    try:
        raw = base64.b64decode(socket_id, validate=True)
    except ValueError:
        return None
    return int.from_bytes(raw[:2], "big")


def socket_room(socket_id: str) -> str:
    """The room every socket is a member of from connect to close."""
    return SOCKET_ID_ROOM_PREFIX + socket_id


def check_room(room: Any) -> str:
    """``room`` if it is a non-empty str, else InvalidRoomName (the caller's misuse)."""
    if not isinstance(room, str) or not room:
        raise InvalidRoomName(f"room name must be a non-empty str, got {room!r}")
    return room
