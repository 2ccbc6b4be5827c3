"""The strict JSON text check the bridge codecs share (bridges/jsoncheck.py)."""

import subprocess
import sys

import pytest

from sacsock_actors.bridges import jsoncheck


@pytest.mark.parametrize("text, value", [
    ('{"a":[1,2.5,"é"]}', {"a": [1, 2.5, "é"]}),
    (b'"\xc3\xa9"', "é"),
    (bytearray(b"null"), None),
    ("[" * 3 + "]" * 3, [[[]]]),
])
def test_loads_reads_json(text, value):
    assert jsoncheck.loads(text) == value


@pytest.mark.parametrize("text, why", [
    ("[1]".encode("utf-16"), "utf-8"),  # json.loads would guess UTF-16 from the bytes
    ("1".encode("utf-32-le"), "Extra data"),  # b"1\0\0\0" is UTF-8, but not JSON
    (b'"\xff"', "utf-8"),
    ("NaN", "NaN is not JSON"),
    ("[-Infinity]", "-Infinity is not JSON"),
    ("[" * 100_000, "nested too deeply"),  # json.loads raises RecursionError
    ('{"a":' * 100_000, "nested too deeply"),
    ("{nope", "Expecting"),
    ("", "Expecting value"),
])
def test_loads_refuses_with_a_value_error(text, why):
    with pytest.raises(ValueError, match=why):
        jsoncheck.loads(text)


def test_loads_survives_after_a_deep_refusal():
    with pytest.raises(ValueError):
        jsoncheck.loads("[" * 100_000)
    assert jsoncheck.loads("[[1]]") == [[1]]


def test_is_pure():
    code = ("import sys, sacsock_actors.bridges.jsoncheck; "
            "print(sorted(m for m in ('ray', 'aiohttp', 'redis', 'pymongo', 'grpc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
