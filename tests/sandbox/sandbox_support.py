"""Helpers shared by the sandbox Cuebot tests."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import grpc
import pytest

# The fake clock's time when a test's farm is seeded.
START = 1_700_000_000

# Seconds any single call may take before the test fails instead of hanging.
CALL_TIMEOUT = 5.0


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
