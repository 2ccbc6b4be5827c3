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
