"""The audit log on the request path: one record per mutating call, whatever its outcome."""

from __future__ import annotations

import grpc
import pytest

from tests.conftest import make_token
from tests.unit.app.support import GET_SHOWS, KILL, PAUSE, audit_records, raw_head


def test_a_mutation_is_recorded_with_who_what_and_how_long(gw, captured_logs):
    """A Pause is recorded once with sub, role, method, OK, the clock's duration and the
    client address; reads are not audited."""
    gw.cuebot.behave(PAUSE, delay=0.25)
    answered = gw.send("POST", PAUSE, '{"job": {"id": "j"}}',
                       token=make_token(sub="ann", role="wrangler"))
    gw.advance(0.25)
    assert gw.result(answered).status == 200
    gw.post(GET_SHOWS)
    [record] = audit_records(captured_logs)
    assert {k: v for k, v in record.items() if k != "time"} == {
        "sub": "ann", "role": "wrangler", "method": "job.JobInterface/Pause", "code": "OK",
        "duration_ms": 250.0, "client": "10.0.0.5"}
    assert record["time"].endswith("+00:00")


@pytest.mark.parametrize(("setup", "body", "code"), [
    ("cuebot", "{}", "FAILED_PRECONDITION"),
    (None, '{"job": "not an object"}', "INVALID_ARGUMENT"),
    ("broken", "{}", "INTERNAL"),
    ("verb", None, "UNIMPLEMENTED"),
], ids=["cuebot-error", "malformed", "unexpected", "wrong-verb"])
def test_failed_mutations_are_recorded_with_their_code(gw, captured_logs, setup, body, code):
    """A mutation refused by Cuebot, malformed, broken inside the gateway or sent with the
    wrong verb is still recorded, with the code the client got."""
    if setup == "cuebot":
        gw.cuebot.behave(PAUSE, error=(grpc.StatusCode.FAILED_PRECONDITION, "job is finished"))
    if setup == "broken":
        gw.cuebot.behave(PAUSE, reply_for=lambda call: {}["missing"])
    if setup == "verb":
        assert gw.request("GET", PAUSE, None, token=make_token()).status == 405
    else:
        assert gw.post(PAUSE, body).status >= 400
    assert [r["code"] for r in audit_records(captured_logs)] == [code]


def test_a_mutation_refused_by_policy_is_recorded(make_gateway, captured_logs, tmp_path):
    """A Kill the role may not call is recorded as PERMISSION_DENIED."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.viewer]\nallow = ["@readonly"]\n')
    gw = make_gateway(AUTH_POLICY_FILE=str(policy))
    assert gw.post(KILL, token=make_token(sub="eve", role="viewer")).status == 403
    [record] = audit_records(captured_logs)
    assert (record["sub"], record["role"], record["code"]) == ("eve", "viewer",
                                                               "PERMISSION_DENIED")


def test_a_mutation_whose_client_left_is_recorded_as_cancelled(gw, captured_logs):
    """A Pause whose client disconnected before the answer is recorded as CANCELLED when it
    is abandoned, even though Cuebot goes on to do it."""
    gw.cuebot.behave(PAUSE, delay=1)
    client = gw.raw(raw_head(PAUSE) + b"Content-Length: 2\r\n\r\n{}")
    client.close()
    gw.settle()
    assert [r["code"] for r in audit_records(captured_logs)] == ["CANCELLED"]
    gw.advance(1)
    assert len(gw.cuebot.calls(PAUSE)) == 1
    assert len(audit_records(captured_logs)) == 1
