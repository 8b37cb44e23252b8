"""Fan-in: identical reads share calls, and no answer predates its request."""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred

from opencue_gateway.fanin import FanIn


class Calls:
    """A fake Cuebot: each start() returns a Deferred the test fires by hand."""

    def __init__(self) -> None:
        self.started: list[Deferred] = []

    def start(self) -> Deferred:
        call: Deferred = Deferred()
        self.started.append(call)
        return call


def results(deferreds):
    out = []
    for d in deferreds:
        d.addBoth(out.append)
    return out


def test_requests_during_a_call_share_the_next_call():
    """Requests arriving while a call runs wait for the next one (fresh), and share it."""
    calls, fanin = Calls(), FanIn(clock=lambda: 0.0)
    first = results([fanin.call("k", calls.start)])
    later = results([fanin.call("k", calls.start) for _ in range(50)])
    assert len(calls.started) == 1
    calls.started[0].callback("answer-1")
    assert first == ["answer-1"] and later == []
    assert len(calls.started) == 2
    calls.started[1].callback("answer-2")
    assert later == ["answer-2"] * 50
    assert len(calls.started) == 2


def test_different_questions_do_not_share():
    """Different keys make different calls."""
    calls, fanin = Calls(), FanIn(clock=lambda: 0.0)
    fanin.call("a", calls.start)
    fanin.call("b", calls.start)
    assert len(calls.started) == 2


def test_failures_reach_every_waiter_and_the_next_call_still_runs():
    """A failed call fails all its waiters; the gathered call is started anyway."""
    calls, fanin = Calls(), FanIn(clock=lambda: 0.0)
    first = results([fanin.call("k", calls.start)])
    second = results([fanin.call("k", calls.start), fanin.call("k", calls.start)])
    calls.started[0].errback(RuntimeError("cuebot down"))
    assert first[0].check(RuntimeError)
    calls.started[1].callback("ok")
    assert second == ["ok", "ok"]


def test_cancelled_waiters_do_not_cancel_the_call():
    """A client going away drops only its own waiter; a call nobody waits for is not started."""
    calls, fanin = Calls(), FanIn(clock=lambda: 0.0)
    kept = results([fanin.call("k", calls.start)])
    gone = fanin.call("k", calls.start)
    gone.addErrback(lambda f: f.trap(CancelledError))
    gone.cancel()
    calls.started[0].callback("answer")
    assert kept == ["answer"]
    assert len(calls.started) == 1


def test_cache_serves_within_the_ttl_only():
    """With READ_CACHE_TTL, a finished answer is reused until it is older than the TTL."""
    now = [100.0]
    calls, fanin = Calls(), FanIn(clock=lambda: now[0], cache_ttl=2.0)
    shared = []
    results([fanin.call("k", calls.start)])
    calls.started[0].callback("answer")
    assert results([fanin.call("k", calls.start, shared.append)]) == ["answer"]
    assert shared == ["cached"] and len(calls.started) == 1
    now[0] += 2.5
    fanin.call("k", calls.start)
    assert len(calls.started) == 2


def test_without_ttl_nothing_is_cached():
    """READ_CACHE_TTL=0: every request after an answer makes a new call."""
    calls, fanin = Calls(), FanIn(clock=lambda: 0.0)
    results([fanin.call("k", calls.start)])
    calls.started[0].callback("answer")
    fanin.call("k", calls.start)
    assert len(calls.started) == 2


def test_a_start_that_raises_fails_its_waiter():
    """An exception while starting the call becomes the waiter's failure, not a stuck key."""
    fanin = FanIn(clock=lambda: 0.0)

    def broken():
        raise ValueError("no")

    out = results([fanin.call("k", broken)])
    assert out[0].check(ValueError)
    calls = Calls()
    fanin.call("k", calls.start)
    assert len(calls.started) == 1
