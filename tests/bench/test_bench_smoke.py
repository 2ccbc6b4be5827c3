"""A tiny run of the whole benchmark harness (bench/run.py --smoke), so that it keeps working.

It builds the Go load generator, starts the servers (sacsock_actors on Ray with async and
with plain handlers, the raw aiohttp baseline, python-socketio, and the upstream Go server
when ../shared/peers is beside the repo), runs every single-node scenario at toy sizes and
checks the JSON, the table and the chart it writes. Figures are not checked: at these
sizes they mean nothing. Skipped when Go is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def go_binary() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.exists() else None


def test_bench_smoke(tmp_path: Path) -> None:
    go = go_binary()
    if go is None:
        pytest.skip("Go is not installed: bench/loadgen (the load generator) is a Go program; "
                    "install Go >= 1.22 (https://go.dev/dl/) to run the benchmark smoke test")
    servers = ["aiohttp_baseline", "uvloop_floor", "sacsock_actors", "sacsock_actors_plain"]
    if (REPO.parent / "shared" / "peers" / "build.sh").exists() or os.environ.get("CI") == "true":
        servers.append("go_server")  # in CI ../shared must be there: a missing one fails here
    if importlib.util.find_spec("socketio") is not None:
        servers.append("python_socketio")
    env = dict(os.environ, PATH=f"{Path(go).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--only", "idle,echo,fanout,rooms",
         "--servers", ",".join(servers), "--results-dir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    rows = doc["rows"]
    assert {r["server"] for r in rows} == set(servers)
    seen = {(r["scenario"], r["server"]) for r in rows}
    for scenario in ("idle", "echo", "fanout", "rooms"):
        for server in servers:
            assert (scenario, server) in seen, f"no {scenario} row for {server}"
    for r in rows:
        m = r["metrics"]
        if r["scenario"] == "echo":
            assert m["round_trips"] > 0 and m["errors"] == 0
        if "missing" in m:
            assert m["delivered"] > 0, r
            assert m["missing"] == 0 and m["duplicates"] == 0, r
            if r["server"] not in ("python_socketio", "go_server"):  # both may reorder (see bench/README)
                assert m["out_of_order"] == 0, r
        if r["scenario"] != "idle":
            assert r["server_cpu"]["total"] >= 0
    gateway_roles = {role for r in rows if r["server"] == "sacsock_actors" for role in r["server_cpu"]}
    assert "gateway" in gateway_roles  # Ray's processes are accounted, the gateway among them
    assert {x["peer"] for x in doc["ratios"]} >= {"aiohttp_baseline", "sacsock_actors"}
    assert "| fanout |" in proc.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "bench.png").stat().st_size > 10_000
    for name in ("idle", "echo", "fanout", "rooms"):
        assert (tmp_path / f"{name}.json").exists()
