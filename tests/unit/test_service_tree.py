"""The process's service tree: what it holds, in which order, and how it stops."""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from opencue_gateway.service import gateway_tree
from opencue_gateway.services import SandboxService, SequentialMultiService
from tests.conftest import make_config
from tests.memory import InProcessCuebot, ThreadlessReactor


def tree(catalog, **env):
    reactor = ThreadlessReactor()
    cuebot = InProcessCuebot(catalog)
    return gateway_tree(make_config(**env), reactor, catalog=catalog,
                        open_channel=lambda endpoint: cuebot), reactor


def kinds(root) -> list[str]:
    return [type(child).__name__ for child in root]


def test_children_in_start_order(catalog, tmp_path):
    """Pool, channel, audit file, housekeeping, in-flight drain, listeners, drain notice, and
    the watches' drain last (so the first to stop)."""
    root, _ = tree(catalog, AUDIT_LOG_FILE=str(tmp_path / "audit.jsonl"), RATE_LIMIT_RPS="10",
                   METRICS_PORT="0", LISTEN="tcp:0:interface=127.0.0.1,unix:" +
                   str(tmp_path / "gw.sock"))
    assert kinds(root) == [
        "ThreadPoolService", "CuebotChannelService", "AuditFileService", "TimerService",
        "InFlight", "Listener", "Listener", "Listener", "DrainNotice", "WatchDrain",
    ]
    assert [listener.where.setting for listener in root.listeners] == [
        "LISTEN", "LISTEN", "METRICS_PORT"]


def test_the_sandbox_starts_before_the_channel_that_calls_it(catalog):
    """--sandbox adds the sandbox's service just before the channel's."""
    root, _ = tree(catalog, SANDBOX="true")
    names = kinds(root)
    assert names.index("SandboxService") + 1 == names.index("CuebotChannelService")
    assert isinstance(root.sandbox, SandboxService)


def test_without_optional_resources_only_the_core_services(catalog):
    """No audit file, no rate limit, no metrics port: nothing for them in the tree."""
    root, _ = tree(catalog)
    assert kinds(root) == ["ThreadPoolService", "CuebotChannelService", "InFlight",
                           "Listener", "DrainNotice", "WatchDrain"]
    assert root.listeners[0].where.shown == "127.0.0.1:0"


def test_a_stop_runs_the_tree_backwards_one_service_at_a_time(catalog):
    """Watch streams end first, then the drain notice (readyz fails, DRAIN_DELAY), then
    listeners, in-flight, ... pool."""
    root, reactor = tree(catalog, DRAIN_DELAY="5s")
    stopped: list[str] = []

    def recording(child):
        original = child.stopService

        def stop():
            stopped.append(type(child).__name__)
            return original()

        return stop

    for child in root:
        child.stopService = recording(child)
    root.startService()
    assert all(child.running for child in root)
    health = root.gateway.health
    done = root.stopService()
    assert health.draining and stopped == ["WatchDrain", "DrainNotice"]
    assert root.gateway.watches.draining
    assert all(listener.running for listener in root.listeners)
    reactor.advance(4.9)
    assert stopped == ["WatchDrain", "DrainNotice"]
    for _ in range(20):
        reactor.advance(0.5)
    assert stopped == ["WatchDrain", "DrainNotice", "Listener", "InFlight",
                       "CuebotChannelService", "ThreadPoolService"]
    assert done.called


def test_a_child_that_has_not_stopped_holds_back_the_next():
    """SequentialMultiService waits for each child's Deferred before stopping the next."""
    gate: Deferred[None] = Deferred()
    order: list[str] = []

    class Slow(Service):
        def stopService(self):
            super().stopService()
            order.append("slow")
            return gate

    class Quick(Service):
        def stopService(self):
            super().stopService()
            order.append("quick")

    root = SequentialMultiService()
    Quick().setServiceParent(root)
    Slow().setServiceParent(root)
    root.startService()
    done = root.stopService()
    assert order == ["slow"] and not done.called
    gate.callback(None)
    assert order == ["slow", "quick"] and done.called


def test_a_child_failing_to_stop_does_not_keep_the_others_running():
    """A stop that raises is logged; the services before it still stop."""

    class Broken(Service):
        def stopService(self):
            super().stopService()
            raise OSError("disk gone")

    root = SequentialMultiService()
    first = Service()
    first.setServiceParent(root)
    Broken().setServiceParent(root)
    root.startService()
    root.stopService()
    assert not first.running



def test_log_level_applies_to_every_gateway_logger_but_the_audit_log(catalog):
    """LOG_LEVEL=warn hides access lines (built for every request otherwise); the audit log
    is never silenced; the next tree's level replaces it."""
    from twisted.logger import LogLevel

    from opencue_gateway.logs import is_enabled

    tree(catalog, LOG_LEVEL="warn")
    assert not is_enabled("opencue_gateway.access", LogLevel.info)
    assert is_enabled("opencue_gateway.access", LogLevel.warn)
    assert is_enabled("opencue_gateway.audit", LogLevel.info)
    tree(catalog, LOG_LEVEL="info")
    assert is_enabled("opencue_gateway.access", LogLevel.info)
