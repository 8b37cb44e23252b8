"""/docs behind a reverse proxy that serves the gateway under a path prefix.

A Twisted reverse proxy on 127.0.0.1 maps ``/opencue/<path>`` to the gateway's
``/<path>``, as the README's nginx location block does; the page and everything
it loads must be reachable through it.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.unit.test_openapi import _Links

with warnings.catch_warnings():
    # twisted.web.proxy imports the deprecated HTTPClient; it is still Twisted's reverse proxy.
    warnings.simplefilter("ignore", DeprecationWarning)
    from twisted.web.proxy import ReverseProxyResource

PREFIX = "/opencue"


@pytest.fixture
def proxy(sandbox_gateway, client) -> Iterator:
    """The sandbox gateway behind a prefix-stripping reverse proxy; a client of the proxy."""
    gateway_port = urlsplit(sandbox_gateway.url).port
    root = Resource()
    root.putChild(PREFIX.strip("/").encode(),
                  ReverseProxyResource("127.0.0.1", gateway_port, b""))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    yield client(f"http://127.0.0.1:{port.getHost().port}")
    pytest_twisted.blockon(port.stopListening())


@pytest_twisted.ensureDeferred
async def test_docs_page_and_everything_it_loads_work_under_a_prefix(proxy):
    """Through the proxy, /opencue/docs loads its script, style, icon and the OpenAPI document
    from under /opencue, each answered by the gateway."""
    page_url = f"{proxy.url}{PREFIX}/docs"
    page = await proxy.request("GET", f"{PREFIX}/docs", None)
    assert page.status == 200, page.body
    text = page.body.decode("utf-8")
    parser = _Links()
    parser.feed(text)
    config = json.loads(re.search(r"Object\.assign\((\{.*?\}), \{", text).group(1))
    urls = [urljoin(page_url, link) for link in parser.links]
    urls.append(urljoin(page_url, config["url"]))
    assert len(urls) == 4
    for url in urls:
        path = urlsplit(url).path
        assert path.startswith(f"{PREFIX}/"), url
        response = await proxy.request("GET", path, None)
        assert response.status == 200, url
        assert len(response.body) > 0
    document = (await proxy.request("GET", urlsplit(urls[-1]).path, None)).json()
    assert document["openapi"].startswith("3.1")


@pytest_twisted.ensureDeferred
async def test_try_it_out_posts_under_the_prefix(proxy):
    """The document's server URL, resolved as Swagger UI resolves it (against the document's own
    URL), lies under the proxy's prefix."""
    openapi_url = f"{proxy.url}{PREFIX}/openapi.json"
    document = (await proxy.request("GET", f"{PREFIX}/openapi.json", None)).json()
    server = urljoin(openapi_url, document["servers"][0]["url"])
    assert urlsplit(server).path.rstrip("/") == PREFIX
