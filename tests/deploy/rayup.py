"""A two-"machine" `ray up` target on this one machine, contained so that nothing leaks.

- ``NamespacedSshd``: Debian's sshd with its own config, host key, authorized keys and
  port, listening on 127.0.0.2 (the head) and 127.0.0.3 (the worker), each address with
  its own HOME (``Match LocalAddress`` + ``SetEnv``), like two machines. It runs as PID 1
  of its own PID namespace (``unshare --pid --fork --mount-proc``, a private tmpfs on
  /run for /run/sshd), so the ``ray stop`` that ``ray up``/``ray down`` run sees only
  the processes of these nodes, and killing it ends whatever is left. The machine's own
  ssh set-up is not touched.
- ``ssh_wrapper``: ``ssh -F OWN_CONFIG`` first on PATH: Ray's config has no ssh port, and
  both the launcher and the head's autoscaler call ``ssh``/``rsync`` from PATH.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HEAD_IP = "127.0.0.2"  # not 127.0.0.1: Ray rewrites that to the machine's own address
WORKER_IP = "127.0.0.3"
SSHD = "/usr/sbin/sshd"


def free_block(size: int, low: int = 20000, high: int = 32000) -> int:
    """A port ``base`` with base..base+size-1 free on both node addresses right now."""
    import random

    for _ in range(200):
        base = random.randint(low, high - size)
        try:
            for port in range(base, base + size):
                for ip in (HEAD_IP, WORKER_IP, "127.0.0.1"):
                    with socket.socket() as s:
                        s.bind((ip, port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {size} free ports in a row in {low}-{high}")


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


class SshSetup:
    """Keys, each node's home and login environment, the client config and the ``ssh``
    wrapper; one :class:`NamespacedSshd` per node address serves them."""

    def __init__(self, work: Path, port: int, homes: dict[str, Path]) -> None:
        self.work = work
        self.port = port
        self.homes = homes
        ssh = work / "ssh"
        ssh.mkdir(parents=True)
        keygen(ssh / "host_key")
        keygen(ssh / "id")
        (ssh / "authorized_keys").write_text((ssh / "id.pub").read_text())
        self.ssh = ssh
        self.key = ssh / "id"
        self.client_config = ssh / "config"
        self.client_config.write_text(
            f"Host {' '.join(homes)}\n    Port {port}\n    IdentityFile {self.key}\n    User root\n"
            "    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n"
        )
        self.bindir = work / "bin"
        self.bindir.mkdir()
        wrapper = self.bindir / "ssh"
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {self.client_config} "$@"\n')
        wrapper.chmod(0o755)
        for home in homes.values():  # each node's login environment, as on a machine of its own
            (home / "tmp").mkdir(parents=True)
            env = (f"export PATH={self.bindir}:$PATH RAY_TMPDIR={home}/tmp "
                   "RAY_USAGE_STATS_ENABLED=0 RAY_DEDUP_LOGS=0\n")
            (home / ".bashrc").write_text(env)
            (home / ".profile").write_text(". ~/.bashrc\n")

    def sshd_config(self, ip: str) -> Path:
        home = self.homes[ip]
        path = self.ssh / f"sshd_config-{ip}"
        path.write_text(
            f"Port {self.port}\nListenAddress {ip}\nHostKey {self.ssh}/host_key\n"
            f"PidFile {self.ssh}/sshd-{ip}.pid\nAuthorizedKeysFile {self.ssh}/authorized_keys\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPrintMotd no\n"
            "MaxSessions 100\nMaxStartups 100\nSubsystem sftp internal-sftp\n"
            f"SetEnv HOME={home} RAY_TMPDIR={home}/tmp\n"
        )
        return path


class NamespacedSshd:
    """sshd for one node address, as PID 1 of a PID namespace of its own (so one node's
    ``ray stop`` cannot see the other node's processes); ``stop()`` kills it all."""

    def __init__(self, setup: SshSetup, ip: str) -> None:
        self.setup = setup
        self.ip = ip
        self.config = setup.sshd_config(ip)
        self.proc: subprocess.Popen | None = None
        self.log = setup.work / f"sshd-{ip}.log"

    def start(self, bound: float = 30.0) -> None:
        script = (
            "mount -t tmpfs -o mode=755 sacsock-run /run && mkdir -m 755 /run/sshd && "
            f"exec {SSHD} -D -e -f {self.config}"
        )
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + bound
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.ip, self.setup.port), timeout=1) as s:
                return s.recv(4).startswith(b"SSH")
        except OSError:
            return False

    def namespace_init(self) -> int | None:
        """The pid (seen from here) of the namespace's PID 1, sshd."""
        if self.proc is None:
            return None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def pid_namespace(self) -> str | None:
        init = self.namespace_init()
        return os.readlink(f"/proc/{init}/ns/pid") if init else None

    def stop(self, bound: float = 30.0) -> None:
        """Kill the namespace's PID 1: the kernel then kills every process in it."""
        if self.proc is None:
            return
        init = self.namespace_init()
        if init is not None:
            os.kill(init, signal.SIGKILL)
        try:
            self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(bound)
        self.proc = None


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def processes_in(namespace: str) -> list[int]:
    """Pids of the processes of this machine that live in the PID namespace ``namespace``."""
    found = []
    for pid in _pids():
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") == namespace:
                found.append(pid)
        except OSError:
            continue
    return found


def processes_using(text: str) -> list[int]:
    """Pids whose command line mentions ``text`` (our ssh config: ssh run by the wrapper)."""
    found = []
    for pid in _pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(pid)
    return found
