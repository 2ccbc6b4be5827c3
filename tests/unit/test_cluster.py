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
