"""Which roles may call which RPCs: the authorization policy.

Without a policy file every authenticated principal may call every method,
as with the Go gateway, so existing deployments keep working.  A policy file
(``AUTH_POLICY_FILE``, TOML or JSON) maps roles to method patterns::

    [roles.admin]
    allow = ["*"]

    [roles.dashboard]
    allow = ["@readonly"]

    [roles.wrangler]
    allow = ["@readonly", "job.JobInterface/*", "job.FrameInterface/Retry"]
    deny = ["job.JobInterface/Kill"]

    [default]            # principals none of whose roles is listed, or who have none
    allow = ["@readonly"]

Patterns are shell-style (``*``, ``?``) and match ``package.Service/Method``;
``@readonly`` stands for every read-only method (see
:func:`opencue_gateway.catalog.is_read_only_name`).  ``deny`` wins over
``allow``.  A principal may hold several roles (an identity provider's token
lists them): a call is allowed when any of its listed roles allows it and
none of them denies it.  Roles that are not listed are ignored (tokens carry
roles like ``offline_access`` that mean nothing here); ``[default]`` applies
when none is listed, and without a ``[default]`` section such principals may
call nothing.  Everything is resolved against the catalog at start-up into
plain sets, so a request costs a few set lookups; a pattern that matches no
method is a start-up error, because a typo in a ``deny`` list would silently
allow what it meant to forbid.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from opencue_gateway.catalog import MethodCatalog, RpcMethod
from opencue_gateway.errors import GatewayError

READ_ONLY = "@readonly"


class PolicyError(ValueError):
    """The policy file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    """The method paths one role may call and the ones it may not (deny wins, across roles)."""

    allow: frozenset[str]
    deny: frozenset[str]


@dataclass(frozen=True, slots=True)
class Policy:
    """The rule of each role, plus the rule for principals with no listed role.

    ``default`` is None when every principal may call everything (no file).
    """

    roles: Mapping[str, Rule]
    default: Rule | None

    @classmethod
    def allow_all(cls) -> Policy:
        """The policy without a file: every authenticated principal may call everything."""
        return cls(roles={}, default=None)

    def allows(self, roles: str | Sequence[str], method: RpcMethod) -> bool:
        """May a principal holding these roles (or this one role) call this method?"""
        rules = [self.roles[r] for r in _as_roles(roles) if r in self.roles]
        if not rules:
            if self.default is None:
                return True
            rules = [self.default]
        return (any(method.path in rule.allow for rule in rules)
                and not any(method.path in rule.deny for rule in rules))

    def check(self, roles: str | Sequence[str], method: RpcMethod) -> None:
        """Raise a 403 naming the roles and the method unless the call is allowed."""
        if not self.allows(roles, method):
            held = _as_roles(roles)
            shown = ", ".join(repr(r) for r in held) or "(none)"
            raise GatewayError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"role{'s' if len(held) > 1 else ''} {shown} may not call "
                f"{method.path.lstrip('/')}",
                kind="role",
            )


def _as_roles(roles: str | Sequence[str]) -> tuple[str, ...]:
    """One role ('' for none) or several, as a tuple."""
    if isinstance(roles, str):
        return (roles,) if roles else ()
    return tuple(roles)


def load_policy(path: str | None, catalog: MethodCatalog) -> Policy:
    """Read and resolve a policy file; no file means allow everything."""
    if path is None:
        return Policy.allow_all()
    document = _read(Path(path))
    return compile_policy(document, catalog)


def _read(path: Path) -> dict[str, Any]:
    """Parse the file as JSON (``.json``) or TOML (anything else)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise PolicyError(f"cannot read {str(path)!r}: {reason}") from None
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        document = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise PolicyError(f"{str(path)!r} is not valid {kind}: {error}") from None
    if not isinstance(document, dict):
        raise PolicyError("the policy must be a table/object with 'roles' and 'default'")
    return document


def compile_policy(document: Mapping[str, Any], catalog: MethodCatalog) -> Policy:
    """Resolve every pattern of a parsed policy against the catalog."""
    unknown = set(document) - {"roles", "default"}
    if unknown:
        raise PolicyError(f"unknown top-level keys {sorted(unknown)}; use 'roles' and 'default'")
    roles_doc = document.get("roles", {})
    if not isinstance(roles_doc, dict):
        raise PolicyError("'roles' must be a table of role names")
    roles = {
        str(name): _rule(rule, catalog, f"roles.{name}") for name, rule in roles_doc.items()
    }
    default = document.get("default")
    return Policy(
        roles=roles,
        default=Rule(frozenset(), frozenset()) if default is None
        else _rule(default, catalog, "default"),
    )


def _rule(rule: Any, catalog: MethodCatalog, where: str) -> Rule:
    """The method paths one role may call, and those it may not."""
    if not isinstance(rule, dict) or set(rule) - {"allow", "deny"}:
        raise PolicyError(f"{where} must have only 'allow' and 'deny' lists")
    return Rule(
        allow=frozenset(_expand(rule.get("allow", []), catalog, f"{where}.allow")),
        deny=frozenset(_expand(rule.get("deny", []), catalog, f"{where}.deny")),
    )


def _expand(patterns: Any, catalog: MethodCatalog, where: str) -> set[str]:
    """Method paths matched by a list of patterns; every pattern must match something."""
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise PolicyError(f"{where} must be a list of strings")
    paths: set[str] = set()
    for pattern in patterns:
        matched = set(_match(pattern, catalog))
        if not matched:
            raise PolicyError(f"{where}: pattern {pattern!r} matches no method")
        paths |= matched
    return paths


def _match(pattern: str, catalog: MethodCatalog) -> Iterable[str]:
    """Paths of the methods one pattern names."""
    if pattern == READ_ONLY:
        return (m.path for m in catalog if m.read_only)
    bare = pattern.lstrip("/")
    return (m.path for m in catalog if fnmatch.fnmatchcase(m.path[1:], bare))
