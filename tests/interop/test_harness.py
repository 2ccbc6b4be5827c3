"""The interop harness itself: the Go peer build and cache, the process group, and that
peer_app.py answers every handler exactly as the Go peer does (one client script, both sides)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness import REPO, Missing, ProcessGroup, go_peer_binary, sources_hash, wait_for


def test_go_peer_is_built_once_into_the_cache_outside_the_repo(go_peer_bin: Path) -> None:
    assert go_peer_bin.is_file() and os.access(go_peer_bin, os.X_OK)
    assert REPO not in go_peer_bin.parents
    before = go_peer_bin.stat().st_mtime_ns
    assert go_peer_binary() == go_peer_bin  # cached: same file, not rebuilt
    assert go_peer_bin.stat().st_mtime_ns == before


def test_sources_hash_follows_every_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.go").write_text("package a\n")
    first = sources_hash(tmp_path)
    assert sources_hash(tmp_path) == first
    (tmp_path / "a" / "x.go").write_text("package a // changed\n")
    assert sources_hash(tmp_path) != first
    assert sources_hash(tmp_path, "go1.99") != sources_hash(tmp_path)


def test_missing_pieces_say_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SACSOCK_GO_PEER", str(tmp_path / "nope"))
    with pytest.raises(Missing, match="SACSOCK_GO_PEER=.*not an executable"):
        go_peer_binary()
    monkeypatch.delenv("SACSOCK_GO_PEER")
    monkeypatch.setenv("SACSOCK_GO_PEER_SRC", str(tmp_path))
    with pytest.raises(Missing, match="SACSOCK_GO_PEER_SRC not found") as info:
        go_peer_binary()
    assert "\n" not in str(info.value)


def test_a_prebuilt_binary_is_used_as_given(monkeypatch: pytest.MonkeyPatch, go_peer_bin: Path) -> None:
    monkeypatch.setenv("SACSOCK_GO_PEER", str(go_peer_bin))
    monkeypatch.setenv("SACSOCK_GO_PEER_SRC", "/nonexistent")  # not even looked at
    assert go_peer_binary() == go_peer_bin


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped running


def test_process_group_logs_and_stops_the_whole_process_group(procs: ProcessGroup) -> None:
    script = "sleep 600 & printf 'child %s\\nup%s\\n' $! now; wait"  # the log's header holds the script
    proc = procs.start("shell", ["bash", "-c", script], ready=lambda: "\nupnow" in procs.procs[-1].log_text())
    child = int(proc.log_text().split("\nchild ")[1].split()[0])
    name, path, tail = procs.logs()[-1]
    assert name == "shell" and path.is_file() and "\nupnow" in tail
    assert _running(child)
    proc.stop(timeout=10)
    assert not proc.alive
    wait_for(lambda: not _running(child), "the grandchild gone with the group", 30)
    assert proc.returncode == -signal.SIGTERM


def test_a_process_that_dies_before_ready_fails_with_its_log(procs: ProcessGroup) -> None:
    with pytest.raises(RuntimeError, match="(?s)exited.*boom"):
        procs.start("dies", ["bash", "-c", "echo boom; exit 3"], ready=lambda: False)


def test_redis_restarts_on_the_same_port(redis_proc) -> None:
    assert redis_proc.command("SET", "k", "v") == "OK"
    port = redis_proc.port
    redis_proc.restart()
    assert redis_proc.port == port and redis_proc.ping()
    assert redis_proc.command("GET", "k") is None  # no persistence: a fresh server


@pytest.fixture(scope="module", params=["go", "sacsock"])
def side(request: pytest.FixtureRequest, module_procs: ProcessGroup):
    """One server of each kind, no backend."""
    if request.param == "go":
        return module_procs.go_peer()
    return module_procs.sacsock()


async def test_both_sides_answer_the_same_handlers(side, client) -> None:
    a = await client(side.url)
    b = await client(side.url)
    a_id, b_id = await a.whoami(), await b.whoami()
    assert len(base64.b64decode(a_id)) == 24 and a_id != b_id
    await a.emit("echo", "hé")
    m = await a.next("echo")
    assert (m.text, m.type, m.binary) == ("hé", "S", False)
    await a.emit("echobin", b"\x00\x01\x02\xff")
    m = await a.next("echobin")
    assert (m.payload, m.type, m.binary) == (b"\x00\x01\x02\xff", "B", True)
    await a.emit("echojson", {"n": 1, "l": [True, None]})
    m = await a.next("echojson")
    assert (m.json, m.type, m.binary) == ({"n": 1, "l": [True, None]}, "J", False)
    for c in (a, b):
        await c.join("harness-room")
    await a.roomcast("harness-room", "to all")
    await a.roomcast("harness-room", "bytes", kind="bin")
    await a.emit("roomcastjson", {"room": "harness-room", "x": [1, 2]})
    for c in (a, b):
        assert (await c.next("roomcast")).text == "to all"
        m = await c.next("roomcastbin")
        assert (m.payload, m.binary) == (b"bytes", True)
        assert (await c.next("roomcastjson")).json == {"room": "harness-room", "x": [1, 2]}
    await b.emit("socketcast", json.dumps({"socketId": a_id, "data": "just you"}))
    assert (await a.next("socketcast")).text == "just you"
    await a.emit("broadcast", "everyone")
    await a.emit("broadcastbin", b"every byte")
    for c in (a, b):
        assert (await c.next("broadcast")).text == "everyone"
        assert (await c.next("broadcastbin")).payload == b"every byte"
    await b.leave("harness-room")
    await a.roomcast("harness-room", "only a")
    assert (await a.next("roomcast")).text == "only a"
    assert await b.extra("roomcast", 0.3) == [] and await b.extra("socketcast", 0) == []
    await a.emit("close")
    await a._until(lambda: a._reader.done(), "close", 30)


def test_a_failing_test_report_carries_every_process_log(tmp_path: Path) -> None:
    """A pytest run of its own (in tmp_path) using this directory's fixture and hook."""
    here = Path(__file__).resolve().parent
    (tmp_path / "conftest.py").write_text(f"""
import importlib.util, sys
sys.path[:0] = [{str(here)!r}, {str(here.parent)!r}]
spec = importlib.util.spec_from_file_location("interop_conftest", {str(here / "conftest.py")!r})
interop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(interop)
procs, pytest_runtest_makereport = interop.procs, interop.pytest_runtest_makereport  # fixture, hook
""")
    (tmp_path / "test_fails.py").write_text("""
def test_fails(procs):
    procs.start("talker", ["bash", "-c", "printf 'said %s\\n' hello; sleep 600"],
                ready=lambda: "said hello" in procs.procs[-1].log_text())
    assert False, "on purpose"

def test_passes(procs):
    procs.start("quiet", ["bash", "-c", "printf 'said %s\\n' nothing; sleep 600"],
                ready=lambda: "said nothing" in procs.procs[-1].log_text())
""")
    # the outer run's PYTEST_ADDOPTS (e.g. scripts/burn.sh's -x) must not change the inner one
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", "/dev/null",
                             "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert "1 failed, 1 passed" in out, out + result.stderr
    assert "process log: talker" in out and "said hello" in out, out
    assert "process log: quiet" not in out, out  # only the failing test's processes
