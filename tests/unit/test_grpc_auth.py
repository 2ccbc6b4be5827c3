"""HS256 tokens of the gRPC bridge (upstream's ssgrpc/token rules), with PyJWT. No network."""

import base64
import hashlib
import hmac
import json

import jwt
import pytest

from sacsock_actors.bridges.grpc_auth import LIFETIME, RENEW_BEFORE, TokenSource, TokenVerifier
from sacsock_actors.bridges.grpc_codec import AuthError

KEY = b"0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws(header: dict, claims, key: bytes = KEY, alg: str = "sha256") -> str:
    """A compact JWS made by hand (independent of PyJWT)."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(key, head.encode(), getattr(hashlib, alg)).digest() if alg else b""
    return head + "." + b64(sig)


def test_issued_token_is_upstreams_shape_and_verifies():
    clock = Clock()
    header = TokenSource(KEY, clock=clock).header()
    assert header.startswith("Bearer ")
    token = header.split(" ", 1)[1]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"iam": "ssgrpcClient", "exp": int(clock.now) + LIFETIME}
    assert TokenVerifier(KEY, clock=clock).verify([header]) == claims


def test_token_is_reused_then_renewed_before_expiry():
    clock = Clock()
    source = TokenSource(KEY, clock=clock)
    first = source.header()
    clock.now += LIFETIME - RENEW_BEFORE - 1
    assert source.header() == first and source.issued == 1
    clock.now += 2
    second = source.header()
    assert second != first and source.issued == 2
    TokenVerifier(KEY, clock=clock).verify([second])


def test_a_hand_made_upstream_token_verifies():
    clock = Clock()
    token = jws({"alg": "HS256", "typ": "JWT"}, {"iam": "ssgrpcClient", "exp": int(clock.now) + 60})
    assert TokenVerifier(KEY, clock=clock).verify(["Bearer " + token])["iam"] == "ssgrpcClient"


def reason_of(values, clock=None) -> str:
    with pytest.raises(AuthError) as err:
        TokenVerifier(KEY, clock=clock or Clock()).verify(values)
    for value in values:  # no token, nor a piece of it, in the message
        for piece in value.split(" ")[-1].split("."):
            assert len(piece) < 8 or piece not in str(err.value)
    return err.value.reason


NOW = int(Clock().now)
GOOD = {"iam": "ssgrpcClient", "exp": NOW + 60}


@pytest.mark.parametrize("values, reason", [
    ([], "no_header"),
    (["Bearer"], "bad_bearer"),
    (["Bearer not-a-jws"], "bad_token"),
    (["Bearer " + jws({"alg": "HS256"}, GOOD, key=b"another key of 32 bytes.........")], "bad_signature"),
    (["Bearer " + jws({"alg": "HS256"}, GOOD)[:-4] + "AAAA"], "bad_signature"),
    (["Bearer " + jws({"alg": "none"}, GOOD, alg="")], "bad_algorithm"),
    (["Bearer " + jws({"alg": "HS512"}, GOOD, alg="sha512")], "bad_algorithm"),
    (["Bearer " + jws({"alg": "HS256"}, {"iam": "", "exp": NOW + 60})], "no_iam"),
    (["Bearer " + jws({"alg": "HS256"}, {"exp": NOW + 60})], "no_iam"),
    (["Bearer " + jws({"alg": "HS256"}, {"iam": "x", "exp": 0})], "expired"),
    (["Bearer " + jws({"alg": "HS256"}, {"iam": "x", "exp": NOW - 1})], "expired"),
    (["Bearer " + jws({"alg": "HS256"}, {"iam": "x"})], "expired"),
    (["Bearer " + jws({"alg": "HS256"}, ["iam", "x"])], "bad_token"),
])
def test_verifier_refusals(values, reason):
    assert reason_of(values) == reason


def test_a_cached_token_is_still_refused_once_expired():
    clock = Clock()
    verifier = TokenVerifier(KEY, clock=clock)
    header = "Bearer " + jws({"alg": "HS256"}, {"iam": "x", "exp": int(clock.now) + 10})
    verifier.verify([header])
    clock.now += 11
    with pytest.raises(AuthError) as err:
        verifier.verify([header])
    assert err.value.reason == "expired"


def test_cache_is_bounded():
    clock = Clock()
    verifier = TokenVerifier(KEY, clock=clock, cache_size=4)
    for i in range(10):
        verifier.verify(["Bearer " + jws({"alg": "HS256"}, {"iam": f"u{i}", "exp": int(clock.now) + 60})])
    assert len(verifier._cache) <= 4


def test_empty_keys_are_refused():
    with pytest.raises(ValueError, match="shared key"):
        TokenSource(b"")
    with pytest.raises(ValueError, match="shared key"):
        TokenVerifier(b"")


def test_repr_never_shows_the_token_or_key():
    source = TokenSource(KEY)
    token = source.header().split()[1]
    assert token not in repr(source) and KEY.decode() not in repr(source)
