"""Errors at the control-plane edge: one envelope, ``{"error": {code, message, param}}``.

:class:`TollwayError` keeps its status; request validation is 422 naming the field; unknown
routes are 404. Messages end with the request id (DESIGN.md §6). Anything unexpected is
turned into a generic 500 by :mod:`tollway.api.middleware`, never a stack trace.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tollway.errors import AuthenticationFailed, TollwayError

HTTP_CODES = {
    400: "invalid_request_error",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


# The body of every control-plane error, as documented in the OpenAPI for each status below.
# Inline (not a model) so that it is documented as JSON even on routes whose success is not
# (a CSV export): FastAPI files a model's schema under the route's own media type.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "param"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "Ends with the request id."},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}

DOCUMENTED_ERRORS = {
    400: "Malformed or refused request; `param` names the field",
    401: "Missing, invalid or expired bearer token",
    403: "Authenticated, but not allowed (role, suspended account, two-factor required)",
    404: "No such resource, or not yours",
    409: "Conflicts with the resource's state",
    422: "Request validation failed; `param` names the field",
    429: "Too many attempts (sign-in throttle); see Retry-After",
}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the control app: the error envelope, not FastAPI's ``{"detail"}``."""
    return {
        status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for status, text in DOCUMENTED_ERRORS.items()
    }


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    status: int,
    code: str,
    message: str,
    param: str | None,
    *,
    request_id: str | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if request_id:
        message = f"{message} (request id: {request_id})"
    body = {"error": {"code": code, "message": message, "param": param}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _tollway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TollwayError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationFailed) else None
    return error_response(
        exc.status,
        exc.code,
        exc.message,
        exc.param,
        request_id=request_id_of(request),
        headers=headers,
    )


def _field(err: dict[str, Any]) -> str | None:
    loc = [str(p) for p in err.get("loc", ())]
    if err.get("type") == "json_invalid":
        return "body"
    if loc and loc[0] in ("body", "query", "path", "header"):
        return ".".join(loc[1:]) or loc[0]
    return ".".join(loc) or None


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "json_invalid":
        msg = f"not valid JSON ({err.get('ctx', {}).get('error', 'decode error')})"
    field = _field(err)
    return f"{field}: {msg}" if field else msg


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    param = _field(errors[0]) if errors else None
    message = "; ".join(_message(e) for e in errors[:5]) or "invalid request"
    return error_response(422, "unprocessable_entity", message, param, request_id=request_id_of(request))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(
        exc.status_code,
        code,
        str(exc.detail),
        None,
        request_id=request_id_of(request),
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TollwayError, _tollway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
