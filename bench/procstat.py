"""Server-side process accounting from /proc: CPU seconds and memory of a process tree.

Every server the benchmarks start is launched as one process whose descendants are all
of its server-side processes: for sacsock_actors that is the driver, and under it Ray's
gcs_server, raylet, dashboard agent, log monitor and the worker processes that host the
gateway and room shard actors (children of the raylet). A sample reads, for each of
them, ``utime + stime`` from ``/proc/<pid>/stat`` (all threads) and ``Pss``/``Rss`` from
``/proc/<pid>/smaps_rollup``. Linux only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    pid: int
    role: str
    cpu_s: float
    pss_kb: int
    rss_kb: int
    uss_kb: int


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    kids = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def role_of(pid: int, named: dict[int, str]) -> str:
    """gateway / shard / driver / server (named), or the Ray system process' name."""
    if pid in named:
        return named[pid]
    cmd = _cmdline(pid)
    if "RoomShardActor" in cmd:
        return "shard"
    if "GatewayActor" in cmd:
        return "gateway"
    if "BridgeActor" in cmd:
        return "bridge"
    for key in ("gcs_server", "raylet", "dashboard/agent.py", "log_monitor", "monitor.py",
                "runtime_env/agent", "dashboard.py", "ray::IDLE", "default_worker"):
        if key in cmd:
            return "ray:" + key.split("/")[-1].replace(".py", "")
    return "other:" + (cmd.split(" ")[0].rsplit("/", 1)[-1] or str(pid))


def read_proc(pid: int) -> tuple[float, int, int, int] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rfind(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        pss = rss = uss = 0
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                    uss += int(line.split()[1])
        return cpu, pss, rss, uss
    except (OSError, ValueError, IndexError):
        return None


def sample(root: int, named: dict[int, str]) -> dict[int, Proc]:
    out = {}
    for pid in descendants(root):
        got = read_proc(pid)
        if got is not None:
            out[pid] = Proc(pid, role_of(pid, named), *got)
    return out


def cpu_delta(before: dict[int, Proc], after: dict[int, Proc]) -> dict[str, float]:
    """CPU seconds spent between two samples, per role, plus ``total``.

    A process that started in between counts from zero; one that ended in between is
    lost (its last ticks are not visible), which the benchmarks avoid by sampling a
    server whose processes all live through the measurement.
    """
    by_role: dict[str, float] = {}
    for pid, p in after.items():
        spent = p.cpu_s - (before[pid].cpu_s if pid in before else 0.0)
        by_role[p.role] = by_role.get(p.role, 0.0) + spent
    by_role = {k: round(v, 3) for k, v in by_role.items() if v > 0}
    by_role["total"] = round(sum(by_role.values()), 3)
    return by_role


def memory(snap: dict[int, Proc]) -> dict[str, dict[str, int]]:
    """PSS, RSS and USS (private pages) in KiB per role, plus ``total``.

    To count new memory across several processes, add USS deltas: a PSS delta also moves
    when pages merely change how many processes share them (a Ray worker exiting raises
    every other process' PSS without a byte allocated).
    """
    out: dict[str, dict[str, int]] = {}
    keys = ("pss_kb", "rss_kb", "uss_kb")
    for p in snap.values():
        m = out.setdefault(p.role, dict.fromkeys(keys, 0))
        for k in keys:
            m[k] += getattr(p, k)
    out["total"] = {k: sum(getattr(p, k) for p in snap.values()) for k in keys}
    return out
