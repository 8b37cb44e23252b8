"""How watch streams end, in memory on the fake clock: token expiry, a policy reloaded on
SIGHUP, the drain, WATCH_MAX_DURATION, and the limits on opening them."""

from __future__ import annotations

import grpc
import pytest

from opencue_gateway.drain import WatchDrain
from tests.conftest import make_token
from tests.memory import MemoryGateway
from tests.unit.app.support import GET_JOBS, GET_SHOWS, scrape

# The watches' wall clock in these tests: a time after every real clock that runs them, so
# the token checker (on the real clock) still accepts tokens that expire soon after it.
START = 2_000_000_000.0


def fake_wall_clock(gw: MemoryGateway) -> None:
    """The watches read wall-clock time as START plus the fake clock's seconds."""
    gw.gateway.watches.wall_clock = lambda: START + gw.reactor.seconds()


def ended(gw: MemoryGateway, reason: str) -> float:
    """How many watches ended for this reason, as /metrics says."""
    return scrape(gw).get(("opencue_gateway_watches_ended_total", (("reason", reason),)), 0)


def assert_ended(watch, reason: str, words: str) -> None:
    """The stream's last event is an end with this reason, and the stream is closed."""
    end = watch.events[-1]
    assert end.event == "end", watch.kinds()
    assert end.json()["reason"] == reason and words in end.json()["message"]
    assert watch.finished and watch.complete


def test_the_stream_ends_when_the_token_expires(make_gateway):
    """At the token's exp plus JWT_LEEWAY, when a call with it would be refused, the stream
    gets an end event (token_expired) and closes; until then it runs."""
    gw = make_gateway(JWT_LEEWAY="30s")
    fake_wall_clock(gw)
    watch = gw.watch(GET_SHOWS + "?interval=1h", token=make_token(exp=int(START) + 60))
    gw.advance(89.9)
    assert watch.kinds() == ["snapshot"] and not watch.finished
    gw.advance(0.1)
    assert_ended(watch, "token_expired", "the token has expired")
    assert ended(gw, "token_expired") == 1
    assert not gw.gateway.watches.pollers


def test_a_reloaded_policy_that_no_longer_allows_the_read_ends_the_stream(make_gateway,
                                                                            tmp_path):
    """SIGHUP re-reads AUTH_POLICY_FILE: streams of roles it no longer allows end (revoked);
    the others go on."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.viewer]\nallow = ["@readonly"]\n'
                      '[roles.ops]\nallow = ["@readonly"]\n')
    gw = make_gateway(AUTH_POLICY_FILE=str(policy))
    viewer = gw.watch(GET_SHOWS, token=make_token(role="viewer"))
    ops = gw.watch(GET_SHOWS, token=make_token(role="ops"))
    jobs = gw.watch(GET_JOBS, token=make_token(role="viewer"))
    policy.write_text('[roles.viewer]\nallow = ["@readonly"]\ndeny = ["*/GetShows"]\n'
                      '[roles.ops]\nallow = ["@readonly"]\n')
    gw.gateway.reload()
    gw.settle()
    assert_ended(viewer, "revoked", "no longer allows this caller to call "
                                    "show.ShowInterface/GetShows")
    assert not ops.finished and not jobs.finished
    assert ended(gw, "revoked") == 1
    again = gw.watch(GET_SHOWS, token=make_token(role="viewer"))
    assert again.status == 403


def test_the_policy_applies_when_a_watch_opens(make_gateway, tmp_path):
    """A role that may not call the read may not watch it either: 403, nothing polled."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.viewer]\nallow = ["show.ShowInterface/GetShows"]\n')
    gw = make_gateway(AUTH_POLICY_FILE=str(policy))
    watch = gw.watch(GET_JOBS, token=make_token(role="viewer"))
    assert watch.status == 403 and "may not call job.JobInterface/GetJobs" in watch.json()[
        "message"]
    assert gw.cuebot.received == []


def test_the_drain_ends_every_stream_at_once_and_refuses_new_ones(gw):
    """When the drain begins, every stream gets an end event (draining) and closes, without
    waiting for anything; a watch opened afterwards is a 503."""
    first = gw.watch(GET_SHOWS)
    second = gw.watch(GET_JOBS)
    WatchDrain(gw.gateway.watches).stopService()
    gw.settle()
    assert_ended(first, "draining", "shutting down")
    assert_ended(second, "draining", "shutting down")
    assert gw.gateway.site.active_requests == 0
    assert not gw.gateway.watches.pollers
    late = gw.watch(GET_SHOWS)
    assert late.status == 503 and late.json()["code"] == 14
    assert ended(gw, "draining") == 2


def test_a_stream_ends_after_watch_max_duration(make_gateway):
    """WATCH_MAX_DURATION ends a stream (time_limit) so its client reconnects."""
    gw = make_gateway(WATCH_MAX_DURATION="10m")
    watch = gw.watch(GET_SHOWS + "?interval=1h")
    gw.advance(599)
    assert not watch.finished
    gw.advance(1)
    assert_ended(watch, "time_limit", "WATCH_MAX_DURATION")


def test_the_per_principal_limit_is_429_beyond_it(make_gateway):
    """Beyond WATCH_MAX_PER_PRINCIPAL open watches a caller's next one is a 429 naming the
    limit, while its open streams go on and other callers may still watch; once one of its
    streams closes, it may open another."""
    gw = make_gateway(WATCH_MAX_PER_PRINCIPAL="2")
    ann = make_token(sub="ann")
    open_ones = [gw.watch(GET_SHOWS, token=ann), gw.watch(GET_JOBS, token=ann)]
    refused = gw.watch(GET_SHOWS, body='{"a": 1}', token=ann)
    assert refused.status == 429
    assert refused.json()["message"] == ("this caller already holds 2 watches "
                                         "(WATCH_MAX_PER_PRINCIPAL); close one first")
    assert gw.watch(GET_SHOWS, token=make_token(sub="bob")).status == 200
    assert all(w.status == 200 and not w.finished for w in open_ones)
    open_ones[0].close()
    gw.settle()
    assert gw.watch(GET_SHOWS, token=ann).status == 200


def test_the_total_limit_is_503_beyond_it(make_gateway):
    """Beyond WATCH_MAX_TOTAL open watches the next one is a 503 naming the limit."""
    gw = make_gateway(WATCH_MAX_TOTAL="2")
    gw.watch(GET_SHOWS, token=make_token(sub="ann"))
    gw.watch(GET_SHOWS, token=make_token(sub="bob"))
    refused = gw.watch(GET_SHOWS, token=make_token(sub="cid"))
    assert refused.status == 503 and "WATCH_MAX_TOTAL" in refused.json()["message"]


def test_a_refused_watch_holds_no_place(make_gateway):
    """Watches refused (a bad interval, something not found) hold no place under the limit."""
    gw = make_gateway(WATCH_MAX_PER_PRINCIPAL="1")
    gw.cuebot.behave("/job.JobInterface/GetJob", error=(grpc.StatusCode.NOT_FOUND, "no job"))
    assert gw.watch(GET_SHOWS + "?interval=x").status == 400
    assert gw.watch("/job.JobInterface/GetJob", '{"id": "nope"}').status == 404
    assert gw.watch(GET_SHOWS).status == 200
    assert len(gw.gateway.watches.watchers) == 1


@pytest.mark.parametrize("reason", ["draining", "token_expired"])
def test_a_watch_ended_before_its_first_answer_gets_a_json_error(make_gateway, reason):
    """A watch still waiting for its first answer when it must end gets an ordinary error:
    503 while draining, 401 once the token expired."""
    gw = make_gateway(JWT_LEEWAY="0s")
    gw.cuebot.behave(GET_SHOWS, delay=5)
    fake_wall_clock(gw)
    watch = gw.watch(GET_SHOWS, token=make_token(exp=int(START) + 2))
    if reason == "draining":
        WatchDrain(gw.gateway.watches).stopService()
        gw.settle()
        assert_error_body(watch, 503, 14, "shutting down")
    else:
        gw.advance(2)
        assert_error_body(watch, 401, 16, "the token has expired")
    assert ended(gw, reason) == 1


def assert_error_body(watch, status: int, code: int, words: str) -> None:
    """The watch was answered with the gateway's JSON error, not a stream."""
    assert watch.status == status
    body = watch.json()
    assert body["code"] == code and words in body["message"]
    assert watch.header("content-type") == "application/json"
