import pytest

from sacsock_actors.gateways.wsframe import frame_header, ws_frame


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 70000])
def test_header_lengths(n):
    h = frame_header(n, binary=True)
    assert h[0] == 0x82
    if n < 126:
        assert h[1] == n and len(h) == 2
    elif n < 65536:
        assert h[1] == 126 and int.from_bytes(h[2:4], "big") == n
    else:
        assert h[1] == 127 and int.from_bytes(h[2:10], "big") == n


def test_text_frame_opcode():
    assert ws_frame(b"hi", binary=False) == b"\x81\x02hi"
