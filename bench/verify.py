"""Checks before measuring: every target answers each scenario correctly, and how alike.

A benchmark of a target that answers 401 or 500 would measure error pages,
so each target gets one real request per reply before any load: 200, a JSON
body (or, for direct gRPC, status OK and the stand-in's exact bytes), and
401 for a forged token (proving ``jwt_authn`` is really in Envoy's chain).
The same pass compares Envoy's JSON with ours field by field; the
differences go in the report, since they are part of what Envoy would
change for clients.  The size of each answer is kept: under load, a 2xx
answer of another size counts as an error (see :mod:`bench.load`).

A production-size reply is checked the same way, but a target that fails
it does not stop the benchmark: the failure is recorded (status and the
start of the body, or the connection error) and reported, since how a
target copes with tens of megabytes is what those scenarios measure.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench import client
from bench.data import Reply
from bench.gateway import HttpServer

MAX_DIFFERENCES = 12
# A production-size answer takes seconds; a hung target still ends the check.
LARGE_TIMEOUT_SECONDS = 300


@dataclass(slots=True)
class Checked:
    """What one target answered to one reply's request."""

    target: str
    reply: str
    status: int
    body_bytes: int | None
    content_type: str
    document: Any = None
    raw: bytes = b""
    error: str | None = None


@dataclass(slots=True)
class Verification:
    """All checks of a run: sizes per process and reply, Envoy-vs-gateway differences.

    ``bodies`` keeps the gateway's answer to each production-size reply, for
    the gzip measurement (:mod:`bench.gzip_levels`).
    """

    checked: list[Checked] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)

    def body_bytes(self, target: str, reply: str) -> int | None:
        """The response body size a process gave for a reply, if checked and answered."""
        found = self.find(target, reply)
        return found.body_bytes if found else None

    def find(self, target: str, reply: str) -> Checked | None:
        """The check of one process on one reply."""
        return next((c for c in self.checked if c.target == target and c.reply == reply), None)


def headers(token: str) -> dict[str, str]:
    """What every HTTP request of the benchmark carries."""
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


class CheckFailedError(RuntimeError):
    """A target answered a check wrongly; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def check_http(server: HttpServer, reply: Reply, token: str, timeout: float = 60) -> Checked:
    """One POST; raises :class:`CheckFailedError` unless it is 200 with a JSON object body."""
    body = json.dumps(reply.request_json).encode()
    answer = client.request(server.url + reply.path, body, headers(token), timeout=timeout)
    content_type = answer.headers.get("content-type", "")
    if answer.status != 200:
        raise CheckFailedError(f"{server.name} answered {reply.path} with {answer.status}: "
                          f"{answer.body[:300]!r}", answer.status)
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "json" not in content_type:
        raise CheckFailedError(f"{server.name} did not answer {reply.path} with JSON "
                          f"({content_type}, {len(answer.body):,} bytes): "
                          f"{answer.body[:300]!r}", answer.status)
    return Checked(server.name, reply.key, answer.status, len(answer.body), content_type,
                   document, answer.body)


def check_http_large(server: HttpServer, reply: Reply, token: str) -> Checked:
    """:func:`check_http` for a production-size reply: a failure is recorded, not raised.

    The parsed document is dropped at once (hundreds of MB of Python
    objects); :func:`compare_answers` compares the bytes.
    """
    try:
        checked = check_http(server, reply, token, timeout=LARGE_TIMEOUT_SECONDS)
    except CheckFailedError as error:
        return Checked(server.name, reply.key, error.status, None, "", error=str(error))
    except (OSError, http.client.HTTPException) as error:
        return Checked(server.name, reply.key, 0, None, "",
                       error=f"{server.name}: no whole answer to {reply.path} ({error!r:.200})")
    checked.document = None
    return checked


def compare_answers(ours: Checked, envoy: Checked) -> list[str]:
    """Envoy's answer against ours: field differences, or why they were not compared.

    Production-size answers are compared byte for byte only: a field walk
    over 60,000 jobs would take longer than measuring them, and finds the
    kinds of difference the 100-job reply already shows.
    """
    if envoy.error or ours.error:
        return [f"{side.target} failed: {side.error}" for side in (ours, envoy) if side.error]
    if ours.raw == envoy.raw:
        return []
    if ours.document is None or envoy.document is None:
        return [f"bytes differ (ours {ours.body_bytes:,}, Envoy {envoy.body_bytes:,}); "
                "not compared field by field at this size"]
    differences = json_differences(ours.document, envoy.document)
    return differences or ["same document, but the bytes differ (spacing or number form)"]


def check_forged_token(server: HttpServer, reply: Reply) -> None:
    """A token signed with another secret must get 401: authentication is really on."""
    import jwt

    forged = jwt.encode({"sub": "intruder", "exp": 4_102_444_800}, "not-the-secret-" * 3,
                        algorithm="HS256")
    answer = client.request(server.url + reply.path, b"{}", headers(forged), timeout=30)
    if answer.status != 401:
        raise RuntimeError(f"{server.name} answered a forged token with {answer.status}, "
                           "not 401: its JWT check is not active")


def check_grpc(address: str, reply: Reply) -> Checked:
    """One direct gRPC call: status OK and exactly the stand-in's canned bytes."""
    expected = reply.reply.SerializeToString()
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", -1)]) as ch:
        raw = ch.unary_unary(reply.path)(reply.request.SerializeToString(), timeout=60)
    if raw != expected:
        raise RuntimeError(f"the stand-in answered {reply.path} ({reply.key}) with "
                           f"{len(raw)} bytes, not its canned {len(expected)}")
    return Checked("grpc", reply.key, 200, len(raw), "application/grpc")


def json_differences(ours: Any, theirs: Any, limit: int = MAX_DIFFERENCES) -> list[str]:
    """Where two JSON documents differ, with list indices folded (``frames[]``) and counted.

    Each kind of difference at one path is reported once, with the first
    example and how often it occurred.
    """
    found: Counter[str] = Counter()
    examples: dict[str, str] = {}
    _walk(ours, theirs, "", found, examples)
    lines = []
    for key, count in found.most_common(limit):
        times = f" ({count}x)" if count > 1 else ""
        lines.append(f"{key}{examples[key]}{times}")
    return lines


def _walk(ours: Any, theirs: Any, path: str, found: Counter[str], examples: dict[str, str]) -> None:
    """Recursive part of :func:`json_differences`."""

    def note(key: str, example: str) -> None:
        found[key] += 1
        examples.setdefault(key, example)

    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in list(ours) + [k for k in theirs if k not in ours]:
            here = f"{path}.{key}" if path else key
            if key not in theirs:
                note(f"{here}: Envoy omits it", f"; ours prints {_short(ours[key])}")
            elif key not in ours:
                note(f"{here}: ours omits it", f"; Envoy prints {_short(theirs[key])}")
            else:
                _walk(ours[key], theirs[key], here, found, examples)
        if [k for k in ours if k in theirs] != [k for k in theirs if k in ours]:
            note(f"{path or '(top)'}: field order differs", "")
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            note(f"{path}: item count differs", f"; ours {len(ours)}, Envoy {len(theirs)}")
        for a, b in zip(ours, theirs, strict=False):
            _walk(a, b, path + "[]", found, examples)
    elif ours != theirs or type(ours) is not type(theirs):
        note(f"{path}: values differ", f"; e.g. ours {_short(ours)}, Envoy {_short(theirs)}")


def _short(value: Any) -> str:
    """A value as JSON, cut short for a one-line report."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
