"""Fan-in through the gateway: many identical reads, few Cuebot calls, fresh answers."""

from __future__ import annotations

import grpc
from opencue_proto import job_pb2

from opencue_gateway import fanin
from tests.conftest import assert_error, make_token
from tests.unit.app.support import GET_JOBS, PAUSE, raw_head, scrape

BODY = '{"r": {"shows": ["testing"]}}'
RPC = "job.JobInterface/GetJobs"
HEAD = raw_head(GET_JOBS)


def numbered(call: int) -> job_pb2.JobGetJobsResponse:
    """The n-th call's reply names itself, so a test can see which call answered."""
    return job_pb2.JobGetJobsResponse(jobs=job_pb2.JobSeq(jobs=[job_pb2.Job(name=f"call-{call}")]))


def name(response) -> str:
    return response.json()["jobs"]["jobs"][0]["name"]


def shared(gw, kind: str) -> float:
    """How many reads were answered by a shared call ("joined") or the cache ("cached")."""
    metric = {"joined": "opencue_gateway_joined_requests_total",
              "cached": "opencue_gateway_cached_reads_total"}[kind]
    return scrape(gw).get((metric, (("rpc", RPC),)), 0)


def test_identical_reads_share_calls_and_stay_fresh(gw):
    """50 identical GetJobs sent during a call never get that call's answer: they share the
    next one, which starts when the first ends."""
    gw.cuebot.behave(GET_JOBS, reply_for=numbered, delay=0.5)
    first = gw.send("POST", GET_JOBS, BODY, token=make_token())
    gw.advance(0.2)
    later = [gw.send("POST", GET_JOBS, BODY, token=make_token(sub=f"user{n}"))
             for n in range(50)]
    gw.advance(0.3)
    assert name(gw.result(first)) == "call-1"
    assert not any(gw.answered(d) for d in later)
    gw.advance(0.5)
    assert {name(gw.result(d)) for d in later} == {"call-2"}
    assert len(gw.cuebot.calls(GET_JOBS)) == 2
    assert shared(gw, "joined") == 50


def test_mutations_are_never_joined(gw):
    """20 identical Pause calls at once reach Cuebot 20 times."""
    gw.cuebot.behave(PAUSE, delay=0.3)
    calls = [gw.send("POST", PAUSE, '{"job": {"id": "j"}}', token=make_token())
             for _ in range(20)]
    gw.advance(0.3)
    assert [gw.result(d).status for d in calls] == [200] * 20
    assert len(gw.cuebot.calls(PAUSE)) == 20


def test_different_questions_are_not_joined(gw):
    """Reads differing in Grpc-Metadata-*, body, Grpc-Timeout or gzip choice are not joined."""
    gw.cuebot.behave(GET_JOBS, delay=0.3)
    variants = [{"Grpc-Metadata-Shot": s} for s in ("a", "b", "c")]
    variants += [{"Grpc-Timeout": "10S"}, {"Accept-Encoding": "gzip"}]
    sent = [gw.send("POST", GET_JOBS, BODY, token=make_token(), headers=h) for h in variants]
    sent.append(gw.send("POST", GET_JOBS, "{}", token=make_token()))
    gw.advance(0.3)
    assert all(gw.result(d).status == 200 for d in sent)
    assert sorted(r.metadata.get("shot", "") for r in gw.cuebot.calls(GET_JOBS)) == [
        "", "", "", "a", "b", "c"]
    assert shared(gw, "joined") == 0


def test_a_failure_reaches_every_joined_read_and_is_not_cached(make_gateway):
    """When the shared call fails, every read that joined it gets the error; the next read
    asks Cuebot again, even with a cache."""
    gw = make_gateway(READ_CACHE_TTL="10s")
    gw.cuebot.behave(GET_JOBS, delay=0.5, error=(grpc.StatusCode.INTERNAL, "db is down"))
    gw.send("POST", GET_JOBS, BODY, token=make_token())
    gw.advance(0.1)
    joined = [gw.send("POST", GET_JOBS, BODY, token=make_token()) for _ in range(3)]
    gw.advance(1.0)
    for d in joined:
        assert_error(gw.result(d), 500, 13, "db is down")
    gw.cuebot.behave(GET_JOBS, reply_for=numbered)
    assert name(gw.post(GET_JOBS, BODY)) == "call-3"


def test_a_joined_read_whose_client_left_does_not_stop_the_others(gw):
    """A client that leaves while waiting for a shared call drops out alone; the others get
    their answer, and a shared call nobody waits for any more is never made."""
    gw.cuebot.behave(GET_JOBS, reply_for=numbered, delay=0.5)
    first = gw.send("POST", GET_JOBS, BODY, token=make_token())
    gw.settle()
    leaving = gw.raw(HEAD + f"Content-Length: {len(BODY)}\r\n\r\n{BODY}".encode())
    staying = gw.send("POST", GET_JOBS, BODY, token=make_token())
    gw.settle()
    leaving.close()
    gw.advance(1.0)
    assert name(gw.result(first)) == "call-1" and name(gw.result(staying)) == "call-2"
    assert leaving.received == b""
    alone = gw.raw(HEAD + f"Content-Length: {len(BODY)}\r\n\r\n{BODY}".encode())
    gw.settle()
    also_leaving = gw.raw(HEAD + f"Content-Length: {len(BODY)}\r\n\r\n{BODY}".encode())
    gw.settle()
    also_leaving.close()
    gw.advance(1.0)
    assert alone.response().status == 200
    assert len(gw.cuebot.calls(GET_JOBS)) == 3


def test_a_shared_call_refused_for_capacity_answers_503(make_gateway):
    """When the pool is full, the read that would open a call gets 503 at once."""
    gw = make_gateway(MAX_CONCURRENT_STREAMS="1", MAX_QUEUED_REQUESTS="0")
    gw.cuebot.behave(PAUSE, delay=1)
    pause = gw.send("POST", PAUSE, token=make_token())
    gw.settle()
    assert_error(gw.post(GET_JOBS, BODY), 503, 14, "at capacity")
    gw.advance(1)
    assert gw.result(pause).status == 200


def test_read_cache_ttl_on_the_clock(make_gateway):
    """READ_CACHE_TTL reuses an answer for exactly that long, then asks Cuebot again."""
    gw = make_gateway(READ_CACHE_TTL="10s")
    gw.cuebot.behave(GET_JOBS, reply_for=numbered)
    assert [name(gw.post(GET_JOBS, BODY)) for _ in range(3)] == ["call-1"] * 3
    assert shared(gw, "cached") == 2
    gw.advance(9.9)
    assert name(gw.post(GET_JOBS, BODY)) == "call-1"
    gw.advance(0.1)
    assert name(gw.post(GET_JOBS, BODY)) == "call-2"


def test_the_cache_keeps_the_newest_answers_only(make_gateway, monkeypatch):
    """Past MAX_CACHED questions the oldest cached answer is dropped first."""
    monkeypatch.setattr(fanin, "MAX_CACHED", 2)
    gw = make_gateway(READ_CACHE_TTL="10s")
    gw.cuebot.behave(GET_JOBS, reply_for=numbered)
    bodies = [f'{{"r": {{"shows": ["{show}"]}}}}' for show in ("a", "b", "c")]
    assert [name(gw.post(GET_JOBS, b)) for b in bodies] == ["call-1", "call-2", "call-3"]
    assert name(gw.post(GET_JOBS, bodies[2])) == "call-3"
    assert name(gw.post(GET_JOBS, bodies[0])) == "call-4"


def test_fan_in_off_makes_every_call(make_gateway):
    """FAN_IN=false: identical concurrent reads each reach Cuebot."""
    gw = make_gateway(FAN_IN="false")
    gw.cuebot.behave(GET_JOBS, reply_for=numbered, delay=0.3)
    sent = [gw.send("POST", GET_JOBS, BODY, token=make_token()) for _ in range(3)]
    gw.advance(0.3)
    assert sorted(name(gw.result(d)) for d in sent) == ["call-1", "call-2", "call-3"]
