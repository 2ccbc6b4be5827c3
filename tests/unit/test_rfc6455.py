"""valid_utf8 agrees with Python's own decoder. (The mask rule: test_wsparse.)"""

from hypothesis import given
from hypothesis import strategies as st

from sacsock_actors.gateways.rfc6455 import valid_utf8


@given(st.text())
def test_valid_utf8_accepts_every_str(text):
    assert valid_utf8(text.encode("utf-8"))


@given(st.binary())
def test_valid_utf8_agrees_with_decode(data):
    try:
        data.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    assert valid_utf8(data) is expected
