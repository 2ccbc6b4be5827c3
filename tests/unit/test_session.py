"""Session: the per-socket state a gateway keeps."""

from sacsock_actors.gateways.session import Session


def test_a_new_session_is_open_empty_and_not_held():
    s = Session("id", None, None)
    assert (s.rooms, s.pending, s.closed, s.over_since, s.held) == (set(), [], False, None, 0)
    assert "id" in repr(s)


def test_sessions_have_no_dict():
    s = Session("id", None, None)
    assert not hasattr(s, "__dict__"), "slots keep ~10,000 idle sockets small"
