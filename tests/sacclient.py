"""A small sac-sock websocket client for tests (aiohttp), speaking PROTOCOL.md sections 2-3."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

WAIT = 20.0  # generous bound on waiting for a message; not a measurement


class Message(NamedTuple):
    event: str
    type: str
    payload: bytes
    binary: bool

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


def parse(frame: bytes, binary: bool) -> Message:
    cut = frame.index(1)
    end = frame.index(2, cut)
    return Message(frame[:cut].decode(), frame[cut + 1 : end].decode(), frame[end + 1 :], binary)


class SacClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession) -> None:
        self.ws = ws
        self._session = session

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> SacClient:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, protocols=("sac-sock",), **kwargs)
        except BaseException:
            await session.close()
            raise
        return cls(ws, session)

    async def emit(self, event: str, data: str | bytes = b"") -> None:
        if isinstance(data, str):
            await self.ws.send_str(f"{event}\x02{data}")
        else:
            await self.ws.send_bytes(event.encode() + b"\x02" + data)

    async def recv(self, timeout: float = WAIT) -> Message:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return parse(msg.data.encode(), False)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return parse(msg.data, True)
        raise ConnectionError(f"expected a message, got {msg.type.name} {msg.data!r}")

    async def recv_event(self, event: str, timeout: float = WAIT) -> Message:
        """Next message of ``event``, skipping others."""
        async def loop() -> Message:
            while True:
                m = await self.recv(timeout)
                if m.event == event:
                    return m
        return await asyncio.wait_for(loop(), timeout)

    async def call(self, event: str, data: str | bytes = b"", reply: str | None = None) -> Message:
        """Emit and wait for the reply event (default: the same name)."""
        await self.emit(event, data)
        return await self.recv_event(reply or event)

    async def nothing(self, event: str, seconds: float = 0.5) -> bool:
        """True when no message of ``event`` arrives within ``seconds`` (others are skipped)."""
        try:
            m = await asyncio.wait_for(self.recv_event(event, seconds + 1), seconds)
        except asyncio.TimeoutError:
            return True
        raise AssertionError(f"unexpected message {m!r}")

    async def closed(self, timeout: float = WAIT) -> int | None:
        """Wait for the server to close us; returns the close code."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return msg.data
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self._session.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, outside the kernel's ephemeral range and
    Ray's worker ports (10002-19999), so no port-0 bind (Ray's gRPC servers, which use
    SO_REUSEPORT as our gateways do) can land on it meanwhile."""
    low, high = 20000, 32000
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def sacsock_bin() -> str:
    """The `sacsock` command of the running interpreter's environment."""
    exe = Path(sys.executable).with_name("sacsock")
    return str(exe) if exe.exists() else shutil.which("sacsock") or "sacsock"
