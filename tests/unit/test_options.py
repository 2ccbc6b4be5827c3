import pytest

from sacsock_actors.errors import ConfigError
from sacsock_actors.options import ServerOptions, allow_origins, options_from_kwargs, same_origin


@pytest.mark.parametrize(
    "origin,host,ok",
    [
        (None, "example.com", True),
        ("http://example.com", "example.com", True),
        ("https://EXAMPLE.com:8443", "example.com:8443", True),
        ("http://evil.com", "example.com", False),
        ("http://example.com:1", "example.com:2", False),
        ("null", "example.com", False),
        ("http://example.com", None, False),
    ],
)
def test_same_origin(origin, host, ok):
    assert same_origin(origin, host) is ok


def test_allow_origins_adds_to_same_origin():
    check = allow_origins(["https://app.example.com/"])
    assert check("https://app.example.com", "api.example.com")
    assert check("http://api.example.com", "api.example.com")
    assert not check("https://evil.com", "api.example.com")
    assert allow_origins(["*"])("https://evil.com", "x")


def test_defaults_are_safe():
    o = ServerOptions()
    assert o.max_message_size == 1 << 20
    assert not o.origin_allowed("http://evil.com", "example.com")
    assert o.origin_allowed(None, "example.com")


def test_custom_check_replaces_rule():
    o = ServerOptions(origin_check=lambda origin, host: origin == "x")
    assert o.origin_allowed("x", "y") and not o.origin_allowed(None, "y")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_message_size": 0}, {"room_shards": -1}, {"heartbeat": 0}, {"allowed_origins": "http://a"}],
)
def test_bad_options_raise(kwargs):
    with pytest.raises(ConfigError):
        ServerOptions(**kwargs)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ConfigError, match="max_message_size"):
        options_from_kwargs(ServerOptions(), {"max_msg": 3})


# ---- limits and connection defences (issue 12) ---------------------------------------------


def test_limit_defaults_are_on():
    o = ServerOptions()
    assert o.max_event_name == 256 and o.max_room_name == 256
    assert o.max_rooms_per_socket == 1000 and o.max_messages_per_second == 5000
    assert o.handshake_timeout == 10 and o.max_pending_upgrades == 256
    assert o.check_utf8 is True
    assert o.max_peer_backlog == 1_000_000


def test_limits_can_be_turned_off():
    o = ServerOptions(max_event_name=None, max_room_name=None, max_rooms_per_socket=None,
                      max_messages_per_second=None)
    assert o.max_messages_per_second is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_event_name": 0},
        {"max_room_name": -1},
        {"max_rooms_per_socket": 1.5},
        {"max_messages_per_second": 0},
        {"max_messages_per_second": "fast"},
        {"handshake_timeout": 0},
        {"max_pending_upgrades": 0},
        {"error_log_burst": 0},
        {"max_peer_backlog": 0},
        {"max_peer_backlog": None},
    ],
)
def test_bad_limits_raise_config_error_naming_the_option(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ServerOptions(**kwargs)


@pytest.mark.parametrize("origin", ["", "null", "file://", "http://"])
def test_origins_without_a_host_are_refused(origin):
    assert not same_origin(origin, "example.com")
    options = ServerOptions(allowed_origins=["https://app.example.com"])
    assert not options.origin_allowed(origin, "example.com")


def test_gateway_transport_is_checked():
    assert ServerOptions().gateway_transport == "stream"
    assert ServerOptions(gateway_transport="ray").gateway_transport == "ray"
    with pytest.raises(ConfigError, match="'stream', 'ray'"):
        ServerOptions(gateway_transport="tcp")
