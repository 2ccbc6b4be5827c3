from sacsock_actors.rooms.table import RoomTable, ShardTable, shard_for


def test_room_exists_while_it_has_members():
    t: RoomTable[str] = RoomTable()
    assert t.add("r", "a") is True
    assert t.add("r", "b") is False
    assert t.add("r", "b") is False
    assert t.members("r") == {"a", "b"}
    assert t.discard("r", "a") is False
    assert "r" in t
    assert t.discard("r", "b") is True
    assert "r" not in t and len(t) == 0
    assert t.members("r") == frozenset()


def test_leaving_a_room_one_is_not_in_does_nothing():
    t: RoomTable[str] = RoomTable()
    assert t.discard("nope", "a") is False
    t.add("r", "a")
    assert t.discard("r", "z") is False
    assert t.members("r") == {"a"}


def test_shard_for_is_stable_and_spread():
    assert shard_for("lobby", 4) == shard_for("lobby", 4)
    counts = [0] * 4
    for i in range(4000):
        counts[shard_for(f"room-{i}", 4)] += 1
    assert min(counts) > 800
    assert shard_for("anything", 1) == 0


def test_shard_table_add_remove_report_changes():
    s = ShardTable()
    assert s.add("r", "g1") is True
    assert s.add("r", "g1") is False
    assert s.add("r", "g2") is True
    assert s.gateways("r") == {"g1", "g2"}
    assert s.remove("r", "g1") is True
    assert s.remove("r", "g1") is False
    assert s.gateways("r") == {"g2"}
    assert s.rooms_of("g2") == {"r"}


def test_shard_table_reset_gateway_is_a_resync():
    s = ShardTable()
    s.add("a", "g1")
    s.add("b", "g1")
    s.add("b", "g2")
    changed = s.reset_gateway("g1", ["b", "c"])
    assert changed == {"a", "c"}
    assert s.gateways("a") == frozenset()
    assert s.gateways("b") == {"g1", "g2"}
    assert s.gateways("c") == {"g1"}
    assert s.drop_gateway("g1") == {"b", "c"}
    assert s.gateways("b") == {"g2"} and len(s) == 1


def test_shard_table_watchers_are_kept_apart_from_holders():
    s = ShardTable()
    s.add("r", "g1")
    s.watch("r", "w1")
    s.watch("r", "w2")
    s.watch("q", "w1")
    assert s.gateways("r") == {"g1"} and s.watchers("r") == {"w1", "w2"}
    assert s.watch_count() == 3
    s.unwatch("r", "w2")
    s.unwatch("r", "w2")
    assert s.watchers("r") == {"w1"}
    s.drop_watches("w1")
    assert s.watchers("r") == frozenset() and s.watchers("q") == frozenset()
    assert s.watch_count() == 0 and s.gateways("r") == {"g1"}
