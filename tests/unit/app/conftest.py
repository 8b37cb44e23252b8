"""In-memory gateways for the request-path tests (see tests/memory.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from opencue_gateway.catalog import MethodCatalog
from tests.memory import MemoryGateway, memory_gateway


@pytest.fixture
def make_gateway(catalog: MethodCatalog) -> Callable[..., MemoryGateway]:
    """Build in-memory gateways with env-style overrides."""
    return lambda **env: memory_gateway(catalog, **env)


@pytest.fixture
def gw(make_gateway: Callable[..., MemoryGateway]) -> MemoryGateway:
    """An in-memory gateway with the tests' defaults."""
    return make_gateway()
