"""Benchmark results: rows, ratios and targets, the markdown tables, py-spy summaries,
and the results section of bench/README.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from procs import BASELINE, BENCH, SACSOCK, SOCKETIO, log


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
    if row.scenario == "echo":
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


def summarize_profile(path: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output,
    over the event loop thread's samples only (a Ray worker's main thread waits in C++,
    which py-spy counts as busy)."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "run_forever" not in stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
        if frames:
            self_c[frames[-1]] = self_c.get(frames[-1], 0) + n
    total = total or 1
    lines = [f"{total} samples of the event loop thread (py-spy, not idle)", "", "self %  function"]
    for f, n in sorted(self_c.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {f}")
    lines += ["", "incl %  function"]
    for f, n in sorted(incl.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {f}")
    return "\n".join(lines) + "\n"


# ---- reporting ------------------------------------------------------------------------------


def ratios(rows: list[Row]) -> list[dict]:
    """sacsock_actors / each peer, per scenario and variant."""
    by_key: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        by_key.setdefault(r.key, {})[r.server] = r
    out = []
    for (scenario, variant), group in by_key.items():
        ours = group.get(SACSOCK)
        if ours is None:
            continue
        for peer in (BASELINE, SOCKETIO):
            other = group.get(peer)
            if other is None:
                continue
            _, a = headline(ours)
            _, b = headline(other)
            entry = {"scenario": scenario, "variant": variant, "peer": peer,
                     "throughput": a / b if a and b else None,
                     "p99": (ours.metrics.get("p99_us") / other.metrics["p99_us"])
                     if other.metrics.get("p99_us") and ours.metrics.get("p99_us") else None}
            pa, pb = ours.extra.get("per_server_cpu_s"), other.extra.get("per_server_cpu_s")
            entry["per_server_cpu_s"] = pa / pb if pa and pb else None
            out.append(entry)
    return out


def targets(rows: list[Row], k: int = 1000) -> list[dict]:
    """The issue's targets, checked on this run (fan-out figures at K=k)."""
    def find(scenario: str, variant: str, server: str) -> Row | None:
        return next((r for r in rows if r.key == (scenario, variant) and r.server == server), None)

    out = []

    def check(name: str, value: float | None, op: str, bound: float, detail: str) -> None:
        if value is None:
            out.append({"target": name, "value": None, "met": None, "detail": "not measured"})
            return
        met = value >= bound if op == ">=" else value <= bound
        out.append({"target": name, "value": round(value, 3), "bound": f"{op} {bound}", "met": met,
                    "detail": detail})

    ours, base, sio = (find("fanout", f"K={k} max", s) for s in (SACSOCK, BASELINE, SOCKETIO))
    tp = lambda r: r.metrics["deliveries_per_s"] if r else None  # noqa: E731
    check(f"fan-out K={k} deliveries/s vs aiohttp baseline", tp(ours) / tp(base) if ours and base else None,
          ">=", 0.9, f"{fmt_rate(tp(ours) or 0)} vs {fmt_rate(tp(base) or 0)}")
    check(f"fan-out K={k} deliveries/s vs python-socketio", tp(ours) / tp(sio) if ours and sio else None,
          ">=", 5.0, f"{fmt_rate(tp(ours) or 0)} vs {fmt_rate(tp(sio) or 0)}")
    of, bf = (find("fanout", f"K={k} fixed rate", x) for x in (SACSOCK, BASELINE))
    check(f"fan-out K={k} p99 at a fixed rate vs baseline",
          of.metrics["p99_us"] / bf.metrics["p99_us"] if of and bf and bf.metrics["p99_us"] else None,
          "<=", 1.5, f"{fmt_us(of.metrics['p99_us']) if of else '-'} vs "
          f"{fmt_us(bf.metrics['p99_us']) if bf else '-'}")
    bad = [(r.scenario, r.variant, r.metrics.get("missing", 0), r.metrics.get("out_of_order", 0),
            r.metrics.get("duplicates", 0))
           for r in rows if r.server.startswith(SACSOCK) and "missing" in r.metrics]
    worst = sum(b[2] + b[3] for b in bad)
    check("sacsock_actors missing + out-of-order (all fan-out, cross, rooms rows)",
          float(worst) if bad else None, "<=", 0,
          "; ".join(f"{b[0]} {b[1]}: missing {b[2]} ooo {b[3]} dup {b[4]}"
                    for b in bad if b[2] or b[3] or b[4]) or "none")
    one = ours.extra.get("per_server_cpu_s") if ours else None
    for variant in ("2 gateways", "2 nodes"):
        two = next((r for r in rows if r.scenario == "cross" and r.variant.endswith(variant)
                    and r.server.startswith(SACSOCK) and r.variant.startswith(f"K={k} ")), None)
        per = two.extra.get("per_server_cpu_s") if two else None
        check(f"cross-gateway fan-out ({variant}) per server CPU s vs 1 gateway",
              per / one if per and one else None, ">=", 0.6,
              f"{fmt_rate(per or 0)} vs {fmt_rate(one or 0)} deliveries per server CPU second")
    idle = next((r for r in rows if r.scenario == "idle" and r.server == SACSOCK), None)
    check("idle memory per connection, gateway process (KiB)",
          idle.extra["gateway_kib_per_conn"] if idle else None, "<=", 16.0,
          f"PSS delta of the gateway process; USS delta of all server processes "
          f"{idle.extra['total_kib_per_conn']:.1f} KiB" if idle else "")
    eo, eb = find("echo", "50 clients", SACSOCK), find("echo", "50 clients", BASELINE)
    check("echo round trips/s vs baseline",
          eo.metrics["round_trips_per_s"] / eb.metrics["round_trips_per_s"] if eo and eb else None, ">=", 0.8,
          f"{fmt_rate(eo.metrics['round_trips_per_s']) if eo else '-'} vs "
          f"{fmt_rate(eb.metrics['round_trips_per_s']) if eb else '-'}")
    return out


def table(rows: list[Row], rat: list[dict]) -> str:
    rmap = {(r["scenario"], r["variant"], r["peer"]): r for r in rat}
    head = ("| scenario | variant | server | throughput | p50 | p99 | missing/dup/ooo | server CPU s "
            "| per server CPU s | x baseline | x socketio |")
    lines = [head, "|" + "---|" * 11]
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
        for peer in (BASELINE, SOCKETIO):
            x = rmap.get((r.scenario, r.variant, peer)) if r.server == SACSOCK else None
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
            f"| {fmt_rate(per) if per else ''} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def target_table(tg: list[dict]) -> str:
    lines = ["| target | measured | bound | met | detail |", "|---|---|---|---|---|"]
    for t in tg:
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value'] if t['value'] is not None else '-'} "
                     f"| {t.get('bound', '')} | {met} | {t['detail']} |")
    return "\n".join(lines)


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
