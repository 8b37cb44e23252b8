"""Pure edge logic: CORS decisions, token buckets, gzip negotiation."""

from __future__ import annotations

import gzip

import grpc
import pytest

from opencue_gateway.compression import MIN_BYTES, accepts_gzip, maybe_gzip
from opencue_gateway.cors import CorsPolicy
from opencue_gateway.errors import GatewayError
from opencue_gateway.http_request import origin_form
from opencue_gateway.ratelimit import RateLimiter
from tests.sandbox.sandbox_support import FakeClock

SITE = "https://cueweb.example.com"


def test_cors_any_origin_is_a_star_without_credentials():
    """CORS_ORIGINS=* answers '*' and never allows credentials."""
    headers = dict(CorsPolicy(("*",), ("*",), 600).response_headers(SITE))
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers
    assert "Opencue-Gateway-Ignored-Fields" in headers["Access-Control-Expose-Headers"]


def test_cors_listed_origin_is_echoed_and_others_get_nothing():
    """A listed origin is echoed; another origin, or none, gets no CORS headers."""
    policy = CorsPolicy((SITE,), ("*",), 600)
    assert dict(policy.response_headers(SITE))["Access-Control-Allow-Origin"] == SITE
    for origin in ("https://evil.example.com", None):
        assert policy.response_headers(origin) == [("Vary", "Origin")]
        assert policy.preflight_headers(origin, "authorization") == [("Vary", "Origin")]


def test_cors_star_headers_echo_the_request_so_authorization_passes():
    """CORS_HEADERS=* echoes the requested headers: '*' alone would not cover Authorization."""
    headers = dict(CorsPolicy(("*",), ("*",), 600).preflight_headers(
        SITE, "authorization, content-type"))
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert headers["Access-Control-Max-Age"] == "600"
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_cors_listed_headers_always_include_authorization():
    """An explicit header list still allows Authorization and Content-Type."""
    headers = dict(CorsPolicy(("*",), ("X-Requested-With",), 60).preflight_headers(SITE, None))
    assert headers["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, X-Requested-With")


def test_preflight_needs_origin_and_requested_method():
    """Only OPTIONS with Origin and Access-Control-Request-Method is a preflight."""
    assert CorsPolicy.is_preflight(b"OPTIONS", SITE, "POST")
    assert not CorsPolicy.is_preflight(b"OPTIONS", None, "POST")
    assert not CorsPolicy.is_preflight(b"OPTIONS", SITE, None)
    assert not CorsPolicy.is_preflight(b"POST", SITE, "POST")


def test_bucket_allows_the_burst_then_refuses_until_refilled():
    """A burst of B passes, the next waits 1/rate seconds, and the headers say so."""
    clock = FakeClock(1000.0)
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("ann").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.take("ann")
    assert (refused.retry_after, refused.remaining, refused.limit) == (1, 0, 3)
    assert dict(refused.headers())["Retry-After"] == "1"
    clock.now += 0.5
    assert limiter.take("ann").allowed
    assert limiter.take("bob").allowed


def test_check_raises_429_with_headers():
    """An empty bucket is RESOURCE_EXHAUSTED (429, code 8) with Retry-After."""
    limiter = RateLimiter(rate=1, burst=1, clock=FakeClock(1000.0))
    limiter.check("ann")
    with pytest.raises(GatewayError) as caught:
        limiter.check("ann")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.headers["Retry-After"] == "1"
    assert caught.value.headers["RateLimit-Remaining"] == "0"


def test_idle_buckets_are_forgotten_and_the_count_is_capped():
    """Refilled buckets are dropped; the number of buckets never exceeds the cap."""
    clock = FakeClock(1000.0)
    limiter = RateLimiter(rate=10, burst=10, clock=clock, max_buckets=100)
    for caller in range(1000):
        limiter.take(f"caller-{caller}")
    assert len(limiter) == 100
    clock.now += 2
    assert limiter.forget_idle() == 100
    assert len(limiter) == 0


@pytest.mark.parametrize(("header", "accepted"), [
    (b"gzip", True), (b"gzip, deflate, br", True), (b"br;q=1.0, gzip;q=0.5", True),
    (b"gzip;q=0", False), (b"*", True), (b"identity", False), (None, False), (b"deflate", False),
])
def test_accept_encoding(header, accepted):
    """gzip is used when Accept-Encoding allows it, q-values included."""
    assert accepts_gzip(header) is accepted


def test_only_bodies_over_a_kib_are_compressed():
    """Small bodies stay as they are; larger ones are valid gzip of the same bytes."""
    small = b"x" * MIN_BYTES
    assert maybe_gzip(small, True) == (small, False)
    big = b'{"frames":[' + b'{"id":"x"},' * 500 + b"]}"
    body, gzipped = maybe_gzip(big, True)
    assert gzipped and gzip.decompress(body) == big and len(body) < len(big) / 10
    assert maybe_gzip(big, False) == (big, False)


@pytest.mark.parametrize(("target", "expected"), [
    (b"/show.ShowInterface/GetShows", b"/show.ShowInterface/GetShows"),
    (b"http://gw:8448/show.ShowInterface/GetShows", b"/show.ShowInterface/GetShows"),
    (b"HTTPS://gw/job.JobInterface/GetJobs?x=1", b"/job.JobInterface/GetJobs?x=1"),
    (b"http://gw", b"/"),
    (b"http://gw?x=1", b"/?x=1"),
    (b"/a/http://b/c", b"/a/http://b/c"),
    (b"ftp://gw/x", b"ftp://gw/x"),
])
def test_absolute_form_targets_are_routed_by_their_path(target, expected):
    """RFC 9112 section 3.2.2: servers accept absolute-form request targets."""
    assert origin_form(target) == expected
