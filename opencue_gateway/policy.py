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

    [default]            # principals whose role is not listed, or who have none
    allow = ["@readonly"]

Patterns are shell-style (``*``, ``?``) and match ``package.Service/Method``;
``@readonly`` stands for every read-only method (see
:func:`opencue_gateway.catalog.is_read_only_name`).  ``deny`` wins over
``allow``.  Without a ``[default]`` section, roles that are not listed may call
nothing.  Everything is resolved against the catalog at start-up into plain
sets, so a request costs one set lookup; a pattern that matches no method is
a start-up error, because a typo in a ``deny`` list would silently allow what
it meant to forbid.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from collections.abc import Iterable, Mapping
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
class Policy:
    """Allowed method paths per role, plus the set for roles not listed.

    ``default`` is None when every principal may call everything (no file).
    """

    roles: Mapping[str, frozenset[str]]
    default: frozenset[str] | None

    @classmethod
    def allow_all(cls) -> Policy:
        """The policy without a file: every authenticated principal may call everything."""
        return cls(roles={}, default=None)

    def allows(self, role: str, method: RpcMethod) -> bool:
        """May a principal with this role call this method?"""
        allowed = self.roles.get(role, self.default)
        return allowed is None or method.path in allowed

    def check(self, role: str, method: RpcMethod) -> None:
        """Raise a 403 naming the role and the method unless the call is allowed."""
        if not self.allows(role, method):
            shown = repr(role) if role else "(none)"
            raise GatewayError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"role {shown} may not call {method.path.lstrip('/')}",
                kind="role",
            )


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
        default=frozenset() if default is None else _rule(default, catalog, "default"),
    )


def _rule(rule: Any, catalog: MethodCatalog, where: str) -> frozenset[str]:
    """The set of method paths one role may call: allow minus deny."""
    if not isinstance(rule, dict) or set(rule) - {"allow", "deny"}:
        raise PolicyError(f"{where} must have only 'allow' and 'deny' lists")
    allowed = _expand(rule.get("allow", []), catalog, f"{where}.allow")
    denied = _expand(rule.get("deny", []), catalog, f"{where}.deny")
    return frozenset(allowed - denied)


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
