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
