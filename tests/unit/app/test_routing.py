"""Routing: which method a request names, which verbs reach it, and how its body is read."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error, make_token
from tests.unit.app.support import FIND_SHOW, GET_FRAMES, GET_SHOWS


def test_unknown_method_is_404_with_suggestions(gw):
    """A method the protos lack is 404 naming the nearest real methods."""
    response = gw.post("/layer.LayerInterface/Kill", "{}")
    assert_error(response, 404, 5, "did you mean /job.LayerInterface/KillFrames")
    assert gw.cuebot.received == []


def test_a_path_of_another_shape_is_404_showing_the_shape(gw):
    """A path that is not /<package>.<Service>/<Method> is 404 with an example."""
    response = gw.post("/nothing", "{}")
    assert_error(response, 404, 5, "paths look like /<package>.<Service>/<Method>")


def test_readme_spellings_resolve_to_the_real_service(gw):
    """/frame.FrameInterface/Retry (the Go gateway's README) calls job.FrameInterface/Retry."""
    response = gw.post("/frame.FrameInterface/Retry", '{"frame": {"id": "f"}}')
    assert response.status == 200
    assert gw.cuebot.received[0].path == "/job.FrameInterface/Retry"
    assert gw.cuebot.received[0].request.frame.id == "f"


@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE"])
def test_other_verbs_on_a_method_are_405(gw, verb):
    """Only POST reaches Cuebot; other methods get 405 with Allow: POST."""
    response = gw.request(verb, GET_SHOWS, None, token=make_token())
    assert_error(response, 405, 12, f"only answers POST, not {verb}")
    assert response.header("allow") == "POST"
    assert gw.cuebot.received == []


@pytest.mark.parametrize("path", ["/healthz", "/config", "/openapi.json"])
def test_posting_to_a_page_is_not_the_page(gw, path):
    """The gateway's pages answer GET only; a POST to one is routed like any path (404)."""
    response = gw.post(path)
    assert_error(response, 404, 5, "no RPC at")


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, got an array"),
    (b'{"job": {"id": 7}}', "field 'job.id': expected a string, got a number"),
    (b'{"req": {"page": "first"}}', "field 'req.page': expected a 32-bit integer"),
    ('{"name": "x"}'.encode("utf-16"), "not UTF-8 text (invalid byte at offset 0)"),
    ('{"name": "x"}'.encode("utf-32-le"), "not valid JSON"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
], ids=["syntax", "array", "type", "int32", "utf16", "utf32", "deep"])
def test_bad_bodies_are_400(gw, body, words):
    """Malformed JSON, a non-object body and wrong field types are 400 naming the field."""
    response = gw.post(GET_FRAMES, body)
    assert_error(response, 400, 3, words)
    assert gw.cuebot.received == []


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_form_encoded_and_untyped_bodies_are_json(gw, content_type):
    """curl's default form content type and text/plain bodies are read as JSON."""
    response = gw.post(FIND_SHOW, '{"name": "testing"}', headers={"Content-Type": content_type})
    assert response.status == 200
    assert gw.cuebot.received[-1].request.name == "testing"


def test_an_empty_body_is_the_empty_message(gw):
    """No body at all is the empty request message."""
    assert gw.post(GET_SHOWS, None).status == 200
    assert gw.cuebot.received[0].request.ByteSize() == 0


def test_readme_wrong_shapes_never_500(gw):
    """The README's wrongly shaped bodies get 400 or 200-with-ignored-fields, never 5xx."""
    cases = [
        ("/layer.LayerInterface/FindLayer", '{"job": {"id": "j"}, "layer": "l"}', 400, None),
        ("/group.GroupInterface/FindGroup", '{"show": {"name": "testing"}, "name": "g"}', 400,
         None),
        ("/owner.OwnerInterface/TakeOwnership",
         '{"host": {"id": "h"}, "owner": {"name": "o"}}', 400, None),
        ("/group.GroupInterface/SetMinCores", '{"group": {"id": "g"}, "cores": 10}', 200,
         "cores"),
        ("/job.JobInterface/GetJobs", '{"r": {"show": {"name": "testing"}}}', 200, "r.show"),
    ]
    for path, body, status, ignored in cases:
        response = gw.post(path, body)
        assert response.status == status, (path, response.body)
        if ignored:
            assert response.header("Opencue-Gateway-Ignored-Fields") == ignored


def _absolute(target: str) -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:8448\r\n"
            f"Authorization: Bearer {make_token()}\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}").encode()


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:8448/show.ShowInterface/GetShows",
    "HTTPS://cuebot.example/show.ShowInterface/GetShows?x=1",
])
def test_absolute_form_request_targets_are_routed(gw, target):
    """``POST http://host/pkg.Svc/Method`` (what proxy-configured clients send) is served."""
    response = gw.raw(_absolute(target)).response()
    assert response.status == 200, response.body
    assert "shows" in response.json()
    assert gw.cuebot.received[-1].path == GET_SHOWS


@pytest.mark.parametrize(("target", "words"), [
    ("http://127.0.0.1:8448", "no RPC at '/'"),
    ("http://127.0.0.1:8448?show.ShowInterface/GetShows", "no RPC at '/'"),
    ("ftp://host/show.ShowInterface/GetShows", "no RPC at 'ftp://host/show"),
])
def test_absolute_forms_without_a_path_or_of_another_scheme_are_404(gw, target, words):
    """An absolute target with no path routes to / (404), and a non-HTTP scheme is not
    stripped: neither reaches Cuebot."""
    response = gw.raw(_absolute(target)).response()
    assert_error(response, 404, 5, words)
    assert gw.cuebot.received == []
