"""Errors in the envelope of the surface that was called, with the trace ID in the headers
and at the end of every message (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any

from tollway.errors import InsufficientBalance, RateLimited, ServiceUnavailable, TollwayError
from tollway.relay.asgi import Headers

# OpenAI `type` values the SDKs and clients know, per status.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_balance",
    403: "permission_denied",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    502: "upstream_error",
    503: "overloaded_error",
    504: "upstream_error",
}


def error_headers(exc: TollwayError, trace_id: str) -> Headers:
    headers: Headers = [(b"x-request-id", trace_id.encode())]
    if isinstance(exc, InsufficientBalance):
        headers.append((b"x-should-retry", b"false"))
    elif isinstance(exc, RateLimited):
        retry = str(max(1, int(exc.retry_after_s + 0.999)))
        kind = "requests" if exc.limit_name == "requests per minute" else "tokens"
        if exc.limit_name == "concurrent requests":
            kind = "concurrency"
        headers += [
            (b"retry-after", retry.encode()),
            (f"x-ratelimit-limit-{kind}".encode(), str(exc.limit).encode()),
            (f"x-ratelimit-remaining-{kind}".encode(), str(exc.remaining).encode()),
            (f"x-ratelimit-reset-{kind}".encode(), f"{retry}s".encode()),
            (b"x-ratelimit-scope", exc.scope.encode()),
        ]
    elif isinstance(exc, ServiceUnavailable):
        headers.append((b"retry-after", str(exc.retry_after_s).encode()))
    return headers


def with_trace(message: str, trace_id: str) -> str:
    return f"{message} (request id: {trace_id})"


def openai_error(exc: TollwayError, trace_id: str) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": with_trace(exc.message, trace_id),
        "type": _OPENAI_TYPES.get(exc.status, "api_error"),
        "param": exc.param,
        "code": exc.code,
    }
    if isinstance(exc, InsufficientBalance):
        error["available_nano"] = exc.available_nano
        error["required_nano"] = exc.required_nano
        error["affordable_output_tokens"] = exc.affordable_output_tokens
        error["scope"] = exc.scope
    elif isinstance(exc, RateLimited):
        error["scope"] = exc.scope
        error["limit"] = exc.limit_name
    return {"error": error}
