"""logs.Throttle: one line per key per interval, and a count of what was held back."""

import logging

from sacsock_actors import logs
from sacsock_actors.logs import Throttle


def test_throttle_logs_once_per_interval_and_counts_the_rest(caplog, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    throttle = Throttle(logging.getLogger("t"), every=5.0)
    with caplog.at_level(logging.WARNING, logger="t"):
        for _ in range(4):
            throttle.log(logging.WARNING, "down", "redis down: %s", "refused")
        throttle.log(logging.WARNING, "other", "another key")
        now[0] += 5.0
        throttle.log(logging.WARNING, "down", "redis down: %s", "refused")
    assert [r.getMessage() for r in caplog.records] == [
        "redis down: refused", "another key", "redis down: refused (3 more like this not logged)"]
