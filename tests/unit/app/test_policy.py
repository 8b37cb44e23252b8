"""Authorization (AUTH_POLICY_FILE) on the request path, in memory."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error, make_token
from tests.unit.app.support import GET_SHOWS, KILL, PAUSE

POLICY = """
[roles.viewer]
allow = ["@readonly"]

[roles.wrangler]
allow = ["@readonly", "job.JobInterface/*"]
deny = ["job.JobInterface/Kill"]
"""


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def guarded(make_gateway, policy_file):
    """A gateway with the viewer/wrangler policy and no [default] section."""
    return make_gateway(AUTH_POLICY_FILE=str(policy_file))


def test_a_role_calls_what_it_is_allowed(guarded):
    """A viewer reads, a wrangler pauses: both reach Cuebot."""
    assert guarded.post(GET_SHOWS, token=make_token(role="viewer")).status == 200
    assert guarded.post(PAUSE, token=make_token(role="wrangler")).status == 200
    assert [r.path for r in guarded.cuebot.received] == [GET_SHOWS, PAUSE]


@pytest.mark.parametrize(("role", "path", "shown"), [
    ("viewer", PAUSE, "'viewer'"),
    ("wrangler", KILL, "'wrangler'"),
    (None, GET_SHOWS, "(none)"),
    ("intern", GET_SHOWS, "'intern'"),
], ids=["not-allowed", "denied", "no-role", "unlisted-role"])
def test_what_a_role_may_not_call_is_403(guarded, role, path, shown):
    """Not allowed, denied, no role and an unlisted role (no [default]) are 403 naming the
    role and the method; Cuebot is not called."""
    response = guarded.post(path, token=make_token(role=role))
    assert_error(response, 403, 7, f"role {shown} may not call {path.lstrip('/')}")
    assert guarded.cuebot.received == []


def test_authorization_comes_before_the_verb_check(guarded):
    """A GET on a method the role may not call is 403, not 405: nothing is said about it."""
    response = guarded.request("GET", KILL, None, token=make_token(role="viewer"))
    assert_error(response, 403, 7, "may not call")
    assert response.header("allow") is None


def test_reload_applies_a_changed_policy_to_the_next_request(guarded, policy_file):
    """SIGHUP's reload re-reads AUTH_POLICY_FILE: a role gains a method without a restart."""
    viewer = make_token(role="viewer")
    assert guarded.post(PAUSE, token=viewer).status == 403
    policy_file.write_text(POLICY.replace('allow = ["@readonly"]',
                                          'allow = ["@readonly", "job.JobInterface/Pause"]', 1))
    guarded.gateway.reload()
    assert guarded.post(PAUSE, token=viewer).status == 200
