"""The wire format of the Redis bridge, byte-compatible with Go ``ssredis`` (docs/protocol.md).

Pure: no ``redis`` import; unit-tested against ``sacsock-vectors.json``.

Every cast is one JSON text published on ``<group>:_ss_roomcasts`` (roomcasts, socketcasts)
or ``<group>:_ss_broadcasts`` (broadcasts)::

    {"d":1,"e":"message","r":"lobby","p":"aGk=","s":"a1b2"}

- ``d`` data type: 1 string (sac-sock ``S``), 2 binary (``B``), 3 JSON (``J``);
- ``e`` event name, ``r`` room (omitted when empty, as Go's ``omitempty``);
- ``p`` payload as standard base64 with padding (for ``d`` 3 the bytes are JSON text);
- ``s`` the sender's server name.

:func:`encode_cast` writes exactly what Go's ``json.Marshal`` writes for the same
transmission: keys in that order, no spaces, and Go's string escaping (``<``, ``>``, ``&``,
U+2028, U+2029 and control characters as ``\\u00XX``/short escapes, other non-ASCII as
UTF-8). :func:`decode_message` reads like Go's ``json.Unmarshal`` (any key order, key
names matched case-insensitively, the last duplicate wins, ``null`` leaves a field empty,
unknown keys ignored) and then validates; it raises :class:`InvalidMessage` with a short
``reason`` the transport counts. We are stricter than upstream in three places, each a
message upstream would turn into a broken or useless frame: an event name holding
0x01/0x02 (``bad_event``), a roomcast without a room (``no_room``) and a string payload
that is not UTF-8 (``bad_utf8``; it would go out in a text websocket frame).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import SacSockError
from . import jsoncheck
from .base import Cast

DEFAULT_SERVER_GROUP = "ss-rmhb-group-default"
ROOMCASTS_SUFFIX = ":_ss_roomcasts"
BROADCASTS_SUFFIX = ":_ss_broadcasts"

#: sac-sock type char -> ``d``, and back
DATA_TYPE_CODES = {"S": 1, "B": 2, "J": 3}
CODE_DATA_TYPES = {v: k for k, v in DATA_TYPE_CODES.items()}

#: every reason :class:`InvalidMessage` can carry (stats count ``invalid_<reason>``)
REASONS = (
    "bad_json",  # not JSON, not an object, or a field of the wrong JSON type
    "bad_data_type",  # d missing, 0 or unknown
    "no_event",  # e missing or empty
    "bad_event",  # e holds 0x01 or 0x02
    "no_room",  # a roomcast without r
    "bad_base64",  # p is not standard base64 with padding
    "bad_json_payload",  # d=3 and the payload is not JSON text
    "bad_utf8",  # d=1 and the payload is not UTF-8
)


class InvalidMessage(SacSockError, ValueError):
    """A message from Redis that must be dropped; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Channels(NamedTuple):
    roomcasts: str
    broadcasts: str


class Transmission(NamedTuple):
    """A decoded message: the cast it carries and the name of the server that sent it."""

    cast: Cast
    server: str


def channels(server_group: str = DEFAULT_SERVER_GROUP) -> Channels:
    """The two Pub/Sub channels of a server group."""
    return Channels(server_group + ROOMCASTS_SUFFIX, server_group + BROADCASTS_SUFFIX)


# ---- encoding ------------------------------------------------------------------------------

# what Go's encoding/json escapes inside a string (with its default HTML escaping), plus
# lone surrogates, which are not valid UTF-8 and which Go writes as U+FFFD
_NEEDS_ESCAPE = re.compile("[\x00-\x1f\"\\\\<>&\u2028\u2029\ud800-\udfff]")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"
    return f"\\u{ord(ch):04x}"


def go_json_string(value: str) -> str:
    """``value`` as Go's ``json.Marshal`` writes a string (quotes included)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def encode_cast(cast: Cast, server_name: str) -> bytes:
    """The JSON text Go ``ssredis`` publishes for ``cast``, byte for byte."""
    code = DATA_TYPE_CODES.get(cast.type)
    if code is None:
        raise ValueError(f"unknown sac-sock data type {cast.type!r}; use 'S', 'B' or 'J'")
    room = f',"r":{go_json_string(cast.room)}' if cast.room else ""
    payload = base64.b64encode(cast.payload).decode("ascii")
    text = (
        f'{{"d":{code},"e":{go_json_string(cast.event)}{room},"p":"{payload}",'
        f'"s":{go_json_string(server_name)}}}'
    )
    return text.encode("utf-8")


def channel_for(cast: Cast, chans: Channels) -> str:
    """Roomcasts (socketcasts too) go to the roomcasts channel, broadcasts to the other."""
    return chans.broadcasts if cast.room is None else chans.roomcasts


# ---- decoding ------------------------------------------------------------------------------

_FIELDS = {"d", "e", "r", "p", "s"}


def _loads(text: str) -> Any:
    return jsoncheck.loads(text)  # ValueError also for NaN/Infinity and too deep nesting


def _no_lone_surrogates(text: str) -> str:
    """A lone ``\\ud800``-style escape becomes U+FFFD, as Go's decoder does (Python keeps the
    surrogate, which no UTF-8 frame can carry); pairs were already joined by the parser."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _fields(raw: bytes | str) -> dict[str, Any]:
    """The five fields as Go's Unmarshal into the transmission struct sees them."""
    try:
        text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
        obj = _loads(text)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise InvalidMessage("bad_json", f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InvalidMessage("bad_json", f"a JSON object is needed, got {type(obj).__name__}")
    out: dict[str, Any] = {}
    for key, value in obj.items():  # in document order: the last duplicate wins, as in Go
        name = key if key in _FIELDS else key.casefold()
        if name not in _FIELDS or value is None:
            continue
        if name == "d":
            if type(value) is not int:
                raise InvalidMessage("bad_json", f"d must be an integer, got {value!r}")
        elif not isinstance(value, str):
            raise InvalidMessage("bad_json", f"{name} must be a string, got {type(value).__name__}")
        else:
            value = _no_lone_surrogates(value)
        out[name] = value
    return out


def _b64decode(text: str) -> bytes:
    """Go's ``base64.StdEncoding.DecodeString``: std alphabet, padded, CR/LF skipped."""
    data = text.encode("ascii", "replace").replace(b"\r", b"").replace(b"\n", b"")
    body = data.rstrip(b"=")
    if len(data) % 4 or len(data) - len(body) > 2 or b"=" in body:
        raise InvalidMessage("bad_base64", f"p is not standard base64 with padding: {text[:40]!r}")
    try:
        return base64.b64decode(data, validate=True)  # and only the std alphabet
    except binascii.Error:
        raise InvalidMessage("bad_base64", f"p is not standard base64 with padding: {text[:40]!r}") from None


def decode_message(raw: bytes | str, *, roomcast: bool) -> Transmission:
    """Decode and validate one message read from the roomcasts (``roomcast``) or broadcasts
    channel; raises :class:`InvalidMessage`. A broadcast ignores any ``r``, as upstream."""
    f = _fields(raw)
    code = f.get("d", 0)
    type_char = CODE_DATA_TYPES.get(code)
    if type_char is None:
        raise InvalidMessage("bad_data_type", f"d is {code}; expected 1, 2 or 3")
    event = f.get("e", "")
    if not event:
        raise InvalidMessage("no_event", "e is missing or empty")
    if "\x01" in event or "\x02" in event:
        raise InvalidMessage("bad_event", f"event name {event!r} holds 0x01 or 0x02")
    room: str | None = None
    if roomcast:
        room = f.get("r", "")
        if not room:
            raise InvalidMessage("no_room", "a roomcast without r")
    payload = _b64decode(f.get("p", ""))
    if type_char == "J":
        try:
            _loads(payload.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise InvalidMessage("bad_json_payload", f"d=3 but the payload is not JSON ({exc})") from None
    elif type_char == "S":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage("bad_utf8", "d=1 but the payload is not UTF-8") from None
    return Transmission(Cast(room, event, type_char, payload), f.get("s", ""))


class RedisCodec:
    """Encode and decode for one server (group + name): what a Redis transport needs."""

    def __init__(self, server_group: str, server_name: str) -> None:
        if not server_group:
            raise ValueError("server_group must not be empty")
        if not server_name:
            raise ValueError("server_name must not be empty")
        self.server_group = server_group
        self.server_name = server_name
        self.channels = channels(server_group)
        # our encoder always ends a message with this; see is_own_echo
        self._echo_tail = f',"s":{go_json_string(server_name)}}}'.encode()

    def encode(self, cast: Cast) -> tuple[str, bytes]:
        """(channel, message) to PUBLISH for a cast that originated in this cluster."""
        return channel_for(cast, self.channels), encode_cast(cast, self.server_name)

    def is_own_echo(self, raw: bytes) -> bool:
        """Fast check, without parsing, for a message this server published.

        Exact for everything our encoder writes; for a foreign message it is True only when
        the last key of the object is ``"s"`` holding our name, which upstream drops too.
        """
        return raw.endswith(self._echo_tail)

    def decode(self, channel: str | bytes, raw: bytes | str) -> Cast | None:
        """The cast a message carries; None for our own echo; raises InvalidMessage."""
        if isinstance(channel, bytes):
            channel = channel.decode("utf-8", "replace")
        t = decode_message(raw, roomcast=channel == self.channels.roomcasts)
        if t.server == self.server_name:
            return None
        return t.cast


# ---- URLs ------------------------------------------------------------------------------------

_SECRET_QUERY_KEYS = {"password", "pass", "pwd", "token", "auth"}


def mask_url(url: str) -> str:
    """``url`` with the password (userinfo or ``?password=``) replaced by ``***``, for logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else f"{userinfo}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs],
                quote_via=quote, safe="*",
            )
    out = f"{parts.scheme}://{netloc}{parts.path}" if "://" in url else urlunsplit(
        (parts.scheme, netloc, parts.path, "", "")
    )
    return out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
