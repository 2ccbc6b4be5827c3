"""The chat demo's Directory and input checks (plain Python, no Ray)."""

from sacsock_actors.demo import STATIC_DIR
from sacsock_actors.demo.app import DEFAULT_ROOMS, Directory, clean_room


def test_join_leave_and_versions():
    d = Directory()
    a = d.join("A", "lobby")
    assert a["members"] == [{"id": "A", "name": "guest-A"}]
    d.hello("B", "Grace")
    b = d.join("B", "lobby")
    assert [m["name"] for m in b["members"]] == ["guest-A", "Grace"]
    assert b["version"] > a["version"]
    left = d.leave("A", "lobby")
    assert [m["id"] for m in left["members"]] == ["B"]
    assert d.leave("A", "lobby") is None  # not a member: nothing changes


def test_room_list_keeps_defaults_and_drops_empty_rooms():
    d = Directory()
    assert [r["name"] for r in d.room_list()] == list(DEFAULT_ROOMS)
    d.join("A", "zeta")
    d.join("B", "alpha")
    d.join("B", "lobby")
    listed = {r["name"]: r["count"] for r in d.room_list()}
    assert listed == {**dict.fromkeys(DEFAULT_ROOMS, 0), "lobby": 1, "alpha": 1, "zeta": 1}
    d.leave("A", "zeta")
    assert "zeta" not in [r["name"] for r in d.room_list()]


def test_hello_renames_in_rooms_and_drop_forgets():
    d = Directory()
    d.join("A", "lobby")
    d.join("A", "help")
    changed = d.hello("A", "Ada")
    assert sorted(c["room"] for c in changed) == ["help", "lobby"]
    assert all(c["members"] == [{"id": "A", "name": "Ada"}] for c in changed)
    gone = d.drop("A")
    assert sorted(c["room"] for c in gone) == ["help", "lobby"]
    assert all(c["members"] == [] for c in gone)
    assert d.name_of("A") == "guest-A"


def test_reserved_and_bad_room_names_are_refused():
    assert clean_room(b"  my   room ") == "my room"
    assert clean_room(b"__socket_id:AAAA") is None
    assert clean_room(b"") is None
    assert clean_room("x" * 41) is None


def test_the_page_and_every_asset_it_links_ship_in_the_package():
    import re

    page = (STATIC_DIR / "index.html").read_text()
    linked = set(re.findall(r'(?:src|href)="([^"/:][^":]*)"', page))
    assert linked == {"style.css", "chat.js"}
    for name in linked:
        assert (STATIC_DIR / name).stat().st_size > 0, name
    assert '"/sacsock.js"' in page  # the client comes from the server, not the demo folder
