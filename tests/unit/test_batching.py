import asyncio

from sacsock_actors.batching import Outbox


def test_items_put_in_one_tick_go_in_one_call_and_in_order():
    calls = []

    async def send(batch):
        calls.append(list(batch))
        await asyncio.sleep(0.01)
        return len(batch)

    async def run():
        results = []
        out = Outbox(send, on_result=results.append)
        for i in range(5):
            out.put(i)
        await asyncio.sleep(0)  # the first call starts; these queue behind it
        for i in range(5, 9):
            out.put(i)
        await out.flush()
        return results

    results = asyncio.run(run())
    assert calls == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    assert results == [5, 4]


def test_a_failed_call_reports_its_batch_and_the_next_still_goes():
    seen = []
    errors = []

    async def send(batch):
        seen.append(batch)
        if batch == ["bad"]:
            raise RuntimeError("peer died")

    async def run():
        out = Outbox(send, on_error=lambda b, e: errors.append((b, str(e))))
        out.put("bad")
        await out.flush()
        out.put("good")
        await out.flush()
        return out

    out = asyncio.run(run())
    assert errors == [(["bad"], "peer died")]
    assert seen[-1] == ["good"]
    assert out.calls == 2 and out.items_sent == 2


def test_max_batch_splits():
    sizes = []

    async def send(batch):
        sizes.append(len(batch))

    async def run():
        out = Outbox(send, max_batch=3)
        for i in range(7):
            out.put(i)
        await out.flush()

    asyncio.run(run())
    assert sizes == [3, 3, 1]


def test_a_hung_destination_holds_at_most_max_queued_and_resumes_when_it_answers():
    calls = []
    drops = []
    answer = None

    async def send(batch):
        calls.append(list(batch))
        await answer  # the destination hangs until the test answers

    async def run():
        nonlocal answer
        answer = asyncio.get_running_loop().create_future()
        out = Outbox(send, max_queued=4, on_drop=lambda item, first: drops.append((item, first)))
        out.put(0)
        await asyncio.sleep(0)  # 0 is in flight, the destination does not answer
        for i in range(1, 10):
            out.put(i)
        assert out.queued == 4 and out.dropped == 5
        done = asyncio.ensure_future(out.flush())  # waits for what was put, not what was dropped
        answer.set_result(None)
        await asyncio.wait_for(done, 5)
        out.put(10)  # the queue emptied: accepted again, and its drops would log again
        await out.flush()
        return out

    out = asyncio.run(run())
    assert calls == [[0], [1, 2, 3, 4], [10]]
    assert drops == [(5, True), (6, False), (7, False), (8, False), (9, False)]
    assert out.items_sent == 6


def test_drops_log_once_per_episode_until_the_queue_is_half_empty():
    drops = []

    async def run():
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future] = []
        hang = True

        async def send(batch):  # each call waits until the test answers it
            if hang:
                pending.append(loop.create_future())
                await pending[-1]

        out = Outbox(send, max_queued=4, max_batch=1, on_drop=lambda item, first: drops.append((item, first)))

        async def answer():  # the call in flight returns, the next takes one queued item
            before = out.queued
            pending.pop(0).set_result(None)
            for _ in range(20):
                await asyncio.sleep(0)
                if out.queued < before:
                    return
            raise AssertionError("the next call did not start")

        out.put("in flight")
        await asyncio.sleep(0)
        for i in range(6):  # 0-3 queued, 4 and 5 dropped: one episode
            out.put(i)
        await answer()  # 3 queued: not half empty, a drop now is the same episode
        out.put(6)
        out.put(7)
        await answer()
        await answer()  # 2 queued: half empty, the episode is over
        out.put(8)
        out.put(9)
        out.put(10)
        hang = False
        for fut in pending:
            fut.set_result(None)
        await asyncio.wait_for(out.flush(), 5)
        return out

    out = asyncio.run(run())
    assert drops == [(4, True), (5, False), (7, False), (10, True)]
    assert out.dropped == 4 and out.items_sent == 8


def test_without_max_queued_nothing_is_dropped():
    async def run():
        gate = asyncio.get_running_loop().create_future()

        async def send(batch):
            await gate

        out = Outbox(send)
        out.put(0)
        await asyncio.sleep(0)
        for i in range(100_000):
            out.put(i)
        assert out.queued == 100_000 and out.dropped == 0
        gate.set_result(None)
        await out.flush()

    asyncio.run(run())
