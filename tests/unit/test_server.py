"""SocketServer registration and misuse, without Ray (serving is in tests/integration)."""

import pytest

from sacsock_actors import ConfigError, NotServingError, SocketServer


def test_on_direct_and_decorator_forms():
    s = SocketServer()

    def a(socket, data):
        pass

    assert s.on("a", a) is a

    @s.on("b")
    async def b(socket, data):
        pass

    assert s._spec.handlers == {"a": a, "b": b}


def test_on_event_object():
    class Chat:
        def event_name(self):
            return "chat"

        def handle_event(self, socket, data):
            pass

    s = SocketServer()
    obj = Chat()
    assert s.on_event(obj) is obj
    assert s._spec.handlers["chat"] == obj.handle_event
    with pytest.raises(ConfigError, match="event_name"):
        s.on_event(object())


def test_connect_disconnect_decorators():
    s = SocketServer()

    @s.on_connect
    def hi(socket):
        pass

    @s.on_disconnect
    async def bye(socket):
        pass

    assert s._spec.on_connect is hi and s._spec.on_disconnect is bye


@pytest.mark.parametrize("bad", ["", "a\x02b", None, 3])
def test_bad_event_registration_raises(bad):
    with pytest.raises(ConfigError):
        SocketServer().on(bad, lambda s, d: None)


def test_non_callable_handler_raises():
    with pytest.raises(ConfigError, match="callable"):
        SocketServer().on("x", "not a function")


def test_options_and_unknown_options():
    assert SocketServer(max_message_size=10).options.max_message_size == 10
    with pytest.raises(ConfigError, match="unknown option"):
        SocketServer(max_msg_size=10)


def test_casts_before_serving_raise_with_advice():
    s = SocketServer()
    with pytest.raises(NotServingError, match="start"):
        s.broadcast("e", "x")
    with pytest.raises(NotServingError):
        s.roomcast("r", "e", "x")


def test_bad_cast_data_raises_before_needing_a_server():
    from sacsock_actors import EncodeError

    with pytest.raises(EncodeError):
        SocketServer().broadcast("e", object())


def test_multihome_backend_must_be_a_bridge():
    with pytest.raises(ConfigError, match="Bridge"):
        SocketServer().set_multihome_backend(object())


def test_public_api_is_pinned():
    import sacsock_actors

    assert set(sacsock_actors.__all__) >= {"SocketServer", "Socket", "SacSockError"}
    for name in sacsock_actors.__all__:
        assert hasattr(sacsock_actors, name)


def test_blocking_registration_wraps_plain_handlers_and_refuses_async_ones():
    from sacsock_actors.app import Blocking

    s = SocketServer()

    @s.on("io", blocking=True)
    def io(socket, data):
        return data

    @s.on_connect(blocking=True)
    def hello(socket):
        pass

    assert isinstance(s._spec.handlers["io"], Blocking) and s._spec.handlers["io"](None, b"x") == b"x"
    assert isinstance(s._spec.on_connect, Blocking)

    async def coro(socket, data):
        pass

    with pytest.raises(ConfigError, match="blocking=True is for plain def handlers"):
        s.on("c", coro, blocking=True)
    with pytest.raises(ConfigError, match="blocking_threshold"):
        SocketServer(blocking_threshold=0)
