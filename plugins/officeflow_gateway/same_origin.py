"""Cross-site request forgery guard for the plugin's routes that a browser session can call.

The Airflow UI signs people in with the ``_token`` cookie (``SameSite=Lax``, so browsers already keep it
off cross-site POSTs). As a second line — a sibling subdomain counts as "same site" for SameSite — a
state-changing request (``POST``/``PUT``/``PATCH``/``DELETE``) that is authenticated by that cookie and not
by an ``Authorization`` header must come from a page of this server: its ``Origin`` (or, without one, its
``Referer``) names the host the request was sent to. Anything else is 403 ``cross_origin_request``.

API clients sending a Bearer token, webhook senders and Slack (neither sends the cookie) are not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from plugins.officeflow_gateway.errors import error_response

COOKIE = "_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _configured_origin() -> str | None:
    """The origin of Airflow's ``[api] base_url`` when one is set (the public address behind a proxy)."""
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    parts = urlsplit(base_url)
    return parts.netloc.lower() if parts.scheme and parts.netloc else None


def origin_host(connection: HTTPConnection) -> str | None:
    """``host[:port]`` of the page that sent the request, from ``Origin`` or else ``Referer``."""
    for header in ("origin", "referer"):
        value = connection.headers.get(header)
        if value and value != "null":
            return urlsplit(value).netloc.lower() or None
    return None


def same_origin(connection: HTTPConnection) -> bool:
    sender = origin_host(connection)
    if sender is None:
        return False
    targets = {connection.headers.get("host", "").lower(), connection.headers.get("x-forwarded-host", "").lower(),
               _configured_origin()}
    return sender in targets - {"", None}


def cross_origin_refusal(scope: Scope) -> Response | None:
    """The 403 for a cookie-authenticated state change sent from another origin, else None."""
    if scope["method"] in SAFE_METHODS:
        return None
    connection = HTTPConnection(scope)
    if COOKIE not in connection.cookies or "authorization" in connection.headers or same_origin(connection):
        return None
    return error_response(
        connection, 403, "cross_origin_request",
        "a signed-in browser request must come from this server's own pages "
        "(Origin header missing or naming another site); API clients send a Bearer token")
