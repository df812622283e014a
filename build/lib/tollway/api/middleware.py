"""Request ids on every response, and the last line of defence against a 500 with a trace.

Plain ASGI (no ``BaseHTTPMiddleware``): it adds ``x-request-id`` to every response (the
caller's own id when it sent a sane one, a fresh one otherwise) and turns an unexpected
exception into a generic JSON 500, logging the exception with the request id.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.api.errors import error_response

log = logging.getLogger("tollway.api")

HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER)
        request_id = given if given and _SANE_ID.match(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s [%s]", scope["method"], scope["path"], request_id)
            if started:  # too late for an error response; the server closes the connection
                raise
            response = error_response(
                500,
                "internal_error",
                "internal error; the operator can find it in the log by the request id",
                None,
                request_id=request_id,
            )
            await response(scope, receive, send_with_id)
