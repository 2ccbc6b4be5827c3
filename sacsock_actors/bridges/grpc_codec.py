"""The gRPC bridge's wire rules (PROTOCOL.md section 7), pure: no grpc, protobuf or JWT import.

- :func:`cast_fields` / :func:`decode_fields`: a :class:`Cast` to the fields of a
  ``transport.Broadcast`` / ``transport.Roomcast`` message, and validated back.
- :func:`bearer_token` and :func:`check_claims`: the header and claim rules a server applies to
  every RPC (the signature itself is checked in ``grpc_auth``).
- :func:`parse_peer` / :func:`parse_hostport`: ``cn@host:port`` and ``host:port`` as upstream.

We are stricter than upstream on input that would become a broken or useless frame: an
empty or 0x01/0x02-holding event name, a roomcast without a room, a string payload that is
not UTF-8. Like upstream, JSON data that does not parse is refused.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import ConfigError, SacSockError
from . import jsoncheck
from .base import Cast

#: sac-sock type char -> transport.DataType number, and back
DATA_TYPE_CODES = {"S": 0, "B": 1, "J": 2}
CODE_DATA_TYPES = {v: k for k, v in DATA_TYPE_CODES.items()}

BROADCAST = "DoBroadcast"
ROOMCAST = "DoRoomcast"

#: what :class:`InvalidCast` can carry (stats count ``invalid_<reason>``)
REASONS = ("bad_data_type", "no_event", "bad_event", "no_room", "bad_json_payload", "bad_utf8")
# bad_utf8: STR data that is not UTF-8, or an event/room holding a lone surrogate

#: what :class:`AuthError` can carry (stats count ``rejected_<reason>``)
AUTH_REASONS = (
    "no_header",  # no authorization metadata (or more than one)
    "bad_bearer",  # not exactly "Bearer <token>"
    "bad_token",  # not a compact JWS with a JSON object payload
    "bad_algorithm",  # a JWS algorithm other than HS256 (including "none")
    "bad_signature",  # HS256 that does not verify with the shared key
    "no_iam",  # iam missing, empty or not a string
    "expired",  # exp missing, zero, not an integer, or in the past
)

#: the iam upstream's clients put in their tokens
CLIENT_IAM = "ssgrpcClient"


class InvalidCast(SacSockError, ValueError):
    """An RPC whose cast must be refused; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class AuthError(SacSockError, PermissionError):
    """An RPC that must be refused as unauthenticated; ``reason`` is one of :data:`AUTH_REASONS`.

    The message never holds the token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# ---- casts -------------------------------------------------------------------------------


def cast_fields(cast: Cast) -> tuple[str, dict[str, Any]]:
    """(RPC method name, message fields without the timestamp) for a cast of this cluster."""
    code = DATA_TYPE_CODES.get(cast.type)
    if code is None:
        raise ValueError(f"unknown sac-sock data type {cast.type!r}; use 'S', 'B' or 'J'")
    fields: dict[str, Any] = {"event": cast.event, "data": cast.payload, "dataType": code}
    if cast.room is None:
        return BROADCAST, fields
    fields["room"] = cast.room
    return ROOMCAST, fields


def _utf8_ok(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (protobuf parses only valid UTF-8 strings; a caller
    passing its own ``str`` may hold a lone surrogate, which no frame can carry)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_fields(room: str | None, event: str, data: bytes, data_type: int) -> Cast:
    """The cast an RPC carries (``room`` None for DoBroadcast); raises :class:`InvalidCast`."""
    type_char = CODE_DATA_TYPES.get(data_type)
    if type_char is None:
        raise InvalidCast("bad_data_type", f"dataType is {data_type}; expected 0, 1 or 2")
    if not event:
        raise InvalidCast("no_event", "event is empty")
    if "\x01" in event or "\x02" in event:
        raise InvalidCast("bad_event", f"event name {event!r} holds 0x01 or 0x02")
    if room is not None and not room:
        raise InvalidCast("no_room", "a roomcast without a room")
    if not _utf8_ok(event) or (room is not None and not _utf8_ok(room)):
        raise InvalidCast("bad_utf8", "the event or room holds a lone surrogate, not UTF-8 text")
    if type_char == "J":
        try:
            jsoncheck.loads(data)  # UTF-8 only: json.loads would take UTF-16/32 bytes too
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise InvalidCast("bad_json_payload", f"JSON dataType but the data is not JSON ({exc})") from None
    elif type_char == "S":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidCast("bad_utf8", "STR dataType but the data is not UTF-8") from None
    return Cast(room, event, type_char, bytes(data))


# ---- authentication (the pure part) ------------------------------------------------------


def bearer_token(values: list[str]) -> str:
    """The token of the ``authorization`` metadata values of one RPC, as upstream reads them:
    exactly one value, exactly ``Bearer <token>``. Raises :class:`AuthError`."""
    if len(values) != 1:
        detail = "several authorization values" if values else "no authorization metadata"
        raise AuthError("no_header", detail)
    parts = values[0].split(" ")
    if len(parts) != 2 or parts[0] != "Bearer" or not parts[1]:
        raise AuthError("bad_bearer", "authorization is not 'Bearer <token>'")
    return parts[1]


def check_claims(claims: Any, now: float) -> None:
    """Upstream's claim rules: a non-empty ``iam`` and an integer ``exp`` that is neither zero
    nor before ``now`` (unix seconds). Raises :class:`AuthError`."""
    if not isinstance(claims, dict):
        raise AuthError("bad_token", "the payload is not a JSON object")
    iam = claims.get("iam")
    if not isinstance(iam, str) or not iam:
        raise AuthError("no_iam", "iam is missing or empty")
    exp = claims.get("exp")
    if type(exp) is not int or exp == 0:
        raise AuthError("expired", "exp is missing, zero or not an integer")
    if exp < int(now):
        raise AuthError("expired", "the token has expired")


# ---- addresses ---------------------------------------------------------------------------


class Peer(NamedTuple):
    """A configured peer: ``target`` is what to dial, ``tls_name`` the name its certificate
    must carry (the ``cn@`` part, else the host), ``spec`` the entry as written."""

    spec: str
    target: str
    tls_name: str


def parse_hostport(value: str, what: str = "address") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ConfigError saying what is wrong."""
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{what} must be HOST:PORT, got {value!r}")
    host, _, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    # ASCII digits only, at most 5: str.isdigit() also takes "²" and "١", and int() refuses
    # the first and more than 4300 digits with a ValueError that is not a ConfigError
    digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
    if not host or not digits or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{what} must be HOST:PORT with a port 0-65535, got {value!r}")
    return host, int(port_text)


def parse_peer(spec: str) -> Peer:
    """A peer entry, ``cn@host:port`` or ``host:port`` (then the TLS name is the host)."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"a gRPC peer must be 'cn@host:port' or 'host:port', got {spec!r}")
    cn, at, target = spec.rpartition("@")
    if at and not cn:
        raise ConfigError(f"gRPC peer {spec!r}: the name before '@' is empty")
    host, port = parse_hostport(target, f"gRPC peer {spec!r}")
    if port == 0:
        raise ConfigError(f"gRPC peer {spec!r}: port 0 cannot be dialled")
    return Peer(spec, target, cn or host)
