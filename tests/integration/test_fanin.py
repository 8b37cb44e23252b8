"""Fan-in through the gateway: many identical reads, few Cuebot calls, fresh answers."""

from __future__ import annotations

import pytest_twisted
from opencue_proto import job_pb2
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater

from tests.integration.test_observability import samples

GET_JOBS = "/job.JobInterface/GetJobs"
BODY = '{"r": {"shows": ["testing"]}}'


def numbered(call: int) -> job_pb2.JobGetJobsResponse:
    """The n-th call's reply names itself, so a test can see which call answered."""
    return job_pb2.JobGetJobsResponse(jobs=job_pb2.JobSeq(jobs=[job_pb2.Job(name=f"call-{call}")]))


@pytest_twisted.ensureDeferred
async def test_identical_reads_share_calls_and_stay_fresh(gateway, cuebot):
    """50 identical GetJobs sent during a call never get that call's answer, and share the
    next call (or, for the slowest to arrive, the one after)."""
    cuebot.behave(GET_JOBS, reply_for=numbered, delay=0.5)
    first = ensureDeferred(gateway.post(GET_JOBS, BODY))
    await deferLater(reactor, 0.2, lambda: None)
    later = [ensureDeferred(gateway.post(GET_JOBS, BODY)) for _ in range(50)]
    answers = [(await d).json()["jobs"]["jobs"][0]["name"] for d in [first, *later]]
    assert answers[0] == "call-1"
    assert "call-1" not in answers[1:]
    assert set(answers[1:]) <= {"call-2", "call-3"}
    calls = len([r for r in cuebot.received if r.path == GET_JOBS])
    assert calls <= 3
    values = samples((await gateway.request("GET", "/metrics", None)).body)
    joined = values[("opencue_gateway_joined_requests_total",
                     (("rpc", "job.JobInterface/GetJobs"),))]
    assert 51 - calls <= joined <= 50


@pytest_twisted.ensureDeferred
async def test_mutations_are_never_joined(gateway, cuebot):
    """20 identical Pause calls at once reach Cuebot 20 times."""
    cuebot.behave("/job.JobInterface/Pause", delay=0.3)
    calls = [ensureDeferred(gateway.post("/job.JobInterface/Pause", '{"job": {"id": "j"}}'))
             for _ in range(20)]
    assert [(await d).status for d in calls] == [200] * 20
    assert len([r for r in cuebot.received if r.path.endswith("/Pause")]) == 20


@pytest_twisted.ensureDeferred
async def test_different_metadata_is_a_different_question(gateway, cuebot):
    """Reads with different Grpc-Metadata-* headers are not joined."""
    cuebot.behave(GET_JOBS, delay=0.3)
    calls = [ensureDeferred(gateway.post(GET_JOBS, BODY, headers={"Grpc-Metadata-Shot": s}))
             for s in ("a", "b", "c")]
    for call in calls:
        await call
    assert sorted(r.metadata["shot"] for r in cuebot.received) == ["a", "b", "c"]


@pytest_twisted.ensureDeferred
async def test_read_cache_ttl(start_gateway, cuebot):
    """READ_CACHE_TTL reuses an answer for that long; FAN_IN=false makes every call."""
    cuebot.behave(GET_JOBS, reply_for=numbered)
    cached = start_gateway(CUEBOT_ENDPOINT=cuebot.address, READ_CACHE_TTL="10s")
    names = [(await cached.post(GET_JOBS, BODY)).json()["jobs"]["jobs"][0]["name"]
             for _ in range(3)]
    assert names == ["call-1"] * 3
    plain = start_gateway(CUEBOT_ENDPOINT=cuebot.address, FAN_IN="false")
    for _ in range(3):
        await plain.post(GET_JOBS, BODY)
    assert len([r for r in cuebot.received if r.path == GET_JOBS]) == 4
