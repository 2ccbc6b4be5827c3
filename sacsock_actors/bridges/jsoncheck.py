"""Strict JSON text parsing shared by the bridge codecs. Pure: standard library only.

What another instance sends as JSON data goes out to browsers in a text frame and through
``JSON.parse``, so the bridges accept only what that accepts: UTF-8 text (no UTF-16/32,
which :func:`json.loads` would guess from bytes), no ``NaN``/``Infinity`` (Python
extensions, refused by Go and browsers). Nesting deeper than the interpreter's recursion
limit leaves room for (several hundred levels) is refused too: :func:`json.loads` raises
``RecursionError`` there, which is not a ``ValueError`` and would escape a codec.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # built once: json.loads(**kw) builds one per call


def loads(text: str | bytes | bytearray) -> Any:
    """The value of JSON ``text`` (bytes must be UTF-8); raises ``ValueError`` saying why not."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
