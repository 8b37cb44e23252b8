"""Authentication through twisted.cred: the checker, the realm, headers and challenges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import grpc
import jwt
import pytest
import pytest_twisted
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm
from zope.interface.verify import verifyObject

from opencue_gateway.auth import (
    Authenticator,
    BearerToken,
    GatewayRealm,
    IPrincipal,
    JWTChecker,
    TokenRejected,
    bearer_from_header,
    challenge,
    make_portal,
    sign_token,
)
from opencue_gateway.errors import GatewayError
from tests.conftest import SECRET, make_config, make_token
from tests.sandbox.sandbox_support import FakeClock


@pytest.fixture
def checker() -> JWTChecker:
    return JWTChecker([SECRET.encode()])


def readme_token(secret: str, payload: dict) -> str:
    """The README's hand-rolled HS256 snippet, verbatim in spirit."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def test_checker_and_realm_provide_their_interfaces(checker):
    """The checker and realm really implement twisted.cred's interfaces."""
    assert verifyObject(ICredentialsChecker, checker)
    assert verifyObject(IRealm, GatewayRealm())


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_are_accepted(checker, algorithm):
    """HS256, HS384 and HS512 tokens signed with the secret verify."""
    claims = checker.requestAvatarId(BearerToken(make_token(algorithm=algorithm, role="admin")))
    assert claims["role"] == "admin"


def test_readme_snippet_token_is_accepted(checker):
    """A token from the README's hand-rolled Python snippet verifies."""
    token = readme_token(SECRET, {"sub": "user", "exp": int(time.time()) + 3600})
    assert checker.requestAvatarId(BearerToken(token))["sub"] == "user"


@pytest.mark.parametrize(("token", "reason"), [
    (make_token(exp=int(time.time()) - 3600), "the token has expired"),
    (make_token(secret="x" * 40), "the token signature is invalid"),
    (make_token(nbf=int(time.time()) + 3600), "not valid yet (nbf"),
    (make_token(iat=int(time.time()) + 3600), "not valid yet (iat"),
    ("abc", "not a well-formed JWT"),
])
def test_bad_tokens_are_rejected_with_a_reason(checker, token, reason):
    """Each way a token fails has its own message."""
    with pytest.raises(TokenRejected) as caught:
        checker.requestAvatarId(BearerToken(token))
    assert reason in caught.value.reason


def test_token_without_exp_is_rejected(checker):
    """exp is required (the Go gateway does not require it; the contract does)."""
    token = readme_token(SECRET, {"sub": "user"})
    with pytest.raises(TokenRejected, match="no 'exp' claim"):
        checker.requestAvatarId(BearerToken(token))


def test_alg_none_is_rejected(checker):
    """An unsigned token never verifies."""
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(
        json.dumps({"exp": int(time.time()) + 60}).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRejected, match="algorithm 'none' is not accepted"):
        checker.requestAvatarId(BearerToken(f"{header}.{body}."))


def test_leeway_tolerates_small_clock_skew():
    """A token expired a few seconds ago still passes within the leeway."""
    checker = JWTChecker([SECRET.encode()], leeway=30)
    checker.requestAvatarId(BearerToken(make_token(exp=int(time.time()) - 5)))


def test_realm_builds_the_principal():
    """sub and role come from the claims; missing ones are empty strings."""
    realm = GatewayRealm()
    _iface, principal, _logout = realm.requestAvatar({"sub": "ann", "role": "ops", "x": 1}, None,
                                                     IPrincipal)
    assert (principal.sub, principal.role, principal.claims["x"]) == ("ann", "ops", 1)
    _iface, anonymous, _logout = realm.requestAvatar({"user": "test"}, None, IPrincipal)
    assert (anonymous.sub, anonymous.role) == ("", "")


@pytest.mark.parametrize(("header", "token"), [
    (b"Bearer abc", "abc"), (b"bearer abc", "abc"), (b"BEARER  abc ", "abc"),
])
def test_bearer_scheme_is_case_insensitive(header, token):
    """The scheme word is case-insensitive and blanks around the token are tolerated."""
    assert bearer_from_header(header).token == token


@pytest.mark.parametrize("header", [None, b"Basic dXNlcjpwYXNz", b"Bearer", b"Bearer   "])
def test_missing_tokens_get_a_bare_challenge(header):
    """No bearer token at all: a bare RFC 6750 challenge without an error attribute."""
    with pytest.raises(TokenRejected) as caught:
        bearer_from_header(header)
    assert challenge(caught.value) == 'Bearer realm="opencue-gateway"'


def test_invalid_token_challenge_names_the_error():
    """A bad token's challenge carries error="invalid_token" and the reason."""
    value = challenge(TokenRejected('the token "has" expired'))
    assert value == ('Bearer realm="opencue-gateway", error="invalid_token", '
                     "error_description=\"the token 'has' expired\"")


def test_token_never_appears_in_repr():
    """Credentials cannot leak their token through repr or logs."""
    assert "secret-token" not in repr(BearerToken("secret-token"))


@pytest_twisted.ensureDeferred
async def test_authenticator_turns_rejections_into_401(checker):
    """The app-facing authenticator raises a 401 GatewayError with the challenge header."""
    authenticator = Authenticator(make_portal(checker))
    principal = await authenticator.authenticate(f"Bearer {make_token(sub='ann')}".encode())
    assert principal.sub == "ann"
    with pytest.raises(GatewayError) as caught:
        await authenticator.authenticate(b"Bearer nope")
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="opencue-gateway", ')


def test_verified_tokens_are_remembered_until_they_expire():
    """A verified token is not re-verified on the next call, only after exp (plus leeway)."""
    clock = FakeClock(time.time())
    checker = JWTChecker([SECRET.encode()], leeway=30, clock=clock)
    token = make_token(exp=int(clock.now) + 60)
    claims = checker.requestAvatarId(BearerToken(token))
    assert checker.requestAvatarId(BearerToken(token)) is claims
    clock.now += 60 + 31
    assert checker.requestAvatarId(BearerToken(token)) is not claims  # verified afresh


def test_new_secrets_forget_remembered_tokens():
    """After set_secrets (SIGHUP), a token of the retired secret fails even if it was cached."""
    checker = JWTChecker([SECRET.encode()])
    token = make_token()
    checker.requestAvatarId(BearerToken(token))
    checker.set_secrets([b"y" * 40])
    with pytest.raises(TokenRejected, match="signature"):
        checker.requestAvatarId(BearerToken(token))


def test_remembered_tokens_are_bounded():
    """At most VERIFIED_TOKENS tokens are remembered."""
    from opencue_gateway import auth

    checker = JWTChecker([SECRET.encode()])
    for n in range(auth.VERIFIED_TOKENS + 50):
        checker._remember(f"token-{n}", {"exp": time.time() + 60})
    assert len(checker._verified) == auth.VERIFIED_TOKENS


def test_signed_tokens_follow_the_configured_algorithm_and_role_claim():
    """The sandbox's start-up token and `opencue-gateway token` must pass this gateway's own
    checks even with JWT_ALGORITHMS=HS512 and a custom role claim."""
    config = make_config(JWT_ALGORITHMS="HS512", JWT_ROLE_CLAIM="groups")
    token = sign_token(config, "ann", "dashboard", 60)
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    checker = JWTChecker([config.jwt_secret], algorithms=config.jwt_algorithms)
    claims = checker.requestAvatarId(BearerToken(token))
    assert claims["sub"] == "ann" and claims["groups"] == "dashboard"
