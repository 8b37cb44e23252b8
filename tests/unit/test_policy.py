"""The authorization policy: the read-only rule, patterns, defaults and start-up errors."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from opencue_gateway.catalog import is_read_only_name
from opencue_gateway.errors import GatewayError
from opencue_gateway.policy import Policy, PolicyError, compile_policy, load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "etc" / "auth-policy.example.toml"


@pytest.mark.parametrize(("name", "read_only"), [
    ("GetShows", True), ("FindJob", True), ("IsJobPending", True), ("HasTag", True),
    ("List", True),
    ("Kill", False), ("Pause", False), ("SetMinCores", False), ("CreateShow", False),
    ("Getaway", False), ("Isolate", False), ("Hashes", False), ("Listen", False),
])
def test_read_only_rule(name, read_only):
    """Read-only means a Get/Find/List/Is/Has verb, followed by an upper-case letter or nothing."""
    assert is_read_only_name(name) is read_only


def test_read_only_rule_over_the_whole_catalog(catalog):
    """Every catalog method is classified by the rule, and the known mutators are not read-only."""
    read_only = {m.path for m in catalog if m.read_only}
    assert len(read_only) + len([m for m in catalog if not m.read_only]) == 293
    for path in ("/job.JobInterface/Kill", "/job.FrameInterface/Retry", "/host.HostInterface/Lock",
                 "/show.ShowInterface/CreateShow", "/job.GroupInterface/SetMinCores",
                 "/host.OwnerInterface/TakeOwnership", "/job.JobInterface/LaunchSpecAndWait"):
        assert path not in read_only
    for path in ("/show.ShowInterface/GetShows", "/job.JobInterface/GetFrames",
                 "/job.JobInterface/IsJobPending", "/host.HostInterface/FindHost"):
        assert path in read_only
    for method in catalog:
        assert method.read_only == method.name.startswith(("Get", "Find", "List", "Is", "Has"))


def test_without_a_file_everything_is_allowed(catalog):
    """No policy file: any role, even none, may call every method (existing deployments)."""
    policy = load_policy(None, catalog)
    assert all(policy.allows(role, m) for m in catalog for role in ("", "dashboard"))


def test_readonly_role_may_call_exactly_the_read_only_methods(catalog):
    """@readonly allows every read-only method of the catalog and no mutating one."""
    policy = compile_policy({"roles": {"dashboard": {"allow": ["@readonly"]}}}, catalog)
    for method in catalog:
        assert policy.allows("dashboard", method) is method.read_only


def test_patterns_and_deny(catalog):
    """Service wildcards, method wildcards and deny-over-allow."""
    policy = compile_policy({"roles": {"wrangler": {
        "allow": ["job.JobInterface/*", "*/Find*"], "deny": ["job.JobInterface/Kill"]}}},
        catalog)
    resolve = catalog.resolve
    assert policy.allows("wrangler", resolve("/job.JobInterface/Pause"))
    assert policy.allows("wrangler", resolve("/host.HostInterface/FindHost"))
    assert not policy.allows("wrangler", resolve("/job.JobInterface/Kill"))
    assert not policy.allows("wrangler", resolve("/host.HostInterface/Lock"))


def test_unknown_roles_fall_back_to_default_or_nothing(catalog):
    """Unlisted roles get [default]; without one they may call nothing."""
    with_default = compile_policy({"roles": {"admin": {"allow": ["*"]}},
                                   "default": {"allow": ["@readonly"]}}, catalog)
    without = compile_policy({"roles": {"admin": {"allow": ["*"]}}}, catalog)
    shows, kill = catalog.resolve("/show.ShowInterface/GetShows"), catalog.resolve(
        "/job.JobInterface/Kill")
    assert with_default.allows("intern", shows) and not with_default.allows("intern", kill)
    assert with_default.allows("", shows)
    assert not without.allows("intern", shows)
    assert without.allows("admin", kill)


def test_denied_call_is_403_naming_role_and_method(catalog):
    """A refusal is PERMISSION_DENIED (403, code 7) naming the role and the method."""
    policy = compile_policy({"roles": {"dashboard": {"allow": ["@readonly"]}}}, catalog)
    with pytest.raises(GatewayError) as caught:
        policy.check("dashboard", catalog.resolve("/job.JobInterface/Kill"))
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.message == "role 'dashboard' may not call job.JobInterface/Kill"


@pytest.mark.parametrize(("document", "words"), [
    ({"roles": {"x": {"allow": ["job.JobInterfce/*"]}}}, "roles.x.allow: pattern"),
    ({"roles": {"x": {"allow": ["*"], "deny": ["job.JobInterface/Kil"]}}}, "roles.x.deny"),
    ({"roles": {"x": {"allow": "*"}}}, "must be a list of strings"),
    ({"roles": {"x": {"permit": ["*"]}}}, "only 'allow' and 'deny'"),
    ({"role": {}}, "unknown top-level keys"),
])
def test_bad_policies_are_start_up_errors(catalog, document, words):
    """Typos and wrong shapes are refused with a message saying where."""
    with pytest.raises(PolicyError, match=words):
        compile_policy(document, catalog)


def test_toml_and_json_files_load(tmp_path, catalog):
    """Policy files load from TOML and from JSON (by extension)."""
    (tmp_path / "p.toml").write_text('[roles.ops]\nallow = ["*/Get*"]\n')
    (tmp_path / "p.json").write_text('{"roles": {"ops": {"allow": ["*/Get*"]}}}')
    shows = catalog.resolve("/show.ShowInterface/GetShows")
    for name in ("p.toml", "p.json"):
        assert load_policy(str(tmp_path / name), catalog).allows("ops", shows)


@pytest.mark.parametrize(("name", "content", "words"), [
    ("missing.toml", None, "cannot read"), ("bad.toml", "[roles", "not valid TOML"),
    ("bad.json", "{", "not valid JSON"),
])
def test_unreadable_policy_files(tmp_path, catalog, name, content, words):
    """A missing or unparsable file is a PolicyError naming it."""
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(PolicyError, match=words):
        load_policy(str(tmp_path / name), catalog)


def test_the_shipped_example_is_valid(catalog):
    """etc/auth-policy.example.toml compiles and means what its comments say."""
    policy = load_policy(str(EXAMPLE), catalog)
    kill, pause = catalog.resolve("/job.JobInterface/Kill"), catalog.resolve(
        "/job.JobInterface/Pause")
    assert policy.allows("admin", kill)
    assert policy.allows("wrangler", pause) and not policy.allows("wrangler", kill)
    assert not policy.allows("dashboard", pause)
    assert isinstance(policy, Policy)


WRANGLING = {"roles": {
    "admin": {"allow": ["*"]},
    "wrangler": {"allow": ["@readonly", "job.JobInterface/*"], "deny": ["job.JobInterface/Kill"]},
    "hosts": {"allow": ["host.HostInterface/*"]},
}, "default": {"allow": ["show.ShowInterface/Get*"]}}


@pytest.mark.parametrize(("roles", "path", "allowed"), [
    (("wrangler", "hosts"), "/job.JobInterface/Pause", True),
    (("wrangler", "hosts"), "/host.HostInterface/Lock", True),
    (("wrangler", "hosts"), "/show.ShowInterface/CreateShow", False),
    (("admin", "wrangler"), "/job.JobInterface/Kill", False),  # deny wins across roles
    (("admin", "wrangler"), "/show.ShowInterface/CreateShow", True),
    (("hosts", "offline_access"), "/show.ShowInterface/GetShows", False),  # listed: no default
    (("offline_access", "uma_authorization"), "/show.ShowInterface/GetShows", True),
    (("offline_access",), "/job.JobInterface/Pause", False),
    ((), "/show.ShowInterface/GetShows", True),
])
def test_several_roles_allow_what_any_allows_unless_one_denies(catalog, roles, path, allowed):
    """Any listed role may allow; a deny of any listed role wins; [default] only without one."""
    policy = compile_policy(WRANGLING, catalog)
    assert policy.allows(roles, catalog.resolve(path)) is allowed
    assert policy.allows(list(roles), catalog.resolve(path)) is allowed


def test_a_refusal_names_every_role(catalog):
    """A 403 for a principal with several roles names all of them; with none it says so."""
    policy = compile_policy(WRANGLING, catalog)
    kill = catalog.resolve("/job.JobInterface/Kill")
    with pytest.raises(GatewayError, match=r"roles 'admin', 'wrangler' may not call "
                                           r"job\.JobInterface/Kill"):
        policy.check(("admin", "wrangler"), kill)
    with pytest.raises(GatewayError, match=r"role \(none\) may not call job.JobInterface/Kill"):
        policy.check((), kill)
