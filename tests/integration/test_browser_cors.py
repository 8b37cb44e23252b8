"""CORS in a real browser: headless Chromium fetches from one loopback origin to the gateway on
another, with an Authorization header (so the browser sends a preflight first)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest
import pytest_twisted
from opencue_proto import show_pb2
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.conftest import make_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/system-packages "
           "installs it)")

PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
fetch("{url}/show.ShowInterface/GetShows", {{
  method: "POST",
  headers: {{"Authorization": "Bearer {token}", "Content-Type": "application/json"}},
  body: "{{}}"
}}).then(r => r.json().then(j => "STATUS " + r.status + " " +
                                     r.headers.get("X-Request-Id") + " " + JSON.stringify(j)))
  .catch(e => "FAILED " + e)
  .then(text => {{ document.getElementById("out").textContent = text; }});
</script></body></html>"""


def render_in_chromium(url: str) -> str:
    """Load the page headless and return the DOM after its script ran."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=90)
    return result.stdout


@pytest.mark.parametrize("allowed", [True, False])
@pytest_twisted.ensureDeferred
async def test_browser_fetch_with_authorization(start_gateway, cuebot, allowed):
    """From an allowed origin the page reads the JSON; from another the browser blocks it."""
    cuebot.behave("/show.ShowInterface/GetShows", reply=show_pb2.ShowGetShowsResponse(
        shows=show_pb2.ShowSeq(shows=[show_pb2.Show(name="testing")])))
    page = Resource()
    listener = reactor.listenTCP(0, Site(page), interface="127.0.0.1")
    try:
        origin = f"http://127.0.0.1:{listener.getHost().port}"
        gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address,
                                CORS_ORIGINS=origin if allowed else "http://127.0.0.1:1")
        html = PAGE.format(url=gateway.url, token=make_token())
        page.putChild(b"page.html", Data(html.encode(), "text/html"))
        dom = await deferToThread(render_in_chromium, f"{origin}/page.html")
    finally:
        await listener.stopListening()
    if allowed:
        assert "STATUS 200" in dom and '{"shows":{"shows":[{"id":"","name":"testing"' in dom, dom
        assert "null {" not in dom  # X-Request-Id was readable (exposed)
    else:
        assert "FAILED" in dom, dom
        assert not [r for r in cuebot.received if r.path.endswith("GetShows")]
