"""Security headers on every response, added once at the outermost layer of :class:`TollwayApp`.

Three header sets, each built once at start-up (no string building per request):

* API (``/v1``, ``/api``, ops endpoints, redirects, errors, 404s): nothing may load from or
  frame a JSON answer — ``default-src 'none'; frame-ancestors 'none'``, no referrer.
* Console (``/console/...``, pages and static files): the console's own policy, only its
  own scripts, styles and images (the charts' ``data:`` images), forms posting to itself.
* Status page (``/status``): its CSS is inline, nothing else loads.

Each also carries ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.
``Strict-Transport-Security`` is added when ``TOLLWAY_HSTS_MAX_AGE_S`` > 0 and the request
came over HTTPS (directly, or through a trusted proxy: :mod:`tollway.security.proxies`).
A header the inner app already set is not sent twice: the inner app never sets these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Header = tuple[bytes, bytes]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CONSOLE_CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    b"form-action 'self'"
)
STATUS_CSP = (
    b"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; "
    b"form-action 'none'"
)
COMMON: tuple[Header, ...] = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))
# The console sends its referrer to itself only (its own pages use no referrer; outside
# links — payment pages, docs — learn nothing); everything else sends none at all.
API_SET = (*COMMON, (b"content-security-policy", API_CSP), (b"referrer-policy", b"no-referrer"))
CONSOLE_SET = (*COMMON, (b"content-security-policy", CONSOLE_CSP), (b"referrer-policy", b"same-origin"))
STATUS_SET = (*COMMON, (b"content-security-policy", STATUS_CSP), (b"referrer-policy", b"no-referrer"))
CONSOLE_PREFIX = "/console"
STATUS_PAGE = "/status"


class SecurityHeaders:
    """Chooses the header set of a request; :meth:`wrap` returns the ``send`` that adds it."""

    def __init__(self, hsts_max_age_s: int = 0) -> None:
        hsts: tuple[Header, ...] = ()
        if hsts_max_age_s > 0:
            hsts = ((b"strict-transport-security", f"max-age={int(hsts_max_age_s)}".encode()),)
        self._plain = {"api": API_SET, "console": CONSOLE_SET, "status": STATUS_SET}
        self._tls = {k: (*v, *hsts) for k, v in self._plain.items()}

    def headers_for(self, scope: MutableMapping[str, Any]) -> tuple[Header, ...]:
        path: str = scope.get("path", "")
        kind = (
            "console"
            if path == CONSOLE_PREFIX or path.startswith("/console/")
            else "status"
            if path == STATUS_PAGE
            else "api"
        )
        sets = self._tls if scope.get("scheme") in ("https", "wss") else self._plain
        return sets[kind]

    def wrap(self, scope: MutableMapping[str, Any], send: Send) -> Send:
        extra = self.headers_for(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a new list: the inner app may send a shared constant list
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        return send_with_headers
