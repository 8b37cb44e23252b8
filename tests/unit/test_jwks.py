"""The JWKS source: fetching over loopback, its schedule on a fake clock, and its bounds.

The HTTP exchange is real (a server on 127.0.0.1); every timer (refresh,
retry, timeout) runs on a ``Clock`` the test advances, so nothing depends on
how fast the machine is.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from opencue_gateway import jwks
from opencue_gateway.config import PUBLIC_KEY_ALGORITHMS
from opencue_gateway.jwks import JwksKeys, http_client
from tests.certs import make_ca, make_leaf
from tests.idp import EC_KEY, ED_KEY, RSA_KEY, RSA_KEY_2, JwksServer, jwk

REFRESH = 300.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(jwks_server, clock):
    """A JWKS source on the fake clock, fetching from the loopback server; stopped at teardown."""
    keys = JwksKeys(jwks_server.url, PUBLIC_KEY_ALGORITHMS, REFRESH, clock, http_client(reactor))
    yield keys
    if keys.running:
        keys.stopService()


def next_fetch_in(clock: Clock) -> float:
    """Seconds until the one scheduled fetch."""
    [call] = clock.getDelayedCalls()
    return call.getTime() - clock.seconds()


async def started(source: JwksKeys) -> JwksKeys:
    """Start the source and wait for its first fetch to end."""
    source.startService()
    await source.fetch()
    return source


@pytest_twisted.ensureDeferred
async def test_the_first_fetch_loads_the_keys(jwks_server, source):
    """Starting fetches the set at once; its keys are held and nothing is reported wrong."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "r1"), jwk(EC_KEY, "e1"), jwk(ED_KEY, "d1")]}
    assert source.problem == "the signing keys of JWT_JWKS_URL are not loaded yet"
    await started(source)
    assert [(k.kid, k.kind) for k in source.keys] == [
        ("r1", "RSA 2048"), ("e1", "EC P-256"), ("d1", "Ed25519")]
    assert source.problem is None and source.generation == 1
    assert source.knows("e1") and not source.knows("zz") and not source.knows(None)
    assert len(jwks_server.hits) == 1


@pytest_twisted.ensureDeferred
async def test_the_set_is_fetched_again_every_interval(jwks_server, source, clock):
    """After JWT_JWKS_REFRESH the set is fetched again; a rotated set replaces the old one."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "old")]}
    await started(source)
    assert next_fetch_in(clock) == REFRESH
    clock.advance(REFRESH - 1)
    assert len(jwks_server.hits) == 1
    jwks_server.document = {"keys": [jwk(RSA_KEY_2, "new")]}
    clock.advance(1)
    await source.fetch()
    assert len(jwks_server.hits) == 2
    assert [k.kid for k in source.keys] == ["new"] and source.generation == 2


@pytest_twisted.ensureDeferred
async def test_an_unchanged_set_keeps_its_generation(jwks_server, source, clock):
    """Fetching the same keys again does not make verified tokens be verified again."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "k")]}
    await started(source)
    clock.advance(REFRESH)
    await source.fetch()
    assert len(jwks_server.hits) == 2 and source.generation == 1


@pytest.mark.parametrize(("cache_control", "interval"), [
    ("public, max-age=60", 60), ("max-age=0", jwks.MIN_INTERVAL), ("no-cache", REFRESH),
    ("max-age=86400, must-revalidate", REFRESH),
])
@pytest_twisted.ensureDeferred
async def test_cache_control_max_age_can_only_shorten_the_interval(jwks_server, source, clock,
                                                                   cache_control, interval):
    """A shorter max-age is honoured down to MIN_INTERVAL; a longer one or none is the interval."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "k")]}
    jwks_server.headers = {"Cache-Control": cache_control}
    await started(source)
    assert next_fetch_in(clock) == interval


@pytest_twisted.ensureDeferred
async def test_an_unknown_kid_fetches_early_at_most_once_per_interval(jwks_server, source, clock):
    """One early fetch per interval for unknown kids; requests arriving meanwhile join it."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "k1")]}
    await started(source)
    jwks_server.document = {"keys": [jwk(RSA_KEY, "k1"), jwk(RSA_KEY_2, "k2")]}
    first, joined = source.fetch_for_unknown_kid(), source.fetch_for_unknown_kid()
    assert isinstance(first, Deferred) and isinstance(joined, Deferred)
    await first
    await joined
    assert len(jwks_server.hits) == 2 and source.knows("k2")
    clock.advance(REFRESH / 2)
    assert source.fetch_for_unknown_kid() is None
    clock.advance(REFRESH / 2)  # the scheduled refresh starts now
    await source.fetch()
    assert len(jwks_server.hits) == 3
    await source.fetch_for_unknown_kid()
    assert len(jwks_server.hits) == 4


@pytest_twisted.ensureDeferred
async def test_a_failed_fetch_keeps_the_keys_and_retries_with_a_backoff(jwks_server, source,
                                                                         clock):
    """A failing provider leaves the held keys in use; retries back off up to MIN_INTERVAL."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "k")]}
    await started(source)
    jwks_server.status = 503
    clock.advance(REFRESH)
    delays = []
    for _ in range(7):
        await source.fetch()
        delays.append(next_fetch_in(clock))
        clock.advance(delays[-1])
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert [k.kid for k in source.keys] == ["k"] and source.problem is None
    assert source.describe()["error"] == "the answer was HTTP 503"
    jwks_server.status = 200
    await source.fetch()
    assert source.describe()["error"] is None and next_fetch_in(clock) == REFRESH


@pytest_twisted.ensureDeferred
async def test_until_a_fetch_succeeds_the_problem_is_reported(jwks_server, source, clock):
    """With no keys yet the source says so; the retry that succeeds clears it."""
    jwks_server.status = 500
    await started(source)
    assert source.keys == () and source.problem is not None
    jwks_server.status = 200
    jwks_server.document = {"keys": [jwk(EC_KEY, "e")]}
    clock.advance(next_fetch_in(clock))
    await source.fetch()
    assert source.problem is None and source.knows("e")


@pytest.mark.parametrize(("body", "send_length", "error"), [
    (b" " * (jwks.MAX_BYTES + 1), True, f"larger than {jwks.MAX_BYTES} bytes"),
    (b" " * (jwks.MAX_BYTES + 1), False, f"larger than {jwks.MAX_BYTES} bytes"),
    (b"<html>", True, "the answer is not JSON"),
    (b"[]", True, "the answer has no 'keys' list"),
    (b'{"keys": {}}', True, "the answer has no 'keys' list"),
    (b'{"keys": []}', True, "no key of the set can verify an accepted algorithm "
                            "(the set is empty)"),
    (b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', True, "key 1: a symmetric (oct) key"),
])
@pytest_twisted.ensureDeferred
async def test_unusable_answers_fail_the_fetch(jwks_server, source, body, send_length, error):
    """Oversized (with or without Content-Length), non-JSON and keyless answers are failures."""
    jwks_server.body, jwks_server.send_length = body, send_length
    await started(source)
    assert source.keys == ()
    assert error in source.describe()["error"]


@pytest_twisted.ensureDeferred
async def test_too_many_keys_fail_the_fetch(jwks_server, source):
    """A set of more than MAX_KEYS keys is refused whole."""
    jwks_server.document = {"keys": [jwk(EC_KEY, str(n)) for n in range(jwks.MAX_KEYS + 1)]}
    await started(source)
    assert source.describe()["error"] == (
        f"the key set holds {jwks.MAX_KEYS + 1} keys, more than {jwks.MAX_KEYS}")


@pytest_twisted.ensureDeferred
async def test_unusable_keys_are_skipped_and_logged(jwks_server, source, captured_logs):
    """Encryption and symmetric keys beside a signing key are skipped, and the log says why."""
    jwks_server.document = {"keys": [jwk(RSA_KEY, "enc", use="enc"), jwk(RSA_KEY, "sig"),
                                     {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}
    await started(source)
    assert [k.kid for k in source.keys] == ["sig"]
    messages = [e.get("skipped", "") for e in captured_logs]
    assert any("key 1: it is not a signing key" in m and "key 3: a symmetric" in m
               for m in messages)


@pytest_twisted.ensureDeferred
async def test_a_provider_that_never_answers_times_out_on_the_clock(jwks_server, source, clock):
    """A fetch is abandoned after FETCH_TIMEOUT; the retry is scheduled as for any failure."""
    jwks_server.hang = True
    source.startService()
    waiting = source.fetch()
    clock.advance(jwks.FETCH_TIMEOUT)
    await waiting
    assert source.describe()["error"] == f"no answer within {jwks.FETCH_TIMEOUT:g}s"
    assert next_fetch_in(clock) == jwks.FIRST_RETRY


@pytest_twisted.ensureDeferred
async def test_stopping_cancels_the_fetch_and_the_schedule(jwks_server, source, clock):
    """After stopService nothing is scheduled and a fetch under way is abandoned."""
    jwks_server.hang = True
    source.startService()
    waiting = source.fetch()
    source.stopService()
    await waiting
    assert clock.getDelayedCalls() == []
    assert source.describe()["error"] == "the fetch was stopped"


@pytest_twisted.ensureDeferred
async def test_over_https_the_provider_certificate_must_be_trusted(tmp_path, clock, monkeypatch):
    """An untrusted certificate fails the fetch; with its CA in SSL_CERT_FILE the keys load."""
    ca, ca_key = make_ca(tmp_path)
    leaf = make_leaf(tmp_path, ca, ca_key)
    server = JwksServer({"keys": [jwk(RSA_KEY, "k")]}, certificate=(leaf.cert, leaf.key)).start()
    try:
        untrusted = JwksKeys(server.url, PUBLIC_KEY_ALGORITHMS, REFRESH, clock,
                             http_client(reactor))
        await untrusted.fetch()
        assert untrusted.keys == () and "certificate verify failed" in untrusted.describe()[
            "error"]
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert))
        trusted = JwksKeys(server.url, PUBLIC_KEY_ALGORITHMS, REFRESH, clock, http_client(reactor))
        await trusted.fetch()
        assert trusted.knows("k") and server.hits == ["/certs"]
    finally:
        server.stop()


class FailingHttp:
    """An HTTP client whose requests fail at once (no network involved)."""

    def get(self, url: str, **kwargs: object) -> Deferred:
        return fail(ConnectionRefusedError("refused"))


@pytest.mark.parametrize(("url", "warned"), [
    ("http://idp.example/certs", True), ("https://idp.example/certs", False),
    ("http://127.0.0.1:1/certs", False), ("http://localhost:1/certs", False),
    ("http://[::1]:1/certs", False),
])
def test_plain_http_to_another_host_is_warned_about(clock, captured_logs, url, warned):
    """Keys over plain http can be replaced on the way, unless they come from this machine."""
    source = JwksKeys(url, PUBLIC_KEY_ALGORITHMS, REFRESH, clock, FailingHttp())
    source.startService()
    source.stopService()
    said = any("uses plain http" in e.get("log_format", "") for e in captured_logs)
    assert said is warned
