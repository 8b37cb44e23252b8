"""Log lines cannot be forged: every text value is escaped; JSON records keep exact values."""

from __future__ import annotations

import io
import json

import grpc
import pytest
from twisted.logger import formatEvent

from opencue_gateway.accesslog import AccessLog, RequestRecord
from opencue_gateway.audit import AuditLog
from opencue_gateway.auth import Principal
from opencue_gateway.logs import JsonLinesObserver, escape

FORGED = "ann\n2026-11-29T06:40:00+0000 [opencue_gateway.access#info] 10.0.0.9 root"


@pytest.mark.parametrize(("value", "shown"), [
    ("ann", "ann"),
    ("José 田中", "José 田中"),
    ("a\nb", "a\\x0ab"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("tab\there", "tab\\x09here"),
    ("del\x7f c1\x85\x9b", "del\\x7f c1\\x85\\x9b"),
    ("line\u2028para\u2029bidi\u202e", "line\\u2028para\\u2029bidi\\u202e"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\x0a", "back\\\\x0a"),
    ("tag\U000e0041", "tag\\U000e0041"),
])
def test_escape_keeps_printable_text_and_escapes_the_rest(value, shown):
    """Printable text in any script stays; controls, separators, quote and backslash are escaped."""
    assert escape(value) == shown


def record(**changes: object) -> RequestRecord:
    fields = dict(client="10.0.0.5", principal="ann", http_method="POST",
                  path="/job.JobInterface/Pause", rpc="job.JobInterface/Pause", status=200,
                  grpc_code=0, duration_ms=1.5, bytes_in=2, bytes_out=3, request_id="r1",
                  traceparent=None, failure="")
    fields.update(changes)
    return RequestRecord(**fields)


def one_line(text: str) -> bool:
    """No character that a terminal or a log reader would take as a line break or control."""
    return all(c.isprintable() for c in text)


def test_the_access_line_escapes_sub_path_and_method(captured_logs):
    """A forged sub, a path with terminal escapes and an odd method stay inside one line."""
    AccessLog().record(record(principal=FORGED, path="/x\x1b[2J\r\n", http_method="P\x00ST"))
    [event] = [e for e in captured_logs if e.get("log_namespace") == "opencue_gateway.access"]
    text = formatEvent(event)
    assert one_line(text), text
    assert "ann\\x0a2026-11-29" in text and '"P\\x00ST /x\\x1b[2J\\x0d\\x0a"' in text
    assert event["access"]["principal"] == FORGED  # the JSON record keeps the exact value


def test_the_audit_line_escapes_and_lists_roles(catalog, captured_logs):
    """The audit text line escapes sub and roles; the record keeps a listed role as a list."""
    principal = Principal(sub=FORGED, role=("wrangler", "x\x1by"), claims={})
    AuditLog().record(principal, catalog.resolve("/job.JobInterface/Pause"),
                      grpc.StatusCode.OK, 0.002, "10.0.0.5")
    [event] = [e for e in captured_logs if e.get("log_namespace") == "opencue_gateway.audit"]
    text = formatEvent(event)
    assert one_line(text), text
    assert "(roles [wrangler, x\\x1by])" in text
    assert event["audit"]["role"] == ["wrangler", "x\x1by"]
    assert event["audit"]["sub"] == FORGED


@pytest.mark.parametrize(("role", "shown", "recorded"), [
    ("admin", "(role admin)", "admin"), ("", "(role (none))", ""), ((), "(roles [])", []),
])
def test_the_audit_line_shows_one_role_as_before(catalog, captured_logs, role, shown, recorded):
    """A single role is written as before; no role says so."""
    AuditLog().record(Principal(sub="ann", role=role, claims={}),
                      catalog.resolve("/job.JobInterface/Kill"), grpc.StatusCode.OK, 0.0, None)
    [event] = [e for e in captured_logs if e.get("log_namespace") == "opencue_gateway.audit"]
    assert shown in formatEvent(event) and event["audit"]["role"] == recorded


def test_json_lines_stay_one_line_with_exact_values(captured_logs):
    """LOG_FORMAT=json writes one line per event, the access record holding the exact sub."""
    AccessLog().record(record(principal=FORGED))
    [event] = [e for e in captured_logs if e.get("log_namespace") == "opencue_gateway.access"]
    stream = io.BytesIO()
    JsonLinesObserver(stream)(event)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["access"]["principal"] == FORGED
