"""LogLimiter and TokenBucket on a fake clock."""

import pytest

from sacsock_actors.limits import LogLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_log_limiter_lets_a_burst_through_then_counts():
    clock = Clock()
    lim = LogLimiter(burst=3, window=60, clock=clock)
    assert [lim.allow("h") for _ in range(3)] == [0, 0, 0]
    assert [lim.allow("h") for _ in range(10)] == [None] * 10
    assert lim.suppressed_total == 10
    assert lim.allow("other") == 0  # per key
    clock.now += 60
    assert lim.allow("h") == 10  # the first line of a new window says how many were dropped
    assert lim.allow("h") == 0


def test_log_limiter_caps_its_keys():
    lim = LogLimiter(burst=1, window=60, max_keys=2, clock=Clock())
    assert lim.allow("a") == 0 and lim.allow("b") == 0
    assert lim.allow("c") == 0  # shares the "<other>" slot...
    assert lim.allow("d") is None  # ...with every later key
    assert len(lim._state) == 3


def test_log_limiter_rejects_nonsense():
    with pytest.raises(ValueError):
        LogLimiter(burst=0)


def test_token_bucket_bursts_then_refills_at_rate():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert all(bucket.take() for _ in range(5))
    assert not bucket.take()
    clock.now += 0.15  # one token and a half
    assert bucket.take() and not bucket.take()
    clock.now += 100  # idle: refills to the burst, no more
    assert sum(bucket.take() for _ in range(20)) == 5


def test_token_bucket_sustained_rate():
    clock = Clock()
    bucket = TokenBucket(rate=100, burst=100, clock=clock)
    taken = 0
    for _ in range(10_000):  # 1000 attempts per second for 10 s
        clock.now += 0.001
        taken += bucket.take()
    assert 1000 <= taken <= 1100  # rate * 10 s, plus the initial burst
