"""RFC 6455 checks aiohttp leaves out on the server side. Pure.

- :class:`MaskScanner` follows client frame boundaries in the raw byte stream and
  reports the first frame without the mask bit (RFC 6455 section 5.1: the server must
  close the connection). It reads headers only and skips payloads, so its cost is per
  frame, not per byte.
- :func:`valid_utf8` checks a text message (section 8.1: invalid UTF-8 closes with 1007);
  pure-ASCII messages, the usual case, are checked without decoding.
"""

from __future__ import annotations

PROTOCOL_ERROR = 1002
INVALID_TEXT = 1007


class MaskScanner:
    """Feed it every byte a client sends after the upgrade, in order.

    ``feed(data)`` returns False once a frame without the mask bit has been seen (and
    from then on); True while every frame header so far was masked.
    """

    __slots__ = ("_head", "_skip", "ok")

    def __init__(self) -> None:
        self._head = b""  # bytes of a frame header split across reads
        self._skip = 0  # payload bytes of the current frame still to come
        self.ok = True

    def feed(self, data: bytes) -> bool:
        if not self.ok:
            return False
        n = len(data)
        pos = 0
        if self._skip:
            if self._skip >= n:
                self._skip -= n
                return True
            pos, self._skip = self._skip, 0
        while pos < n:
            held = self._head
            if not held and pos + 14 <= n:  # fast path: a whole header in this read
                second = data[pos + 1]
                if not second & 0x80:
                    self.ok = False
                    return False
                length = second & 0x7F
                if length < 126:
                    pos += 6 + length
                elif length == 126:
                    pos += 8 + ((data[pos + 2] << 8) | data[pos + 3])
                else:
                    pos += 14 + int.from_bytes(data[pos + 2 : pos + 10], "big")
                if pos > n:
                    self._skip = pos - n
                    return True
                continue
            chunk = held + data[pos : pos + 14] if held else data[pos : pos + 14]
            if len(chunk) < 2:
                self._head = chunk
                return True
            second = chunk[1]
            if not second & 0x80:
                self.ok = False
                return False
            length = second & 0x7F
            header = 6 if length < 126 else 8 if length == 126 else 14
            if len(chunk) < header:
                self._head = chunk  # every byte left was taken into the chunk
                return True
            if length == 126:
                length = int.from_bytes(chunk[2:4], "big")
            elif length == 127:
                length = int.from_bytes(chunk[2:10], "big")
            pos += header - len(held)
            self._head = b""
            left = n - pos
            if length > left:
                self._skip = length - left
                return True
            pos += length
        return True


def valid_utf8(data: bytes) -> bool:
    """True if ``data`` is valid UTF-8 (ASCII fast path)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
