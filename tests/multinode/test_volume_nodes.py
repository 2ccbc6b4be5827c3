"""Volume across two Ray nodes (ray.cluster_utils.Cluster): one gateway pinned on each
node, a publisher on each, one room spread over both; every member gets every cast of each
publisher exactly once and in order. CI makes SACSOCK_VOLUME_DELIVERIES (default 100,000)
deliveries; 1,000,000 for the issue's size (last result: bench/results/volume_nodes.txt).

Runs in its own pytest process (its own Ray cluster), apart from the shared session.
"""

from __future__ import annotations

import os

import ray
from flood_app import build
from ray.cluster_utils import Cluster
from sacclient import free_port
from test_faults_load import ROOM, Member
from test_volume import flood_and_check
from waits import holders_known

from sacsock_actors.cluster import Placement

DELIVERIES = int(os.environ.get("SACSOCK_VOLUME_DELIVERIES", "100000"))
MEMBERS = 50
RATE = 30000.0  # deliveries per second the test process reads comfortably


async def test_no_loss_duplicate_or_disorder_across_nodes():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="sacsock")
    server = None
    clients: list[Member] = []
    try:
        head = ray.get_runtime_context().get_node_id()
        other = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != head)
        ports = [free_port(), free_port()]
        server = build()
        infos = server.start(placements=[Placement(head, ports[0]), Placement(other, ports[1])])
        gids = [i["gateway_id"] for i in infos]
        urls = [f"http://127.0.0.1:{p}/socket" for p in ports]
        members = []
        for i in range(MEMBERS):  # half on each node
            m = Member(urls[i % 2])
            clients.append(m)
            await m.connect()
            await m.join(ROOM)
            members.append(m)
        await holders_known(server, ROOM, {gids[0]: {gids[1]}, gids[1]: {gids[0]}})
        pubs = {"A": Member(urls[0]), "B": Member(urls[1])}  # not members: every delivery crosses
        for p in pubs.values():
            clients.append(p)
            await p.connect()
        assert pubs["A"].pid != pubs["B"].pid

        per_publisher = DELIVERIES // (2 * MEMBERS)
        casts_per_s = RATE / MEMBERS / 2
        total = await flood_and_check(pubs, members, per_publisher, casts_per_s)
        stats = server.stats()
        assert all(stats[g].get("casts_lost", 0) == 0 for g in gids), stats
        print(f"\nvolume: {total} deliveries over 2 nodes (a gateway on each), 0 lost, "
              "0 duplicated, 0 out of order")
    finally:
        for m in clients:
            await m.close()
        if server is not None:
            server.shutdown()
        ray.shutdown()
        c.shutdown()
