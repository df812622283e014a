"""Errors in the envelope of the surface that was called, with the trace ID in the headers
and at the end of every message (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any

from tollway.errors import InsufficientBalance, RateLimited, ServiceUnavailable, TollwayError
from tollway.providers.base import Shape
from tollway.relay.asgi import Headers

# OpenAI `type` values the SDKs and clients know, per status.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_balance",
    403: "permission_denied",
    404: "invalid_request_error",
    408: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
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
        headers += [(b"retry-after", str(exc.retry_after_s).encode()), (b"x-should-retry", b"true")]
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
    error.update(_extra(exc))
    return {"error": error}


# Anthropic error `type` values per status (docs.anthropic.com errors; 402 is billing_error).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}

# google.rpc canonical codes per HTTP status. 402 has no canonical twin: FAILED_PRECONDITION
# ("the system is not in a state required for the operation") with reason INSUFFICIENT_BALANCE,
# so that it can never be mistaken for a rate limit (RESOURCE_EXHAUSTED).
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _extra(exc: TollwayError) -> dict[str, Any]:
    if isinstance(exc, InsufficientBalance):
        return {
            "available_nano": exc.available_nano,
            "required_nano": exc.required_nano,
            "affordable_output_tokens": exc.affordable_output_tokens,
            "scope": exc.scope,
        }
    if isinstance(exc, RateLimited):
        return {"scope": exc.scope, "limit": exc.limit_name}
    return {}


def anthropic_error(exc: TollwayError, trace_id: str) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``; Tollway's own code and
    the balance/limit details ride along in ``error``."""
    error: dict[str, Any] = {
        "type": _ANTHROPIC_TYPES.get(exc.status, "api_error"),
        "message": with_trace(exc.message, trace_id),
        "code": exc.code,
        **_extra(exc),
    }
    return {"type": "error", "error": error, "request_id": trace_id}


def gemini_error(exc: TollwayError, trace_id: str) -> dict[str, Any]:
    """``{"error": {"code", "message", "status", "details"}}`` (google.rpc.Status)."""
    metadata = {k: str(v) for k, v in _extra(exc).items() if v is not None}
    metadata["request_id"] = trace_id
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": exc.code.upper(),
        "domain": "tollway",
        "metadata": metadata,
    }
    error = {
        "code": exc.status,
        "message": with_trace(exc.message, trace_id),
        "status": _GEMINI_STATUS.get(exc.status, "INTERNAL" if exc.status >= 500 else "FAILED_PRECONDITION"),
        "details": [info],
    }
    return {"error": error}


def surface_headers(surface: Shape, trace_id: str) -> Headers:
    """Headers every response of the surface carries: the trace ID (and Anthropic's ``request-id``)."""
    headers: Headers = [(b"x-request-id", trace_id.encode())]
    if surface is Shape.ANTHROPIC:
        headers.append((b"request-id", trace_id.encode()))
    return headers


def render_error(surface: Shape, exc: TollwayError, trace_id: str) -> tuple[dict[str, Any], Headers]:
    """The error body and headers in the envelope of the surface that was called."""
    headers = error_headers(exc, trace_id)
    if surface is Shape.ANTHROPIC:
        headers.append((b"request-id", trace_id.encode()))
        return anthropic_error(exc, trace_id), headers
    if surface is Shape.GEMINI:
        return gemini_error(exc, trace_id), headers
    return openai_error(exc, trace_id), headers


def surface_of_path(path: str) -> Shape:
    """The surface a path belongs to (for errors raised before a route is known)."""
    if path.startswith("/v1/messages"):
        return Shape.ANTHROPIC
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path):
        return Shape.GEMINI
    return Shape.OPENAI_CHAT
