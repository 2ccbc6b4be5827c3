"""HS256 tokens of the gRPC bridge, compatible with upstream's ``ssgrpc/token`` (PyJWT).

- :class:`TokenSource` issues ``{"iam": "ssgrpcClient", "exp": now + 1 h}`` signed with the
  shared key and renews it when less than 5 minutes remain (as upstream's client does).
- :class:`TokenVerifier` checks a server's incoming ``authorization`` values: only HS256
  (never ``none`` or another algorithm), the signature with the shared key, then the claim
  rules of :func:`grpc_codec.check_claims`. Verified tokens are cached (bounded) so a peer's
  stream of RPCs costs one HMAC per token, not per RPC; expiry is checked on every RPC.

Errors are :class:`grpc_codec.AuthError` with a reason; no message ever holds a token.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import jwt

from .grpc_codec import CLIENT_IAM, AuthError, bearer_token, check_claims

ALGORITHM = "HS256"
LIFETIME = 3600  # seconds a token is issued for
RENEW_BEFORE = 300  # renew when fewer seconds than this remain
#: below this many bytes PyJWT warns (RFC 7518 3.2); we warn once at configuration instead
RECOMMENDED_KEY_BYTES = 32


def _sign(claims: dict, key: bytes) -> str:
    with warnings.catch_warnings():  # a short key is warned about once, where it is configured
        warnings.simplefilter("ignore")
        return jwt.encode(claims, key, algorithm=ALGORITHM)


class TokenSource:
    """The client side: ``header()`` is the ``authorization`` value for the next RPC."""

    def __init__(self, key: bytes, *, iam: str = CLIENT_IAM, lifetime: int = LIFETIME,
                 clock: Callable[[], float] = time.time) -> None:
        if not key:
            raise ValueError("the shared key must not be empty")
        if lifetime <= RENEW_BEFORE:
            raise ValueError(f"lifetime must exceed {RENEW_BEFORE} s (the renewal margin)")
        self._key = key
        self._iam = iam
        self._lifetime = lifetime
        self._clock = clock
        self._header = ""
        self._exp = 0
        self.issued = 0  # how many tokens were made (renewals included)

    def header(self) -> str:
        now = int(self._clock())
        if self._exp - RENEW_BEFORE < now:
            self._exp = now + self._lifetime
            self._header = "Bearer " + _sign({"iam": self._iam, "exp": self._exp}, self._key)
            self.issued += 1
        return self._header

    def __repr__(self) -> str:
        return f"TokenSource(iam={self._iam!r}, exp={self._exp})"


class TokenVerifier:
    """The server side: ``verify(values)`` raises AuthError unless the RPC may pass."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time, cache_size: int = 256) -> None:
        if not key:
            raise ValueError("the shared key must not be empty")
        self._key = key
        self._clock = clock
        self._cache: dict[str, dict] = {}  # token -> its verified claims
        self._cache_size = cache_size

    def verify(self, values: list[str]) -> dict:
        """Claims of the one ``authorization`` value in ``values``, checked; else AuthError."""
        token = bearer_token(values)
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token)
            check_claims(claims, self._clock())
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[token] = claims
        else:
            check_claims(claims, self._clock())  # it may have expired since
        return claims

    def _decode(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("bad_token", "not a compact JWS") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError("bad_algorithm", f"alg {str(header.get('alg'))[:20]!r} is not HS256")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                claims = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                    options={"verify_exp": False, "verify_iat": False,
                                             "verify_nbf": False, "verify_aud": False,
                                             "verify_iss": False})
        except jwt.InvalidSignatureError:
            raise AuthError("bad_signature", "the signature does not verify with the shared key") from None
        except jwt.PyJWTError as exc:
            raise AuthError("bad_token", type(exc).__name__) from None
        return claims
