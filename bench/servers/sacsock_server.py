"""Start the benchmark app (sacsock_app.py) on sacsock_actors and wait.

    python bench/servers/sacsock_server.py --port 8080 [--gateways 2] [--nodes 2] [--handlers plain]

``--gateways N``: N gateways share the port (SO_REUSEPORT) on a local Ray.
``--handlers plain``: the app with plain ``def`` handlers (sacsock_app_plain.py) instead
of async ones (sacsock_app.py).
``--gateway-transport stream|ray``: how casts go between gateways (ServerOptions).
``--nodes N``: a ``ray.cluster_utils.Cluster`` of N simulated nodes on this machine, one
gateway pinned to each node with ``cluster.Placement`` (ports PORT, PORT+1, ...).

Prints ``READY {json}`` (gateway pids and ports, the driver's pid) once every gateway
listens; shuts down cleanly (sockets, actors, Ray) on SIGTERM/SIGINT or stdin EOF.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import importlib  # noqa: E402

import ray  # noqa: E402

from sacsock_actors import cluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--handlers", choices=("async", "plain"), default="async")
    parser.add_argument("--gateway-transport", choices=("stream", "ray"), default=None,
                        help="casts between gateways (default: the package's default)")
    args = parser.parse_args()
    # The load generator's one publisher may send far more than the default 5,000 messages
    # per second per socket (a security default that would close it with 1008 mid-phase,
    # counted as missing deliveries). The limit stays on, so its per-message check is
    # still paid, as in a default deployment; it just never trips.
    opts: dict = {"max_messages_per_second": 1_000_000.0}
    if args.gateway_transport is not None:
        opts["gateway_transport"] = args.gateway_transport
    app = "sacsock_app_plain" if args.handlers == "plain" else "sacsock_app"
    server = importlib.import_module(app).server
    logging.basicConfig(level=logging.WARNING)
    sim = None
    if args.nodes > 1:
        from ray.cluster_utils import Cluster

        sim = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        for _ in range(args.nodes - 1):
            sim.add_node(num_cpus=1)
        sim.wait_for_nodes()
        ray.init(address=sim.address, namespace=cluster.NAMESPACE, logging_level=logging.WARNING)
        nodes = cluster.alive_nodes()
        placements = [cluster.Placement(nodes[i % len(nodes)], args.port + i) for i in range(args.nodes)]
        infos = server.start(port=args.port, placements=placements, **opts)
    else:
        infos = server.start(port=args.port, gateways=args.gateways, **opts)
    ports = sorted({i["port"] for i in infos})
    print("READY " + json.dumps({
        "pid": os.getpid(), "ports": ports,
        "pids": {"driver": os.getpid(), **{f"gateway:{i['gateway_id']}": i["pid"] for i in infos}},
        "nodes": sorted({i["node_id"] for i in infos}),
    }), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    server.shutdown()
    if sim is not None:
        ray.shutdown()
        sim.shutdown()


if __name__ == "__main__":
    main()
