"""Helpers shared by the sandbox Cuebot tests."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from opencue_proto import job_pb2

# The fake clock's time when a test's farm is seeded.
START = 1_700_000_000

# Seconds any single call may take before the test fails instead of hanging.
CALL_TIMEOUT = 5.0

# One GiB in Cuebot's memory unit, KB; written out here rather than borrowed from the
# code under test, so a wrong unit there cannot also be the tests' yardstick.
GIB = 1024 * 1024

# A two-job spec of the kind CueWeb's submit page writes: the second job's
# "comp" layer waits for its "render" layer frame by frame.
SPEC = """<?xml version="1.0"?>
<spec>
  <facility>local</facility>
  <show>testing</show>
  <shot>shot002</shot>
  <user>artist2</user>
  <job name="lighting">
    <paused>False</paused>
    <maxretries>2</maxretries>
    <layers>
      <layer name="beauty" type="Render">
        <cmd>render -f #IFRAME#</cmd>
        <range>1-4</range>
        <chunk>1</chunk>
        <cores>2.0</cores>
        <memory>4g</memory>
        <services><service>arnold</service></services>
      </layer>
    </layers>
  </job>
  <job name="comp-job">
    <layers>
      <layer name="render" type="Render"><cmd>a</cmd><range>1-3</range></layer>
      <layer name="comp" type="Render"><cmd>b</cmd><range>1-3</range></layer>
    </layers>
  </job>
  <depends>
    <depend type="FRAME_BY_FRAME" anyframe="False">
      <depjob>comp-job</depjob><deplayer>comp</deplayer>
      <onjob>comp-job</onjob><onlayer>render</onlayer>
    </depend>
  </depends>
</spec>
"""


class TimedStub:
    """A generated stub whose calls all carry a deadline."""

    def __init__(self, stub: object) -> None:
        self._stub = stub

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return functools.partial(getattr(self._stub, name), timeout=CALL_TIMEOUT)


class FakeClock:
    """A farm clock that only moves when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def rpc_error(call: Callable[..., Any], request: object) -> grpc.RpcError:
    """Make a call that must fail and return its error."""
    with pytest.raises(grpc.RpcError) as failure:
        call(request)
    return failure.value


def launch(cue: Any, spec: str = SPEC) -> list[job_pb2.Job]:
    """Launch a job spec through LaunchSpecAndWait and return the jobs."""
    request = job_pb2.JobLaunchSpecAndWaitRequest(spec=spec)
    return list(cue.job.LaunchSpecAndWait(request).jobs.jobs)
