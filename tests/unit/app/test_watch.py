"""Watch streams on the request path, in memory on the fake clock: the events, their ids,
sharing one poll between watchers, and what polls cost Cuebot (see also test_watch_ends.py)."""

from __future__ import annotations

import grpc
import pytest
from opencue_proto import show_pb2

from opencue_gateway.sandbox.seed import seeded_farm
from opencue_gateway.watch import wants_stream
from tests.conftest import assert_error, make_token
from tests.memory import MemoryGateway
from tests.unit.app.support import GET_JOBS, GET_SHOWS, PAUSE, access_records, scrape

JOB = "00000000-0000-0000-0000-000000000001"


def shows_reply(name: str) -> show_pb2.ShowGetShowsResponse:
    """A GetShows reply naming one show."""
    return show_pb2.ShowGetShowsResponse(shows=show_pb2.ShowSeq(shows=[show_pb2.Show(name=name)]))


def names_by_call(gw: MemoryGateway, names: list[str]) -> None:
    """GetShows answers the n-th call with names[n - 1] (the last name from then on)."""
    gw.cuebot.behave(GET_SHOWS, reply_for=lambda n: shows_reply(names[min(n, len(names)) - 1]))


def shown(event) -> str:
    """The show name a GetShows event carries."""
    return event.json()["shows"]["shows"][0]["name"]


def test_the_snapshot_is_the_unary_reply_byte_for_byte(gw):
    """The first event is a snapshot whose data is exactly what the unary call prints, with
    id 1, on a 200 text/event-stream that is neither cached nor buffered."""
    gw.cuebot.behave(GET_SHOWS, reply=shows_reply("testing"))
    unary = gw.post(GET_SHOWS, headers={"Accept-Encoding": "identity"})
    watch = gw.watch(GET_SHOWS)
    assert watch.status == 200
    assert watch.header("content-type") == "text/event-stream; charset=utf-8"
    assert watch.header("cache-control") == "no-store"
    assert watch.header("x-accel-buffering") == "no"
    assert watch.header("content-length") is None and watch.header("content-encoding") is None
    [snapshot] = watch.events
    assert (snapshot.event, snapshot.id) == ("snapshot", "1")
    assert snapshot.data.encode() == unary.body
    assert watch.received == b"id: 1\nevent: snapshot\ndata: " + unary.body + b"\n\n"


def test_each_change_carries_the_whole_new_reply_and_no_change_sends_nothing(gw):
    """Polls that answer the same bytes send nothing; a different answer is a change event
    with the whole new reply; ids count up."""
    names_by_call(gw, ["a", "a", "b", "b", "b", "c"])
    watch = gw.watch(GET_SHOWS + "?interval=1s")
    gw.advance(5)
    assert len(gw.cuebot.calls(GET_SHOWS)) == 6
    assert [(e.event, e.id, shown(e)) for e in watch.events] == [
        ("snapshot", "1", "a"), ("change", "2", "b"), ("change", "3", "c")]


def test_a_reply_with_a_line_break_stays_one_data_line(gw):
    """Line breaks inside the reply are JSON escapes, so each event's data is one line."""
    gw.cuebot.behave(GET_SHOWS, reply=shows_reply("two\nlines\r"))
    watch = gw.watch(GET_SHOWS)
    assert shown(watch.events[0]) == "two\nlines\r"
    assert watch.received.count(b"\n") == 4  # id, event, data, blank


@pytest.mark.parametrize(("query", "interval", "polls_in_6s"), [
    ("", "5s", 2), ("?interval=2s", "2s", 4), ("?interval=1500ms", "1.5s", 5),
    ("?interval=100ms", "1s", 7), ("?interval=0", "1s", 7),
])
def test_the_interval_comes_from_the_query_with_a_floor(gw, query, interval, polls_in_6s):
    """?interval= sets how often Cuebot is asked (WATCH_INTERVAL without it); shorter than
    WATCH_MIN_INTERVAL is raised to it; the response says the interval in effect."""
    watch = gw.watch(GET_SHOWS + query)
    gw.advance(6)
    assert watch.header("opencue-gateway-watch-interval") == interval
    assert len(gw.cuebot.calls(GET_SHOWS)) == polls_in_6s


def test_the_default_interval_and_floor_are_settings(make_gateway):
    """WATCH_INTERVAL and WATCH_MIN_INTERVAL set the default and the floor."""
    gw = make_gateway(WATCH_INTERVAL="3s", WATCH_MIN_INTERVAL="2s")
    plain = gw.watch(GET_SHOWS)
    quick = gw.watch(GET_SHOWS + "?interval=1s")
    assert plain.header("opencue-gateway-watch-interval") == "3s"
    assert quick.header("opencue-gateway-watch-interval") == "2s"


@pytest.mark.parametrize(("query", "words"), [
    ("?interval=soon", "the interval query parameter: expected a duration"),
    ("?interval=1s&interval=2s", "give the interval query parameter once"),
])
def test_a_bad_interval_is_400(gw, query, words):
    """A malformed or repeated interval is a JSON 400 naming it; nothing is polled."""
    watch = gw.watch(GET_SHOWS + query)
    gw.settle()
    assert watch.status == 400 and words in watch.json()["message"]
    assert gw.cuebot.received == []


def test_fifty_watchers_of_one_read_cost_one_poll_per_interval(gw):
    """Acceptance: 50 watchers of one read for 6 s at interval=1s cost at most 10 Cuebot
    calls (7: at 0 s and after each second), and every watcher gets its snapshot."""
    names_by_call(gw, ["a", "a", "b"])
    watches = [gw.watch(GET_SHOWS + "?interval=1s", token=make_token(sub=f"user{i % 5}"))
               for i in range(50)]
    gw.advance(6)
    assert len(gw.cuebot.calls(GET_SHOWS)) == 7
    for watch in watches:
        assert [(e.event, shown(e)) for e in watch.events] == [("snapshot", "a"),
                                                               ("change", "b")]
    metrics = scrape(gw)
    assert metrics[("opencue_gateway_watches", ())] == 50
    assert metrics[("opencue_gateway_watch_pollers", ())] == 1
    assert metrics[("opencue_gateway_watch_polls_total",
                    (("grpc_code", "OK"), ("rpc", GET_SHOWS[1:])))] == 7
    assert metrics[("opencue_gateway_watch_changes_pushed_total", (("rpc", GET_SHOWS[1:]),))] == 50


def test_a_watcher_joining_a_running_poller_gets_its_latest_reply_at_once(gw):
    """A newcomer's snapshot is the poller's latest reply, with no call of its own; from then
    on it hears the same changes as everyone."""
    names_by_call(gw, ["a", "b", "c"])
    first = gw.watch(GET_SHOWS + "?interval=2s")
    gw.advance(3)
    second = gw.watch(GET_SHOWS + "?interval=2s")
    assert len(gw.cuebot.calls(GET_SHOWS)) == 2
    assert [(e.event, shown(e)) for e in second.events] == [("snapshot", "b")]
    gw.advance(1)
    assert [shown(e) for e in first.events] == ["a", "b", "c"]
    assert [(e.event, shown(e)) for e in second.events] == [("snapshot", "b"), ("change", "c")]


@pytest.mark.parametrize("other", [
    {"body": '{"x": 1}'},
    {"path": GET_SHOWS + "?interval=2s"},
    {"headers": {"Grpc-Metadata-Site": "paris"}},
], ids=["body", "interval", "metadata"])
def test_a_different_question_gets_its_own_poller(gw, other):
    """Watchers share a poller only for the same body, interval and forwarded metadata; the
    caller, its request id and other headers do not matter."""
    gw.watch(GET_SHOWS + "?interval=1s", token=make_token(sub="ann"))
    gw.watch(GET_SHOWS + "?interval=1s", token=make_token(sub="bob"),
             headers={"X-Request-Id": "other", "User-Agent": "x"})
    assert len(gw.gateway.watches.pollers) == 1
    gw.watch(other.get("path", GET_SHOWS + "?interval=1s"), body=other.get("body", "{}"),
             headers=other.get("headers"))
    assert len(gw.gateway.watches.pollers) == 2
    assert len(gw.cuebot.calls(GET_SHOWS)) == 2


def test_the_poll_carries_forwarded_metadata_and_its_own_request_id(gw):
    """Cuebot gets the Grpc-Metadata-* headers (part of the sharing key) and a request id
    naming the watch poller, and neither any one watcher's sub nor its address."""
    gw.watch(GET_SHOWS, token=make_token(sub="ann"), headers={"Grpc-Metadata-Site": "paris"})
    [call] = gw.cuebot.calls(GET_SHOWS)
    assert call.metadata["site"] == "paris"
    assert call.metadata["x-request-id"].startswith("watch-")
    assert "opencue-gateway-sub" not in call.metadata
    assert "x-forwarded-for" not in call.metadata


def test_metadata_grpc_cannot_carry_is_a_400_and_starts_no_poller(gw):
    """A Grpc-Metadata-* header holding what gRPC metadata cannot carry is refused as for a
    unary call, and leaves nothing running."""
    watch = gw.watch(GET_SHOWS, headers={"Grpc-Metadata-Site": "caf\u00e9"})
    assert watch.status == 400 and "Grpc-Metadata-site" in watch.json()["message"]
    assert not gw.gateway.watches.pollers and not gw.gateway.watches.watchers
    assert gw.cuebot.received == []


def test_the_last_watcher_leaving_stops_the_poller(gw):
    """When every watcher has gone, no more polls are made and the pollers and watches
    gauges are back to 0; each left as client_gone."""
    gw.cuebot.behave(GET_SHOWS, delay=0.5)
    first = gw.watch(GET_SHOWS + "?interval=1s")
    second = gw.watch(GET_SHOWS + "?interval=1s")
    gw.advance(1.6)  # the second poll is in flight
    first.close()
    gw.advance(0.1)
    assert gw.gateway.watches.pollers
    second.close()
    gw.settle()
    calls = len(gw.cuebot.calls(GET_SHOWS))
    gw.advance(10)
    assert len(gw.cuebot.calls(GET_SHOWS)) == calls == 2
    metrics = scrape(gw)
    assert metrics[("opencue_gateway_watch_pollers", ())] == 0
    assert metrics[("opencue_gateway_watches", ())] == 0
    assert metrics[("opencue_gateway_watches_ended_total", (("reason", "client_gone"),))] == 2
    assert first.finished and second.finished


def test_a_connection_lost_under_a_stream_finishes_it_cleanly(gw, captured_logs):
    """When the transport stops the watcher (its connection is going), the watch ends as
    client_gone and the request finishes without complaint."""
    watch = gw.watch(GET_SHOWS)
    [watcher] = gw.gateway.watches.watchers
    watcher.stopProducing()
    gw.settle()
    assert watch.finished and not gw.gateway.watches.watchers
    assert [e for e in captured_logs if e.get("log_failure") is not None] == []
    assert scrape(gw)[("opencue_gateway_watches_ended_total", (("reason", "client_gone"),))] == 1


def test_polls_go_through_the_fan_in(make_gateway):
    """With READ_CACHE_TTL a watch's first poll is answered by the unary read just made: the
    same fan-in as unary calls."""
    gw = make_gateway(READ_CACHE_TTL="10s")
    gw.cuebot.behave(GET_SHOWS, reply=shows_reply("testing"))
    gw.post(GET_SHOWS, headers={"Accept-Encoding": "identity"})
    watch = gw.watch(GET_SHOWS)
    assert shown(watch.events[0]) == "testing"
    assert len(gw.cuebot.calls(GET_SHOWS)) == 1
    assert scrape(gw)[("opencue_gateway_cached_reads_total", (("rpc", GET_SHOWS[1:]),))] == 1


def test_a_failed_poll_is_an_error_event_and_the_stream_goes_on(gw):
    """An unavailable Cuebot is one error event (the usual JSON error body), not one per
    poll; when it answers again the next change follows as usual."""
    gw.cuebot.behave(GET_SHOWS, reply=shows_reply("a"))
    watch = gw.watch(GET_SHOWS + "?interval=1s")
    gw.cuebot.reachable = False
    gw.advance(3)
    gw.cuebot.reachable = True
    gw.cuebot.behave(GET_SHOWS, reply=shows_reply("b"))
    gw.advance(1)
    assert watch.kinds() == ["snapshot", "error", "change"]
    error = watch.events[1].json()
    assert error == {"code": 14, "message": "Cuebot at cuebot.memory:8443 could not be reached",
                     "details": [], "error": "Cuebot at cuebot.memory:8443 could not be reached"}
    assert [e.id for e in watch.events] == ["1", "2", "3"]
    assert not watch.finished


def test_an_unexpected_failure_is_an_internal_error_event_with_an_incident_id(gw,
                                                                           captured_logs):
    """A poll that breaks inside the gateway is an error event with the fixed internal
    message and an incident id, which the log names with the traceback; the stream goes on."""
    gw.cuebot.behave(GET_SHOWS, reply_for=lambda n: 1 / 0)
    watch = gw.watch(GET_SHOWS + "?interval=1s")
    assert watch.kinds() == ["error"]
    error = watch.events[0].json()
    assert error["code"] == 13 and "ZeroDivision" not in error["message"]
    incident = error["message"].split("incident ")[1].split(")")[0]
    [logged] = [e for e in captured_logs if e.get("log_failure") is not None]
    assert logged["incident"] == incident
    assert logged["log_failure"].check(ZeroDivisionError)
    assert not watch.finished


def test_a_stream_can_begin_with_an_error_and_its_first_reply_is_the_snapshot(gw):
    """When the first poll fails and polling may cure it, the stream begins with the error;
    the first reply that comes is still a snapshot."""
    gw.cuebot.reachable = False
    watch = gw.watch(GET_SHOWS + "?interval=1s")
    assert watch.status == 200 and watch.kinds() == ["error"]
    gw.cuebot.reachable = True
    gw.advance(1)
    assert watch.kinds() == ["error", "snapshot"]


def test_a_watch_of_something_missing_is_the_unary_404(gw):
    """A first poll that fails for good (not found) answers the watch as the unary call
    would: the JSON error with its status, and no stream."""
    gw.cuebot.behave("/job.JobInterface/GetJob", error=(grpc.StatusCode.NOT_FOUND, "no job"))
    watch = gw.watch("/job.JobInterface/GetJob", '{"id": "nope"}')
    assert watch.status == 404
    assert watch.json() == {"code": 5, "message": "no job", "details": [], "error": "no job"}
    gw.advance(60)
    assert len(gw.cuebot.received) == 1
    assert scrape(gw)[("opencue_gateway_watches_ended_total", (("reason", "error"),))] == 1


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED])
def test_a_poll_failing_for_good_ends_the_stream(gw, code):
    """A job deleted (or Cuebot denying the read) while watched: an error event, then an end
    event with reason "error", then the stream closes."""
    gw.cuebot.behave(GET_SHOWS, reply=shows_reply("a"))
    watch = gw.watch(GET_SHOWS + "?interval=1s")
    gw.cuebot.behave(GET_SHOWS, error=(code, "gone"))
    gw.advance(1)
    assert watch.kinds() == ["snapshot", "error", "end"]
    assert watch.events[1].json()["code"] == code.value[0]
    assert watch.events[2].json() == {"reason": "error", "message": "gone"}
    assert watch.finished and watch.complete
    gw.advance(10)
    assert len(gw.cuebot.calls(GET_SHOWS)) == 2


def test_ids_continue_after_last_event_id_with_a_fresh_snapshot(gw):
    """A reconnect with Last-Event-ID gets a snapshot of the current state, its id following
    the given one; an id that is not a number is ignored."""
    names_by_call(gw, ["a", "b"])
    gw.watch(GET_SHOWS + "?interval=1s")
    gw.advance(1)
    again = gw.watch(GET_SHOWS + "?interval=1s", headers={"Last-Event-ID": "41"})
    junk = gw.watch(GET_SHOWS + "?interval=1s", headers={"Last-Event-ID": "x1"})
    assert [(e.event, e.id, shown(e)) for e in again.events] == [("snapshot", "42", "b")]
    assert [(e.event, e.id) for e in junk.events] == [("snapshot", "1")]


def test_heartbeats_keep_the_stream_alive(make_gateway):
    """A comment line goes down every WATCH_HEARTBEAT, with or without events."""
    gw = make_gateway(WATCH_HEARTBEAT="15s")
    watch = gw.watch(GET_SHOWS + "?interval=1h")
    gw.advance(14)
    assert watch.reader.comments == []
    gw.advance(1)
    assert watch.reader.comments == ["heartbeat"]
    gw.advance(30)
    assert watch.reader.comments == ["heartbeat"] * 3
    assert watch.kinds() == ["snapshot"]


def test_http_timeout_does_not_cut_a_stream(make_gateway):
    """HTTP_TIMEOUT bounds a watch until its first event; the stream then lives on."""
    gw = make_gateway(HTTP_TIMEOUT="10s")
    names_by_call(gw, ["a"] * 50 + ["b"])
    watch = gw.watch(GET_SHOWS + "?interval=2s")
    gw.advance(100)
    assert watch.kinds() == ["snapshot", "change"] and not watch.finished


def test_http_timeout_still_bounds_the_wait_for_the_first_answer(make_gateway):
    """A first poll slower than HTTP_TIMEOUT gets the unary call's 504, and the poller stops."""
    gw = make_gateway(HTTP_TIMEOUT="10s", GRPC_TIMEOUT="30s")
    gw.cuebot.behave(GET_SHOWS, delay=20)
    watch = gw.watch(GET_SHOWS)
    gw.advance(10)
    assert watch.status == 504
    assert "HTTP_TIMEOUT" in watch.json()["message"]
    gw.advance(60)
    assert not gw.gateway.watches.pollers and not gw.gateway.watches.watchers


def test_a_slow_reader_gets_the_latest_state_when_it_catches_up(gw):
    """While the connection cannot take more, changes are not queued: when it can again, the
    latest reply goes down as one change (and an error that came after it)."""
    names_by_call(gw, ["a", "b", "c", "d"])
    watch = gw.watch(GET_SHOWS + "?interval=1s")
    [watcher] = gw.gateway.watches.watchers
    watcher.pauseProducing()
    gw.advance(3)
    gw.cuebot.reachable = False
    gw.advance(1)
    assert watch.kinds() == ["snapshot"]
    watcher.resumeProducing()
    gw.settle()
    assert [(e.event, e.id) for e in watch.events] == [("snapshot", "1"), ("change", "2"),
                                                       ("error", "3")]
    assert shown(watch.events[1]) == "d"


def test_unknown_request_fields_are_named_on_the_stream(gw):
    """The ignored-fields header of the unary call comes with the stream's head."""
    watch = gw.watch(GET_SHOWS, '{"nonsense": 1}')
    assert watch.header("opencue-gateway-ignored-fields") == "nonsense"


def test_the_access_log_records_a_stream_when_it_ends(gw, captured_logs):
    """One access line when the stream is over: status 200, its duration and the events it
    sent; the stream is counted as a request but not timed."""
    names_by_call(gw, ["a", "b"])
    watch = gw.watch(GET_SHOWS + "?interval=1s", token=make_token(sub="ann"))
    gw.advance(30)
    assert access_records(captured_logs) == []
    watch.close()
    gw.settle()
    [record] = access_records(captured_logs)
    assert (record["rpc"], record["status"], record["principal"]) == (GET_SHOWS[1:], 200, "ann")
    assert record["events"] == 2 and record["duration_ms"] == 30000.0
    metrics = scrape(gw)
    assert metrics[("opencue_gateway_requests_total",
                    (("code", "200"), ("rpc", GET_SHOWS[1:])))] == 1
    assert ("opencue_gateway_request_duration_seconds_count",
            (("rpc", GET_SHOWS[1:]),)) not in metrics


def test_a_unary_access_line_has_no_events(gw, captured_logs):
    """Ordinary requests keep their access record, with no events."""
    gw.post(GET_SHOWS)
    [record] = access_records(captured_logs)
    assert record["events"] is None


def test_cors_works_for_a_fetch_based_reader(make_gateway):
    """From an allowed origin the stream carries the CORS headers and exposes its interval."""
    gw = make_gateway(CORS_ORIGINS="https://cueweb.example")
    watch = gw.watch(GET_SHOWS, headers={"Origin": "https://cueweb.example"})
    assert watch.header("access-control-allow-origin") == "https://cueweb.example"
    assert "Opencue-Gateway-Watch-Interval" in watch.header("access-control-expose-headers")


def test_a_mutating_method_cannot_be_watched(gw, captured_logs):
    """Pause with Accept: text/event-stream is a 400 naming the reason; Cuebot is not called
    and the refused call is audited like any mutating call."""
    watch = gw.watch(PAUSE, f'{{"job": {{"id": "{JOB}"}}}}')
    assert watch.status == 400
    body = watch.json()
    assert body["code"] == 3
    assert body["message"] == ("job.JobInterface/Pause changes the farm and cannot be watched: "
                               "only read-only methods answer Accept: text/event-stream")
    assert gw.cuebot.received == []
    audit = [e["audit"] for e in captured_logs if "audit" in e]
    assert [(a["method"], a["code"]) for a in audit] == [(PAUSE[1:], "INVALID_ARGUMENT")]


def test_a_watch_needs_a_token_and_post(gw):
    """Watches authenticate like calls (401) and answer POST only (405)."""
    response = gw.request("POST", GET_SHOWS, token="nope", headers={"Accept": "text/event-stream"})
    assert_error(response, 401, 16, "not a well-formed JWT")
    response = gw.request("GET", GET_SHOWS, None, token=make_token(),
                          headers={"Accept": "text/event-stream"})
    assert_error(response, 405, 12, "only answers POST")
    assert gw.cuebot.received == []


def test_opening_a_watch_counts_against_the_rate_limit(make_gateway):
    """Opening a stream is one request for the rate limiter; events are not requests."""
    gw = make_gateway(RATE_LIMIT_RPS="1", RATE_LIMIT_BURST="2")
    first = gw.watch(GET_SHOWS + "?interval=1s")
    gw.advance(0.1)
    second = gw.watch(GET_SHOWS, body='{"a": 1}')
    third = gw.watch(GET_SHOWS, body='{"a": 2}')
    assert (first.status, second.status, third.status) == (200, 200, 429)
    gw.advance(5)
    assert len(first.events) == 1 and not first.finished


@pytest.mark.parametrize(("accept", "wanted"), [
    (b"text/event-stream", True),
    (b"application/json, TEXT/Event-Stream;q=0.5", True),
    (b"text/event-stream; q=0", False),
    (b"text/event-stream;q=0.0, application/json", False),
    (b"application/json", False),
    (b"*/*", False),
    (None, False),
])
def test_which_accept_headers_ask_for_a_stream(accept, wanted):
    """text/event-stream in Accept, in any case and with any q but 0, asks for a watch."""
    assert wants_stream(accept) is wanted


def test_pausing_a_job_shows_up_on_a_get_jobs_watch_within_two_intervals(gw):
    """Acceptance, on the sandbox's README farm: a Pause shows up as a change event on a
    GetJobs watch at the next poll, within two intervals of the pause."""
    gw.cuebot.serve(seeded_farm())
    watch = gw.watch(GET_JOBS + "?interval=1s", '{"r": {"shows": ["testing"]}}')
    gw.advance(0.5)
    [job] = watch.events[0].json()["jobs"]["jobs"]
    assert (job["id"], job["isPaused"]) == (JOB, False)
    assert gw.post(PAUSE, f'{{"job": {{"id": "{JOB}"}}}}').status == 200
    gw.advance(1)
    assert watch.kinds() == ["snapshot", "change"]
    [job] = watch.events[1].json()["jobs"]["jobs"]
    assert job["isPaused"] is True


def test_a_large_reply_is_watched_whole_and_equals_the_streamed_unary_answer(gw):
    """A reply big enough to be streamed to a unary caller reaches a watcher as one snapshot
    whose data are exactly the bytes the unary stream carries."""
    import random

    from bench.data import SEED, make_jobs
    from opencue_gateway.largereply import STREAM_MIN_BYTES

    reply = make_jobs(random.Random(SEED), 3000)
    assert reply.ByteSize() >= STREAM_MIN_BYTES
    gw.cuebot.behave(GET_JOBS, reply=reply)
    unary = gw.post(GET_JOBS, headers={"Accept-Encoding": "identity"})
    assert unary.status == 200 and unary.header("content-length") is None  # streamed
    watch = gw.watch(GET_JOBS)
    [snapshot] = watch.events
    assert snapshot.event == "snapshot"
    assert snapshot.data.encode() == unary.body
