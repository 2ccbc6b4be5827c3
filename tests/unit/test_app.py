import functools

from sacsock_actors.app import is_async


async def coro(socket, data):
    pass


def plain(socket, data):
    pass


class AsyncCallable:
    async def __call__(self, socket, data):
        pass


class Handler:
    async def handle_event(self, socket, data):
        pass


def test_is_async_detects_coroutines_methods_and_callables():
    assert is_async(coro)
    assert is_async(Handler().handle_event)
    assert is_async(AsyncCallable())
    assert not is_async(plain)
    assert not is_async(functools.partial(plain, None))
