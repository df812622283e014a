"""The one error tree of Tollway.

Domain and relay code raise these; the edges (data-plane envelopes, control-plane handlers,
the CLI) translate them into the caller's format. Nothing below the edges knows about HTTP
status codes except through :attr:`TollwayError.status`, which the edges read.

    TollwayError
    ├── InvalidRequest          400  malformed body / parameter (names the field)
    │   ├── RequestTimeout      408  the body did not arrive within the body-read timeout
    │   ├── PayloadTooLarge     413  the body is larger than the surface's limit
    │   ├── UnsupportedMediaType 415 a JSON surface sent a body that is not JSON (Content-Type)
    │   └── Unprocessable       422
    ├── AuthenticationFailed    401  missing / invalid / disabled / expired key or session
    ├── InsufficientBalance     402  balance or key spend cap cannot cover the hold
    ├── PermissionDenied        403  model / IP not allowed, account suspended, wrong role
    ├── NotFound                404  unknown model, record, account...
    │   └── ModelNotFound
    ├── Conflict                409  duplicate email, idempotency key reused differently
    ├── RateLimited             429  RPM / TPM / concurrency (names limit and scope)
    ├── UpstreamError           502  upstream failed after failover
    │   ├── UpstreamUnavailable 503
    │   └── UpstreamTimeout     504
    └── ServiceUnavailable      503  Tollway cannot bill right now (database down, shutting down)
"""

from __future__ import annotations


class TollwayError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(TollwayError):
    status = 400
    code = "invalid_request_error"


class RequestTimeout(InvalidRequest):
    status = 408
    code = "request_timeout"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(InvalidRequest):
    status = 422
    code = "unprocessable_entity"


class AuthenticationFailed(TollwayError):
    status = 401
    code = "invalid_api_key"


class InsufficientBalance(TollwayError):
    status = 402
    code = "insufficient_balance"

    def __init__(
        self,
        message: str,
        *,
        available_nano: int,
        required_nano: int,
        scope: str = "account",
        affordable_output_tokens: int | None = None,
    ) -> None:
        super().__init__(message)
        self.available_nano = available_nano
        self.required_nano = required_nano
        self.scope = scope
        self.affordable_output_tokens = affordable_output_tokens


class PermissionDenied(TollwayError):
    status = 403
    code = "permission_denied"


class NotFound(TollwayError):
    status = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(TollwayError):
    status = 409
    code = "conflict"


class RateLimited(TollwayError):
    status = 429
    code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        limit_name: str,
        scope: str,
        limit: int,
        remaining: int,
        retry_after_s: float,
    ) -> None:
        super().__init__(message)
        self.limit_name = limit_name
        self.scope = scope
        self.limit = limit
        self.remaining = remaining
        self.retry_after_s = retry_after_s


class UpstreamError(TollwayError):
    status = 502
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "overloaded_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class ServiceUnavailable(TollwayError):
    status = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
