"""Socket.join's limits (max_room_name, max_rooms_per_socket), checked before the hub."""

import pytest

from sacsock_actors.errors import LimitExceeded
from sacsock_actors.gateways.socket import _check_join_limits
from sacsock_actors.options import ServerOptions

OPTS = ServerOptions(max_room_name=8, max_rooms_per_socket=2)
ID_ROOM = "__socket_id:abc"


def test_room_name_at_and_over_the_limit():
    _check_join_limits(OPTS, {ID_ROOM}, "r" * 8)
    with pytest.raises(LimitExceeded, match="max_room_name=8"):
        _check_join_limits(OPTS, {ID_ROOM}, "r" * 9)


def test_rooms_per_socket_does_not_count_the_id_room_or_a_rejoin():
    rooms = {ID_ROOM, "a", "b"}
    _check_join_limits(OPTS, rooms, "a")  # already in it
    with pytest.raises(LimitExceeded, match="max_rooms_per_socket=2"):
        _check_join_limits(OPTS, rooms, "c")
    _check_join_limits(OPTS, {ID_ROOM, "a"}, "b")


def test_no_limits_when_turned_off():
    off = ServerOptions(max_room_name=None, max_rooms_per_socket=None)
    _check_join_limits(off, {ID_ROOM, *map(str, range(5000))}, "x" * 100_000)
