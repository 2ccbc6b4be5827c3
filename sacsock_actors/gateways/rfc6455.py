"""RFC 6455 close codes and the UTF-8 rule, shared by the frame parser (``wsparse``). Pure.

:func:`valid_utf8` checks a text message (section 8.1: invalid UTF-8 closes with 1007);
pure-ASCII messages, the usual case, are checked without decoding.
"""

from __future__ import annotations

PROTOCOL_ERROR = 1002
INVALID_TEXT = 1007


def valid_utf8(data: bytes) -> bool:
    """True if ``data`` is valid UTF-8 (ASCII fast path)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
