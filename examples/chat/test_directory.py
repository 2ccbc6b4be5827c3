"""The chat example's Directory (plain Python, no Ray). Run: pytest examples/chat"""

import importlib.util
from pathlib import Path

# Loaded under its own name: other examples have an app.py too.
_spec = importlib.util.spec_from_file_location("chat_example_app", Path(__file__).with_name("app.py"))
chat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chat)
DEFAULT_ROOMS, Directory, clean_room = chat.DEFAULT_ROOMS, chat.Directory, chat.clean_room


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
