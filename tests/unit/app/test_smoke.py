"""The in-memory harness drives the real request path."""

from __future__ import annotations

from opencue_proto import show_pb2

GET_SHOWS = "/show.ShowInterface/GetShows"


def test_a_read_reaches_cuebot_and_prints_its_reply(gw):
    """A POST with a token is forwarded and the reply comes back as JSON."""
    gw.cuebot.behave(GET_SHOWS, reply=show_pb2.ShowGetShowsResponse(
        shows=show_pb2.ShowSeq(shows=[show_pb2.Show(name="testing")])))
    response = gw.post(GET_SHOWS)
    assert response.status == 200
    assert gw.json(response)["shows"]["shows"][0]["name"] == "testing"
    assert gw.cuebot.received[0].metadata["opencue-gateway-sub"] == "tester"


def test_without_a_token_the_answer_is_401(gw):
    """No Authorization header: 401 and nothing reaches Cuebot."""
    response = gw.request("POST", GET_SHOWS)
    assert response.status == 401
    assert gw.cuebot.received == []


def test_the_rate_limit_refills_with_the_clock(make_gateway):
    """Past the burst 429; one refill interval later, allowed again — on the fake clock."""
    gw = make_gateway(RATE_LIMIT_RPS="1", RATE_LIMIT_BURST="2")
    assert [gw.post(GET_SHOWS).status for _ in range(3)] == [200, 200, 429]
    gw.advance(1.0)
    assert gw.post(GET_SHOWS).status == 200
