"""The `sacsock` command as a user runs it: an app module in a folder of its own, a local Ray
started and stopped by the command, signal shutdown, and `sacsock demo`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from sacclient import SacClient, free_port, sacsock_bin

APP = '''
from sacsock_actors import SocketServer
from shout import shout          # a sibling module: must reach the gateway actor too

server = SocketServer()

@server.on("echo")
def echo(socket, data):
    socket.emit("echo", shout(data.decode()))

@server.on("join")
async def join(socket, data):
    socket.join(data.decode())
    socket.roomcast(data.decode(), "joined", socket.id)
'''

SHOUT = "def shout(text):\n    return text.upper() + '!'\n"


async def wait_http(url: str, proc: subprocess.Popen, bound: float = 120.0) -> float:
    began = time.monotonic()
    async with aiohttp.ClientSession() as s:
        while time.monotonic() - began < bound:
            if proc.poll() is not None:
                raise AssertionError(f"sacsock exited early with {proc.returncode}")
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return time.monotonic() - began
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} not ready within {bound} s")


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sacsock_bin(), *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, bound: float = 60.0) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"sacsock did not stop within {bound} s:\n{out}") from None
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_app_from_its_own_folder_then_signal_shutdown(tmp_path, sig):
    (tmp_path / "myapp.py").write_text(APP)
    (tmp_path / "shout.py").write_text(SHOUT)
    port = free_port()
    proc = start(["serve", "myapp:server", "--port", str(port), "--gateways", "2"], tmp_path)
    try:
        took = await wait_http(f"http://127.0.0.1:{port}/sacsock.js", proc)
        print(f"sacsock serve ready in {took:.1f} s (local Ray, 2 gateways)")
        a = await SacClient.connect(f"http://127.0.0.1:{port}/socket")
        assert (await a.call("echo", "hi")).text == "HI!"
        await a.emit("join", "r")
        assert (await a.recv_event("joined")).event == "joined"
    finally:
        out = stop(proc, sig)
    assert proc.returncode == 0, out
    assert await a.closed() == 1001
    await a.close()
    assert "serving http://127.0.0.1" in out


async def test_serve_reports_a_bad_target_clearly(tmp_path):
    (tmp_path / "notapp.py").write_text("server = 42\n")
    proc = start(["serve", "notapp:server"], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "not a SocketServer" in out


async def test_demo_serves_the_chat_page(tmp_path):
    port = free_port()
    proc = start(["demo", "--port", str(port)], tmp_path)
    try:
        await wait_http(f"http://127.0.0.1:{port}/", proc)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/") as r:
                page = await r.text()
            assert "/sacsock.js" in page
            async with s.get(f"http://127.0.0.1:{port}/sacsock.js") as r:
                assert r.status == 200
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out
