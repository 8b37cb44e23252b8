"""What the gateway learns about one request as it goes, declared once.

The HTTP edge (site.py) and the Klein app (app.py) both learn things about a
request: the site gives it an id and a deadline, the app finds out who is
calling, which RPC it is and how it ended.  The access log, the metrics, the
audit log and tracing read them when the request is over.  Rather than adding
attributes to Twisted's request, they meet in one :class:`RequestContext`,
stored as a component of the request (``twisted.web.server.Request`` is
``Componentized``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from zope.interface import Attribute, Interface, implementer

UNKNOWN = "unknown"


class IRequestContext(Interface):
    """The gateway's per-request facts (see :class:`RequestContext`)."""

    request_id = Attribute("The X-Request-Id echoed to the client and sent to Cuebot.")
    deadline = Attribute("Reactor time by which the answer must be out (HTTP_TIMEOUT).")


@implementer(IRequestContext)
@dataclass(slots=True)
class RequestContext:
    """One request's facts; the site fills the first group, the app the second."""

    # Set by the site when the request starts.
    request_id: str = ""
    deadline: float = math.inf
    client: str | None = None  # the peer's address (the proxy's, behind one)
    cors_origin: str | None = None
    # Set by the app as it learns them.
    rpc: str = UNKNOWN
    principal_sub: str = ""
    grpc_code: int | None = None
    failure: str = ""  # why a 401/403 happened, in one fixed word (a metrics label)
    trace_span: Any = None
    stream_events: int | None = None  # events written, once a watch stream began (watch.py)

    def remaining(self, now: float) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - now)


def context_of(request: Any) -> RequestContext:
    """The request's context, made on first use (a request the site did not start has none)."""
    context = request.getComponent(IRequestContext)
    if context is None:
        context = RequestContext()
        request.setComponent(IRequestContext, context)
    return context
