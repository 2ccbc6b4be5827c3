"""The cluster runtime's checks and routing logic, without starting Ray."""

import pytest

from sacsock_actors import ConfigError, SocketServer
from sacsock_actors.cluster import Placement, check_layout


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gateways_per_node": 0},
        {"gateways_per_node": "2"},
        {"placements": []},
        {"placements": [("node", 8080)]},
    ],
)
def test_a_bad_layout_is_refused_before_ray_starts(kwargs):
    import ray

    with pytest.raises(ConfigError):
        SocketServer().start(port=1, **kwargs)
    assert not ray.is_initialized(), "a refused layout must not leave a Ray running"


def test_check_layout_accepts_the_three_forms():
    check_layout(2, None, None)
    check_layout(1, 3, None)
    check_layout(1, None, [Placement(None, 8080)])
    with pytest.raises(ConfigError, match="gateways must be"):
        check_layout(0, None, None)


def _runtime(monkeypatch, gateways=("gw-0", "gw-1"), shards=("shard-0", "shard-1")):
    """A ClusterRuntime's supervisor state without Ray: handles are strings, rayio a fake."""
    from fake_rt import FakeDriverRayio

    from sacsock_actors import cluster

    fake = FakeDriverRayio()
    monkeypatch.setattr(cluster, "rayio", fake)
    rt = object.__new__(cluster.ClusterRuntime)
    rt.gateways = {g: f"handle:{g}" for g in gateways}
    rt.shards = list(shards)
    rt.bridges = []
    rt.purged = set()
    return rt, fake


def test_an_unschedulable_gateway_is_purged_at_once_from_shards_and_peers(monkeypatch):
    rt, fake = _runtime(monkeypatch)
    fake.outcomes["handle:gw-1"] = fake.ActorUnschedulableError("pinned to a dead node")
    died: set[str] = set()
    rt._supervise_round(died)
    assert rt.purged == {"gw-1"}, "one round: it cannot come back"
    assert [(h, a) for h, m, a in fake.calls if m == "drop_gateway"] == [("shard-0", ("gw-1",)),
                                                                         ("shard-1", ("gw-1",))]
    assert [(h, a) for h, m, a in fake.calls if m == "drop_peer"] == [("handle:gw-0", ("gw-1",))]
    fake.calls.clear()
    rt._supervise_round(died)
    assert [h for h, m, _ in fake.calls if m == "start"] == ["handle:gw-0"], "no more restarts of it"
    assert rt.purged == {"gw-1"} and not [c for c in fake.calls if c[1] in ("drop_gateway", "drop_peer")]


def test_a_died_gateway_is_purged_after_two_failed_rounds_and_a_restarting_one_never(monkeypatch):
    rt, fake = _runtime(monkeypatch, gateways=("gw-0", "gw-1", "gw-2"))
    fake.outcomes["handle:gw-1"] = fake.ActorDiedError("died")
    fake.outcomes["handle:gw-2"] = RuntimeError("restarting")
    died: set[str] = set()
    rt._supervise_round(died)
    assert rt.purged == set() and died == {"gw-1"}, "a call in flight when it died fails too"
    rt._supervise_round(died)
    assert rt.purged == {"gw-1"}
    for _ in range(3):
        rt._supervise_round(died)
    assert rt.purged == {"gw-1"}, "a restarting gateway is waited for"
    del fake.outcomes["handle:gw-2"]
    rt._supervise_round(died)
    assert rt.purged == {"gw-1"}


def test_shard_placement_is_checked_and_spread_goes_round_robin_over_sorted_nodes(monkeypatch):
    from sacsock_actors import cluster
    from sacsock_actors.options import ServerOptions

    with pytest.raises(ConfigError, match="shard_placement must be one of"):
        ServerOptions(shard_placement="everywhere")
    rt, fake = _runtime(monkeypatch)
    rt.started_ray = False
    monkeypatch.setattr(cluster, "alive_nodes", lambda: ["n2", "n1"])
    fake.supports_preferred_nodes = lambda: True
    assert rt._shard_nodes(3, "spread") == ["n1", "n2", "n1"]
    assert rt._shard_nodes(2, "auto") == [None, None]
    fake.supports_preferred_nodes = lambda: False
    with pytest.raises(ConfigError, match="upgrade Ray or use shard_placement='auto'"):
        rt._shard_nodes(2, "spread")
