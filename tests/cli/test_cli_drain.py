"""`sacsock serve` in production shape: SIGTERM drains (sockets closed with 1001, exit 0),
--metrics-port serves Prometheus metrics, access logs appear only with --access-log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from sacclient import SacClient, free_port, sacsock_bin

APP = '''
import logging
from sacsock_actors import SocketServer

server = SocketServer()

@server.on_connect
def hello(socket):
    logging.getLogger("myapp").warning("connected-marker %s", socket.id)
    socket.emit("welcome", socket.id)
'''


class Proc:
    """`sacsock` with its output collected line by line in a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_DEDUP_LOGS="0")
        env.pop("RAY_ADDRESS", None)
        self.proc = subprocess.Popen(
            [sacsock_bin(), *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def wait_output(self, text: str, bound: float = 60.0) -> None:
        deadline = time.monotonic() + bound
        while text not in self.output:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{text!r} not in the output:\n{self.output}")
            await asyncio.sleep(0.1)

    def stop(self, bound: float = 90.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"sacsock did not stop within {bound} s:\n{self.output}") from None
        self._reader.join(10)
        return code


async def wait_ok(url: str, proc: Proc, bound: float = 120.0) -> None:
    deadline = time.monotonic() + bound
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.proc.poll() is not None:
                raise AssertionError(f"sacsock exited early:\n{proc.output}")
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} not ready within {bound} s:\n{proc.output}")


@pytest.mark.parametrize("access_log", [False, True], ids=["default", "access-log"])
async def test_sigterm_drains_with_metrics_and_access_log_flag(tmp_path, access_log):
    (tmp_path / "myapp.py").write_text(APP)
    port, mport = free_port(), free_port()
    args = ["serve", "myapp:server", "--port", str(port), "--metrics-port", str(mport)]
    proc = Proc(args + (["--access-log"] if access_log else []), tmp_path)
    try:
        await wait_ok(f"http://127.0.0.1:{port}/healthz", proc)
        client = await SacClient.connect(f"http://127.0.0.1:{port}/socket")
        sid = (await client.recv_event("welcome")).text
        # the marker is logged after the /healthz requests, by the same process: once it is
        # through Ray's log pipeline, an access line for them would be too
        await proc.wait_output(f"connected-marker {sid}")
        assert ("GET /healthz" in proc.output) is access_log, proc.output
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{mport}/metrics") as r:
                assert r.status == 200
                assert 'sacsock_sockets{gateway="gw-0"} 1' in await r.text()
        proc.proc.send_signal(signal.SIGTERM)
        assert await client.closed(60) == 1001
        await client.close()
        assert proc.stop() == 0, proc.output
        assert "SIGTERM: draining" in proc.output
    finally:
        proc.stop()
