"""The benchmark chart (bench/results/bench.png), drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path

from procs import BASELINE, SACSOCK, SERVER_ORDER, SOCKETIO
from report import Row, fmt_rate, headline


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
    colors = {BASELINE: "#7f7f7f", SACSOCK: "#1f77b4", SOCKETIO: "#ff7f0e"}
    fig, axes = plt.subplots(3, 1, figsize=(13, 12), height_ratios=[3, 3, 1.6])
    width = 0.8 / max(1, len(servers))
    for ax, what in ((axes[0], "throughput"), (axes[1], "p99")):
        for i, s in enumerate(servers):
            xs, ys = [], []
            for j, key in enumerate(keys):
                r = next((r for r in rows if r.key == key and (r.server == s or (
                    s == SACSOCK and r.scenario == "cross"))), None)
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
