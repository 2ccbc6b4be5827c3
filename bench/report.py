"""Reporting a benchmark run: rows, ratios, the issue targets, tables, the chart, README."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from procs import (
    BASELINE,
    BENCH,
    FLOOR,
    GO,
    OURS,
    PEERS,
    REPO,
    SACSOCK,
    SACSOCK_PLAIN,
    SERVER_ORDER,
    SOCKETIO,
    log,
)


@dataclass
class Row:
    scenario: str
    variant: str
    server: str
    metrics: dict
    server_cpu: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.scenario, self.variant


def fmt_rate(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def fmt_us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} us"


def headline(row: Row) -> tuple[str, float | None]:
    """(unit, value) of a row's throughput figure."""
    m = row.metrics
    if row.scenario in ("echo", "blocking"):
        return "round trips/s", m.get("round_trips_per_s")
    if row.scenario == "idle":
        return "KiB/conn (gateway)", row.extra.get("gateway_kib_per_conn")
    if row.scenario == "rooms":
        return "casts/s", m.get("casts_per_s")
    return "deliveries/s", m.get("deliveries_per_s")


def print_row(row: Row) -> None:
    m = row.metrics
    unit, value = headline(row)
    if row.scenario == "idle":
        log(f"{row.scenario:<7} {row.variant:<22} {row.server:<17} "
            f"gateway {row.extra['gateway_kib_per_conn']:.1f} KiB/conn, all server processes "
            f"{row.extra['total_kib_per_conn']:.1f} KiB/conn ({m.get('conns')} conns; PSS of the gateway, "
            "USS sum of all)")
        return
    errs = ""
    if "missing" in m:
        errs = f" missing {m['missing']} dup {m['duplicates']} ooo {m['out_of_order']}"
    extra = ""
    if row.scenario == "rooms":
        extra = f" ({fmt_rate(m['deliveries_per_s'])} deliveries/s)"
    cpu = row.server_cpu.get("total")
    per_cpu = row.extra.get("per_server_cpu_s")
    log(f"{row.scenario:<7} {row.variant:<22} {row.server:<17} {fmt_rate(value or 0):>7} {unit}{extra} "
        f"p50 {fmt_us(m.get('p50_us'))} p99 {fmt_us(m.get('p99_us'))}{errs} "
        f"server CPU {cpu:.2f} s" + (f" ({fmt_rate(per_cpu)}/CPU-s)" if per_cpu else "")
        + f" client CPU {m.get('client_cpu_s', 0):.2f} s")



def ratios(rows: list[Row]) -> list[dict]:
    """Each of ours / each peer (and plain handlers / async handlers), per scenario and variant."""
    by_key: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        by_key.setdefault(r.key, {})[r.server] = r
    out = []
    # (and the floor against Go: how far Python's own floor is from Go's whole server)
    pairs = [(o, p) for o in OURS for p in PEERS] + [(SACSOCK_PLAIN, SACSOCK), (FLOOR, GO)]
    for (scenario, variant), group in by_key.items():
        for mine, peer in pairs:
            ours, other = group.get(mine), group.get(peer)
            if ours is None or other is None:
                continue
            _, a = headline(ours)
            _, b = headline(other)
            entry = {"scenario": scenario, "variant": variant, "server": mine, "peer": peer,
                     "throughput": a / b if a and b else None,
                     "p99": (ours.metrics.get("p99_us") / other.metrics["p99_us"])
                     if other.metrics.get("p99_us") and ours.metrics.get("p99_us") else None}
            pa, pb = ours.extra.get("per_server_cpu_s"), other.extra.get("per_server_cpu_s")
            entry["per_server_cpu_s"] = pa / pb if pa and pb else None
            out.append(entry)
    return out


def targets(rows: list[Row], k: int = 1000) -> list[dict]:
    """The open targets (issues 5 and 14), checked on this run (fan-out figures at K=k)."""
    def find(scenario: str, variant: str, server: str) -> Row | None:
        return next((r for r in rows if r.key == (scenario, variant) and r.server == server), None)

    out: list[dict] = []

    def check(name: str, value: float | None, op: str, bound: float, detail: str) -> None:
        if value is None:
            out.append({"target": name, "value": None, "met": None, "detail": "not measured"})
            return
        met = value >= bound if op == ">=" else value <= bound
        out.append({"target": name, "value": round(value, 3), "bound": f"{op} {bound}", "met": met,
                    "detail": detail})

    def versus(scenario: str, variant: str, mine: str, peer: str, op: str, bound: float,
               what: str = "throughput") -> None:
        a, b = find(scenario, variant, mine), find(scenario, variant, peer)
        if what == "p99":
            va = a.metrics.get("p99_us") if a else None
            vb = b.metrics.get("p99_us") if b else None
            shown = f"{fmt_us(va)} vs {fmt_us(vb)}"
        else:
            va = headline(a)[1] if a else None
            vb = headline(b)[1] if b else None
            shown = f"{fmt_rate(va or 0)} vs {fmt_rate(vb or 0)}"
        ratio = va / vb if va and vb else None
        check(f"{scenario} {variant} {what}: {mine} / {peer}", ratio, op, bound, shown)

    fan, fixed, echo = f"K={k} max", f"K={k} fixed rate", "50 clients"
    versus("fanout", fan, SACSOCK, BASELINE, ">=", 0.9)
    versus("fanout", fan, SACSOCK, SOCKETIO, ">=", 5.0)
    versus("fanout", fixed, SACSOCK, BASELINE, "<=", 1.5, "p99")
    versus("fanout", fan, SACSOCK_PLAIN, SACSOCK, ">=", 0.9)
    echo_variant = next((r.variant for r in rows if r.scenario == "echo"), echo)
    versus("echo", echo_variant, SACSOCK_PLAIN, SACSOCK, ">=", 0.9)
    for mine in OURS:
        versus("echo", echo_variant, mine, GO, ">=", 1.0)
        versus("echo", echo_variant, mine, GO, "<=", 1.0, "p99")
    alone, blocked = (next((r for r in rows if r.scenario == "blocking" and r.variant.endswith(v)), None)
                      for v in ("clients", "blocker"))
    extra_ms = (blocked.metrics["p99_us"] - alone.metrics["p99_us"]) / 1000 if alone and blocked else None
    check("echo p99 with a client calling a 0.2 s blocking handler, minus without it (ms)",
          extra_ms, "<=", 10,
          f"{fmt_us(blocked.metrics['p99_us'])} vs {fmt_us(alone.metrics['p99_us'])}, "
          f"{blocked.metrics.get('blocker_calls')} blocking calls" if alone and blocked else "")
    rooms_variant = next((r.variant for r in rows if r.scenario == "rooms"), "")
    versus("rooms", rooms_variant, SACSOCK, BASELINE, ">=", 1.0)
    bad = [(r.scenario, r.variant, r.server, r.metrics.get("missing", 0), r.metrics.get("out_of_order", 0),
            r.metrics.get("duplicates", 0))
           for r in rows if r.server.startswith(SACSOCK) and "missing" in r.metrics]
    worst = sum(b[3] + b[4] + b[5] for b in bad)
    check("sacsock_actors missing + out-of-order + duplicates (all fan-out, cross, rooms rows)",
          float(worst) if bad else None, "<=", 0,
          "; ".join(f"{b[0]} {b[1]} {b[2]}: missing {b[3]} ooo {b[4]} dup {b[5]}"
                    for b in bad if b[3] or b[4] or b[5]) or "none")
    ours = find("fanout", fan, SACSOCK)
    for variant in ("2 gateways", "2 nodes"):
        two = find("cross", f"K={k} {variant}", f"{SACSOCK}-{variant.replace(' ', '')}")
        # the 1-gateway server that took turns with it (older results: the fan-out row)
        one_row = find("cross", f"K={k} {variant}", f"{SACSOCK}-1gateway") or ours
        per = two.extra.get("per_server_cpu_s") if two else None
        one = one_row.extra.get("per_server_cpu_s") if one_row else None
        check(f"cross-gateway fan-out ({variant}) per server CPU s vs 1 gateway",
              per / one if per and one else None, ">=", 0.95,
              f"{fmt_rate(per or 0)} vs {fmt_rate(one or 0)} deliveries per server CPU second"
              + (" (1 gateway taking turns with it)" if one_row is not ours else ""))
    idle = next((r for r in rows if r.scenario == "idle" and r.server == SACSOCK), None)
    check("idle memory per connection, gateway process (KiB)",
          idle.extra["gateway_kib_per_conn"] if idle else None, "<=", 16.0,
          f"PSS delta of the gateway process; USS delta of all server processes "
          f"{idle.extra['total_kib_per_conn']:.1f} KiB" if idle else "")
    return out


def table(rows: list[Row], rat: list[dict]) -> str:
    rmap = {(r["scenario"], r["variant"], r["server"], r["peer"]): r for r in rat}
    peers: tuple[str, ...] = (BASELINE, GO, SOCKETIO)
    head = ("| scenario | variant | server | throughput | p50 | p99 | missing/dup/ooo | server CPU s "
            "| per server CPU s | x baseline | x Go | x socketio |")
    if any(r.server == FLOOR for r in rows):
        peers += (FLOOR,)
        head += " x floor |"
    lines = [head, "|" + "---|" * (9 + len(peers))]
    for r in rows:
        unit, value = headline(r)
        m = r.metrics
        if r.scenario == "idle":
            thr = f"{value:.1f} KiB/conn gateway, {r.extra['total_kib_per_conn']:.1f} all"
        else:
            thr = f"{fmt_rate(value or 0)} {unit}"
            if r.scenario == "rooms":
                thr += f" ({fmt_rate(m['deliveries_per_s'])} deliv/s)"
            if "rate_msgs_per_s" in r.extra:
                rate = r.extra["rate_msgs_per_s"]
                thr += (f" @ {rate:.0f} msg/s" if rate >= 10 else f" @ {rate:.1f} msg/s") + (
                    " (lowered)" if r.extra.get("rate_lowered_to_half_own_max") else "")
        errs = f"{m['missing']}/{m['duplicates']}/{m['out_of_order']}" if "missing" in m else "-"
        cpu = r.server_cpu.get("total")
        per = r.extra.get("per_server_cpu_s")
        cells = []
        for peer in peers:
            x = rmap.get((r.scenario, r.variant, r.server, peer))
            if x is None or x["throughput"] is None:
                cells.append("")
            else:
                cell = f"{x['throughput']:.2f}x"
                if x.get("p99"):
                    cell += f" (p99 {x['p99']:.2f}x)"
                cells.append(cell)
        lines.append(
            f"| {r.scenario} | {r.variant} | {r.server} | {thr} | {fmt_us(m.get('p50_us'))} "
            f"| {fmt_us(m.get('p99_us'))} | {errs} | {'' if cpu is None else f'{cpu:.2f}'} "
            f"| {fmt_rate(per) if per else ''} | {' | '.join(cells)} |")
    return "\n".join(lines)


def target_table(tg: list[dict]) -> str:
    lines = ["| target | measured | bound | met | detail |", "|---|---|---|---|---|"]
    for t in tg:
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value'] if t['value'] is not None else '-'} "
                     f"| {t.get('bound', '')} | {met} | {t['detail']} |")
    return "\n".join(lines)


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in SERVER_ORDER if any(r.server == s for r in rows)]
    cross = [r for r in rows if r.scenario == "cross"]
    keys = []
    for r in rows:
        if r.scenario != "idle" and r.key not in keys:
            keys.append(r.key)
    colors = {BASELINE: "#7f7f7f", GO: "#2ca02c", FLOOR: "#d62728", SACSOCK: "#1f77b4",
              SACSOCK_PLAIN: "#9ecae1", SOCKETIO: "#ff7f0e"}
    fig, axes = plt.subplots(3, 1, figsize=(13, 12), height_ratios=[3, 3, 1.6])
    width = 0.8 / max(1, len(servers))
    for ax, what in ((axes[0], "throughput"), (axes[1], "p99")):
        for i, s in enumerate(servers):
            xs, ys = [], []
            for j, key in enumerate(keys):
                r = next((r for r in rows if r.key == key and (r.server == s or (
                    s == SACSOCK and r.scenario == "cross" and not r.server.endswith("-1gateway")))),
                         None)
                if r is None or (r.scenario == "cross" and s != SACSOCK):
                    continue
                v = headline(r)[1] if what == "throughput" else (r.metrics.get("p99_us") or 0) / 1000
                if r.scenario == "rooms" and what == "throughput":
                    v = r.metrics["deliveries_per_s"]
                xs.append(j + (i - (len(servers) - 1) / 2) * width)
                ys.append(v or 0)
            ax.bar(xs, ys, width, label=s, color=colors.get(s))
            for x, y in zip(xs, ys, strict=True):
                label = fmt_rate(y) if what == "throughput" else f"{y:.1f}"
                ax.text(x, y, label, ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{a}\n{b}" for a, b in keys], fontsize=8)
        ax.set_yscale("log")
        top = ax.get_ylim()[1]
        ax.set_ylim(top=top * 6)  # room for the value labels
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("per second (log)\ndeliveries; echo: round trips")
    axes[0].set_title("Throughput: deliveries/s (fan-out, cross-gateway, many rooms), round trips/s (echo)")
    axes[0].legend()
    axes[1].set_ylabel("p99 latency, ms (log)")
    axes[1].set_title("p99 publish-to-deliver latency (echo: round trip)")
    idle = [r for r in rows if r.scenario == "idle"]
    ax = axes[2]
    for i, r in enumerate(idle):
        ax.barh(i, r.extra["gateway_kib_per_conn"], color=colors.get(r.server), label="gateway process")
        ax.barh(i, r.extra["total_kib_per_conn"], color=colors.get(r.server), alpha=0.35,
                label="all server processes")
        ax.text(r.extra["total_kib_per_conn"], i, f" {r.extra['gateway_kib_per_conn']:.1f} / "
                f"{r.extra['total_kib_per_conn']:.1f}", va="center", fontsize=8)
    ax.set_yticks(range(len(idle)))
    ax.set_yticklabels([r.server for r in idle], fontsize=8)
    ax.set_xlabel("idle memory per connection, KiB (gateway process: PSS delta, solid; "
                  "all server processes: USS delta, light)")
    del cross
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_readme(text: str) -> None:
    readme = BENCH / "README.md"
    if not readme.exists():
        return
    body = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(head + start + "\n" + text + "\n" + end + tail)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


