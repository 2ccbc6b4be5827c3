"""A real `ray up` of deploy/cluster.yaml on this machine: a head at 127.0.0.2 and a worker at
127.0.0.3 over ssh (our own sshd, in its own PID namespace: see rayup.py), the chat example
started the documented way (deploy/README.md) with a gateway on each node, a browser-like
client on each node exchanging roomcasts, a SIGTERM drain (1001), `ray down`, and no
process left behind.

What the test changes in the shipped config, and why: the addresses, ssh user and key
(its own sshd); distinct Ray ports and small resources per node (both share one machine);
the setup.sh command links this checkout's venv instead of building one per node (same
machine, same files: ~1 min saved). Everything else (file mounts, rsync filters, the
venv's `ray` commands) is as shipped.

Runs in CI; elsewhere only with SACSOCK_TEST_RAY_UP=1 (about a minute; it needs root for
the PID namespace, and Debian's openssh-server and rsync, which scripts/setup.sh installs).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest
import yaml
from rayup import (
    HEAD_IP,
    SSHD,
    WORKER_IP,
    NamespacedSshd,
    SshSetup,
    free_block,
    processes_in,
    processes_using,
)
from sacclient import SacClient

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "cluster.yaml"
VENV_BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.skipif(
        not (os.environ.get("CI") or os.environ.get("SACSOCK_TEST_RAY_UP") == "1"),
        reason="a real `ray up` (about a minute): runs in CI, or with SACSOCK_TEST_RAY_UP=1",
    ),
    pytest.mark.timeout(600),
]

WAIT_NODES = """
import sys, time, ray
ray.init(address="auto", logging_level="ERROR")
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline and sum(n["Alive"] for n in ray.nodes()) < 2:
    time.sleep(0.5)
print("alive nodes:", sum(n["Alive"] for n in ray.nodes()))
"""

# deploy/README.md, "Start the app": the same command, with this test's ports
START_APP = (
    "cd ~/app; nohup ~/sacsock_actors/.venv/bin/sacsock serve app:server --static static "
    "--address auto --host node --port {port} --gateways-per-node 1 --metrics-port {metrics} "
    "</dev/null >~/sacsock.log 2>&1 & echo $! >~/sacsock.pid"
)
STOP_APP = "kill -TERM $(cat ~/sacsock.pid)"


def ray_ports(base: int) -> str:
    """Every port of one node, from ``base`` on (40 ports), outside the ephemeral range."""
    return (
        f"--node-manager-port={base + 1} --object-manager-port={base + 2} "
        f"--dashboard-agent-grpc-port={base + 3} --dashboard-agent-listen-port={base + 4} "
        f"--runtime-env-agent-port={base + 5} --metrics-export-port={base + 6} "
        f"--min-worker-port={base + 10} --max-worker-port={base + 39} "
        "--num-cpus=1 --object-store-memory=100000000 --disable-usage-stats"
    )


def cluster_config(work: Path, key: Path, base: int) -> Path:
    config = yaml.safe_load(SHIPPED.read_text())
    assert config["provider"]["type"] == "local"
    config["cluster_name"] = f"sacsock-test-{os.getpid()}"
    config["provider"]["head_ip"] = HEAD_IP
    config["provider"]["worker_ips"] = [WORKER_IP]
    config["max_workers"] = 1
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(key)}
    assert "~/sacsock_actors" in config["file_mounts"]
    config["file_mounts"] = {
        "~/sacsock_actors": str(REPO),
        "~/app": str(REPO / "sacsock_actors" / "demo"),  # the chat demo: app.py, static/
        "~/check": str(work / "check"),
    }
    link = f"ln -sfn {VENV_BIN.parent} ~/sacsock_actors/.venv"
    assert any("scripts/setup.sh" in c for c in config["setup_commands"])
    config["setup_commands"] = [link if "scripts/setup.sh" in c else c for c in config["setup_commands"]]
    ray = "~/sacsock_actors/.venv/bin/ray"
    assert config["head_start_ray_commands"][0] == f"{ray} stop"
    config["head_start_ray_commands"] = [
        f"{ray} stop",
        f"{ray} start --head --port={base} --node-ip-address={HEAD_IP} "
        f"--include-dashboard=false --autoscaling-config=~/ray_bootstrap_config.yaml {ray_ports(base)}",
    ]
    config["worker_start_ray_commands"] = [
        f"{ray} stop",
        f"{ray} start --address=$RAY_HEAD_IP:{base} --node-ip-address={WORKER_IP} {ray_ports(base + 40)}",
    ]
    path = work / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Launcher:
    """The `ray` command where the user runs it, with the ssh wrapper first on PATH."""

    def __init__(self, config: Path, bindir: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.env = dict(
            os.environ,
            PATH=f"{bindir}:{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            RAY_UP_enable_autoscaler_v2="0",  # the local provider's worker needs v1 (ray#57153)
            RAY_USAGE_STATS_ENABLED="0",
        )
        self.env.pop("RAY_ADDRESS", None)

    def __call__(self, *args: str, bound: float = 300.0) -> str:
        cmd = [str(VENV_BIN / "ray"), *args]
        proc = subprocess.run(
            cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=bound,
        )
        with open(self.log, "a") as log:
            log.write(f"$ {' '.join(cmd)}  -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n")
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr

    def forget(self) -> None:
        """Remove what the launcher left in /tmp for this cluster: its state and lock files,
        cached configs and ssh control-socket folders."""
        name = yaml.safe_load(self.config.read_text())["cluster_name"]
        for suffix in ("state", "lock"):
            Path(f"/tmp/ray/cluster-{name}.{suffix}").unlink(missing_ok=True)
        for cached in Path("/tmp").glob("ray-config-*"):
            try:
                if name in cached.read_text():
                    cached.unlink()
            except OSError:
                continue
        log = self.log.read_text() if self.log.exists() else ""
        for control in set(re.findall(r"ControlPath=(/tmp/ray_ssh_\w+/\w+)/", log)):
            shutil.rmtree(control, ignore_errors=True)
            try:
                Path(control).parent.rmdir()  # only when no other cluster's folder is in it
            except OSError:
                pass

    def exec(self, command: str, bound: float = 300.0) -> str:
        return self("exec", str(self.config), command, bound=bound)


async def wait_healthy(url: str, bound: float = 120.0) -> None:
    deadline = time.monotonic() + bound
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError(f"{url} not healthy within {bound} s")


async def chat_client(ip: str, port: int, name: str) -> SacClient:
    """A browser-like client of the chat example: same-origin Origin, hello, join lobby."""
    url = f"http://{ip}:{port}"
    client = await SacClient.connect(f"{url}/socket", headers={"Origin": url})
    assert (await client.call("hello", name, reply="welcome")).json["name"] == name
    assert (await client.call("join", "lobby", reply="joined")).json == {"room": "lobby"}
    return client


async def next_message(client: SacClient) -> dict:
    return (await client.recv_event("message", 60)).json


async def test_ray_up_two_nodes_gateways_roomcasts_drain_down():
    for tool in (SSHD, shutil.which("rsync"), shutil.which("unshare")):
        assert tool and Path(tool).exists(), "scripts/setup.sh installs openssh-server and rsync"
    work = Path(tempfile.mkdtemp(prefix="sacsock-rayup-"))
    base = free_block(90)
    app_port, metrics_port, ssh_port = base + 80, base + 81, base + 82
    (work / "check").mkdir()
    (work / "check" / "wait_nodes.py").write_text(WAIT_NODES)
    ssh = SshSetup(work, ssh_port, {HEAD_IP: work / "head", WORKER_IP: work / "worker"})
    ray = Launcher(cluster_config(work, ssh.key, base), ssh.bindir, work / "launcher.log")
    sshds = [NamespacedSshd(ssh, ip) for ip in (HEAD_IP, WORKER_IP)]
    namespaces: list[str | None] = []
    clients: list[SacClient] = []
    try:
        for sshd in sshds:
            sshd.start()
            namespaces.append(sshd.pid_namespace())
        assert all(namespaces) and len({*namespaces, os.readlink("/proc/self/ns/pid")}) == 3
        ray("up", "-y", "--no-config-cache", str(ray.config))
        # the shipped setup puts the venv's `ray` on PATH (`ray down` runs a plain `ray stop`)
        assert "sacsock_actors/.venv/bin/ray" in ray.exec("command -v ray", bound=60)
        out = ray.exec("~/sacsock_actors/.venv/bin/python ~/check/wait_nodes.py 180", bound=240)
        assert "alive nodes: 2" in out, out[-2000:]

        ray.exec(START_APP.format(port=app_port, metrics=metrics_port), bound=60)
        for ip in (HEAD_IP, WORKER_IP):  # --host node: each gateway on its own node's address
            await wait_healthy(f"http://{ip}:{app_port}/healthz")
        head = await chat_client(HEAD_IP, app_port, "head-user")
        worker = await chat_client(WORKER_IP, app_port, "worker-user")
        clients = [head, worker]
        await asyncio.sleep(0.5)  # joins reach the shards (README: join visibility)
        for sender, text in ((head, "hello from the head"), (worker, "hello from the worker")):
            await sender.emit("message", json.dumps({"room": "lobby", "text": text}))
            for c in clients:
                got = await next_message(c)
                assert (got["room"], got["text"]) == ("lobby", text)

        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            text = await r.text()
        sockets = [line for line in text.splitlines() if line.startswith("sacsock_sockets{")]
        assert len(sockets) == 2 and all(line.endswith(" 1") for line in sockets), text

        closes = [asyncio.create_task(c.closed(90)) for c in clients]
        ray.exec(STOP_APP, bound=60)
        assert await asyncio.gather(*closes) == [1001, 1001]
        ray("down", "-y", str(ray.config))
    except BaseException:
        for log in (work / "launcher.log", work / "head" / "sacsock.log", *(d.log for d in sshds)):
            if log.exists():
                print(f"==== {log}\n{log.read_text(errors='replace')[-6000:]}")
        raise
    finally:
        for c in clients:
            await c.close()
        for sshd in sshds:
            sshd.stop()
        deadline = time.monotonic() + 30
        while any(processes_in(ns) for ns in namespaces if ns) or processes_using(str(ssh.client_config)):
            assert time.monotonic() < deadline, "processes of the ray up test were left behind"
            await asyncio.sleep(0.2)
        ray.forget()
        shutil.rmtree(work, ignore_errors=True)
