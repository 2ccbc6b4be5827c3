"""How a gateway runs handlers (gateways/dispatch.py): inline, pooled, in order. No Ray."""

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from sacsock_actors.app import AppSpec, Blocking
from sacsock_actors.gateways.dispatch import MAX_BACKLOG, Dispatcher
from sacsock_actors.gateways.session import Session
from sacsock_actors.options import ServerOptions


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(4, "test-pool") as executor:
        yield executor


def make(pool, handlers, **options) -> tuple[Dispatcher, Counter]:
    stats: Counter = Counter()
    spec = AppSpec(handlers=handlers, options=ServerOptions(**options))
    return Dispatcher(spec, pool, stats), stats


async def run_all(d: Dispatcher, session: Session, calls) -> None:
    for fn, arg in calls:
        await d.call(session, fn, arg)
    await asyncio.wait_for(d.settled(session), 10)


async def test_plain_handlers_run_inline_on_the_loop(pool):
    seen = []

    def plain(x):
        seen.append((x, threading.current_thread() is threading.main_thread()))

    d, _ = make(pool, {"p": plain})
    assert d.inline_events == {"p"} and d.async_events == set()
    await d.call(Session("s", None, None), plain, 1)
    assert seen == [(1, True)]


async def test_blocking_handlers_run_in_the_pool_from_the_first_call(pool):
    seen = []
    blocking = Blocking(lambda x: seen.append(threading.current_thread().name))
    d, _ = make(pool, {"b": blocking})
    assert d.inline_events == set()
    session = Session("s", None, None)
    await run_all(d, session, [(blocking, 1)])
    assert seen[0].startswith("test-pool") and session.backlog is None


async def test_threshold_none_sends_every_plain_handler_to_the_pool(pool):
    seen = []

    def plain(x):
        seen.append(threading.current_thread().name)

    d, _ = make(pool, {"p": plain}, blocking_threshold=None)
    await run_all(d, Session("s", None, None), [(plain, 1)])
    assert seen[0].startswith("test-pool")


async def test_a_slow_plain_handler_moves_to_the_pool_once(pool, caplog):
    threads = []

    def slow(x):
        threads.append(threading.current_thread().name)
        time.sleep(x)

    d, stats = make(pool, {"slow": slow, "other": lambda x: None}, blocking_threshold=0.01)
    session = Session("s", None, None)
    await run_all(d, session, [(slow, 0.0), (slow, 0.03), (slow, 0.0), (slow, 0.03)])
    assert threads[0] == threads[1] == threading.current_thread().name  # inline until too slow
    assert threads[2].startswith("test-pool") and threads[3].startswith("test-pool")
    assert stats["handlers_moved_to_pool"] == 1
    assert d.inline_events == {"other"}
    assert sum("runs in the thread pool" in r.getMessage() for r in caplog.records) == 1


async def test_arrival_order_kept_across_pool_loop_and_async(pool):
    order = []
    blocking = Blocking(lambda x: (time.sleep(0.02), order.append(x)))

    def plain(x):
        order.append(x)

    async def coro(x):
        await asyncio.sleep(0)
        order.append(x)

    d, _ = make(pool, {"b": blocking, "p": plain, "a": coro})
    session = Session("s", None, None)
    kinds = [blocking, plain, coro]
    await run_all(d, session, [(kinds[i % 3], i) for i in range(30)])
    assert order == list(range(30))


async def test_other_sockets_are_not_held_up_by_a_pooled_call(pool):
    release = threading.Event()
    blocking = Blocking(lambda x: release.wait(10))
    seen = []
    d, _ = make(pool, {"b": blocking, "p": seen.append})
    one, two = Session("one", None, None), Session("two", None, None)
    await d.call(one, blocking, None)
    await d.call(one, seen.append, "one")  # queued behind the blocked call
    await d.call(two, seen.append, "two")  # another socket: runs at once
    assert seen == ["two"]
    release.set()
    await asyncio.wait_for(d.settled(one), 10)
    assert seen == ["two", "one"]


async def test_a_full_backlog_pauses_the_reader_until_it_drains(pool):
    release = threading.Event()
    blocking = Blocking(lambda x: release.wait(10))
    d, _ = make(pool, {"b": blocking})
    session = Session("s", None, None)
    await d.call(session, blocking, None)
    for _ in range(MAX_BACKLOG - 2):
        await d.call(session, len, ())
    reader = asyncio.ensure_future(d.call(session, len, ()))  # the backlog is full: waits
    await asyncio.sleep(0.05)
    assert not reader.done()
    release.set()
    await asyncio.wait_for(reader, 10)
    await asyncio.wait_for(d.settled(session), 10)
    assert session.backlog is None


async def test_handler_errors_are_counted_and_do_not_stop_the_queue(pool):
    def bad(x):
        raise RuntimeError("on purpose")

    seen = []
    pooled_bad = Blocking(bad)
    d, stats = make(pool, {"bad": bad, "bb": pooled_bad, "p": seen.append})
    session = Session("s", None, None)
    await run_all(d, session, [(pooled_bad, 1), (bad, 2), (seen.append, 3)])
    assert stats["handler_errors"] == 2 and seen == [3]
