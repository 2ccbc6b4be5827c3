"""bench/routing_model.py counts what the real routing sends: check its counts on small
clusters against what the routing promises (no Ray; well under a second)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing_model import one_config, table  # noqa: E402


def test_counts_follow_the_holders_not_the_gateways():
    for gateways, size in ((4, 10), (12, 3), (30, 1000)):
        row = asyncio.run(one_config(gateways, size, 2))
        holders = row["holders"]
        assert holders == min(size, gateways - 2)
        assert row["member_roomcast"]["messages"] == holders - 1
        # the first outside cast: everyone, plus the Watch and its answer
        assert row["outside_first"]["messages"] == gateways - 1 + 2
        assert row["outside_first"]["to_shard"] == 1
        assert row["outside_steady"]["messages"] == holders
        assert row["outside_steady"]["bytes"] > 0
        # a join: Join, then Holders to every holder (the joiner too) and the one watcher
        assert row["join"]["messages"] == 1 + (holders + 1) + 1
        assert row["socketcast"]["messages"] == 1
        assert row["frames_out"] >= size


def test_the_table_has_a_row_per_config():
    rows = [asyncio.run(one_config(g, 5, 1)) for g in (2, 6)]
    text = table(rows)
    assert text.count("\n") == 3 and "| 6 | 5 | 4 |" in text
