"""metrics.render: Prometheus text of stats(); MetricsServer over a plain stats function."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from sacsock_actors.errors import ConfigError
from sacsock_actors.metrics import CONTENT_TYPE, MetricsServer, render

STATS = {
    "gw-0": {"sockets": 3, "rooms": 5, "messages_in": 10, "frames_out": 40, "handler_errors": 1,
             "slow_consumers_closed": 0, "ray_ops_out": 7},
    "gw-1": {"error": "ActorDiedError()"},
    "driver": {"casts_lost": 2},
    "bridge-0": {"published": 4, "received": 6, "name": "redis"},
}


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_render_gauges_counters_and_labels():
    text = render(STATS)
    got = samples(text)
    assert got['sacsock_sockets{gateway="gw-0"}'] == 3
    assert got['sacsock_rooms{gateway="gw-0"}'] == 5
    assert got['sacsock_messages_in_total{gateway="gw-0"}'] == 10
    assert got['sacsock_frames_out_total{gateway="gw-0"}'] == 40
    assert got['sacsock_handler_errors_total{gateway="gw-0"}'] == 1
    assert got['sacsock_up{gateway="gw-0"}'] == 1
    assert got['sacsock_up{gateway="gw-1"}'] == 0
    assert got["sacsock_driver_casts_lost_total"] == 2
    assert got['sacsock_bridge_published_total{bridge="bridge-0"}'] == 4
    assert not any("name" in k for k in got), "non-numbers are not samples"
    assert "# TYPE sacsock_sockets gauge" in text
    assert "# TYPE sacsock_messages_in_total counter" in text
    # one HELP/TYPE per family, before its samples
    assert text.count("# TYPE sacsock_up ") == 1
    assert text.index("# TYPE sacsock_up ") < text.index('sacsock_up{gateway="gw-0"}')


def test_label_values_are_escaped():
    text = render({'g"w\\x': {"sockets": 1}})
    assert 'sacsock_sockets{gateway="g\\"w\\\\x"} 1' in text


def test_metrics_server_serves_current_stats_and_503_on_failure():
    state = {"stats": {"gw-0": {"sockets": 1}}}

    def stats():
        if state["stats"] is None:
            raise RuntimeError("cluster gone")
        return state["stats"]

    server = MetricsServer(stats, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.headers["Content-Type"] == CONTENT_TYPE
            assert 'sacsock_sockets{gateway="gw-0"} 1' in r.read().decode()
        state["stats"] = {"gw-0": {"sockets": 2}}
        with urllib.request.urlopen(url, timeout=10) as r:
            assert 'sacsock_sockets{gateway="gw-0"} 2' in r.read().decode()
        state["stats"] = None
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=10)
        assert err.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10)
        assert err.value.code == 404
    finally:
        server.stop()


def test_a_taken_metrics_port_is_a_config_error():
    first = MetricsServer(dict, "127.0.0.1", 0).start()
    try:
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{first.port}"):
            MetricsServer(dict, "127.0.0.1", first.port)
    finally:
        first.stop()
