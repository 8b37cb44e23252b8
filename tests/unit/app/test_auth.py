"""Authentication and rate limiting on the request path, in memory."""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_error, make_token
from tests.unit.app.support import GET_SHOWS


@pytest.mark.parametrize(("token", "header", "words", "challenge"), [
    (None, None, "missing Authorization header", 'Bearer realm="opencue-gateway"'),
    (make_token(exp=int(time.time()) - 120), None, "the token has expired", "invalid_token"),
    (make_token(secret="forged" * 8), None, "the token signature is invalid", "invalid_token"),
    (None, "Basic dXNlcjpwYXNz", "must use the Bearer scheme", 'Bearer realm="opencue-gateway"'),
], ids=["missing", "expired", "forged", "basic"])
def test_bad_tokens_are_401(gw, token, header, words, challenge):
    """Missing, expired, forged and non-Bearer credentials are 401 with an RFC 6750 challenge,
    and nothing reaches Cuebot."""
    headers = {"Authorization": header} if header else None
    response = gw.request("POST", GET_SHOWS, b"{}", token=token, headers=headers)
    assert_error(response, 401, 16, words)
    assert challenge in response.header("www-authenticate")
    if token is None:
        assert "error=" not in response.header("www-authenticate")
    assert gw.cuebot.received == []


def test_unknown_path_without_token_is_401(gw):
    """Authentication comes before routing: the README's health probe of / gets 401."""
    response = gw.request("GET", "/", None)
    assert_error(response, 401, 16, "missing Authorization header")


def test_the_principal_travels_to_cuebot(gw):
    """The token's sub reaches Cuebot as opencue-gateway-sub; the token itself does not."""
    token = make_token(sub="ann")
    assert gw.post(GET_SHOWS, token=token).status == 200
    metadata = gw.cuebot.received[0].metadata
    assert metadata["opencue-gateway-sub"] == "ann"
    assert token not in repr(metadata)


def test_bursts_beyond_the_limit_get_429(make_gateway):
    """Past the burst a principal gets 429 (code 8) with Retry-After; others are unaffected."""
    gw = make_gateway(RATE_LIMIT_RPS="0.001", RATE_LIMIT_BURST="3")
    ann, bob = make_token(sub="ann"), make_token(sub="bob")
    allowed = [gw.post(GET_SHOWS, token=ann) for _ in range(3)]
    refused = gw.post(GET_SHOWS, token=ann)
    assert [r.status for r in allowed] == [200, 200, 200]
    assert [r.header("ratelimit-remaining") for r in allowed] == ["2", "1", "0"]
    assert_error(refused, 429, 8, "rate limit exceeded")
    assert refused.header("retry-after") == "1000"
    assert refused.header("ratelimit-limit") == "3"
    assert refused.header("ratelimit-remaining") == "0"
    assert gw.post(GET_SHOWS, token=bob).status == 200
    assert len(gw.cuebot.received) == 4


def test_failed_logins_are_limited_per_address(make_gateway):
    """Token guessing from one address hits 429 after the burst of 401s."""
    gw = make_gateway(RATE_LIMIT_RPS="1", RATE_LIMIT_BURST="2")
    statuses = [gw.post(GET_SHOWS, token="guess").status for _ in range(3)]
    assert statuses == [401, 401, 429]
    gw.advance(1.0)
    assert gw.post(GET_SHOWS, token="guess").status == 401


def test_tokens_without_sub_share_their_address_bucket(make_gateway):
    """A valid token without ``sub`` is counted per client address, like a failed login."""
    gw = make_gateway(RATE_LIMIT_RPS="0.001", RATE_LIMIT_BURST="2")
    anonymous = make_token(sub=None)
    assert gw.post(GET_SHOWS, token=anonymous).status == 200
    assert "opencue-gateway-sub" not in gw.cuebot.received[0].metadata
    assert gw.post(GET_SHOWS, token="guess").status == 401
    assert gw.post(GET_SHOWS, token=anonymous).status == 429
    assert gw.post(GET_SHOWS, token=make_token(sub="ann")).status == 200


def test_zero_disables_rate_limiting(make_gateway):
    """RATE_LIMIT_RPS=0: no limit and no RateLimit headers."""
    gw = make_gateway(RATE_LIMIT_RPS="0")
    for _ in range(5):
        response = gw.post(GET_SHOWS)
        assert response.status == 200 and response.header("ratelimit-limit") is None
