"""DESIGN.md §6 on the Anthropic surface: every error in Anthropic's envelope
(``{"type": "error", "error": {"type", "message"}, "request_id"}`` with a ``request-id``
header), as the ``anthropic`` SDK's own exception class; the message ends with the id."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from .stack import Stack, http_json
from .surfaces import Surfaces, provision_surfaces


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def _check(exc: anthropic.APIStatusError, status: int, kind: str) -> str:
    assert exc.status_code == status, (exc.status_code, exc.body)
    rid = exc.response.headers.get("request-id")
    assert rid and rid.startswith("req_") and exc.request_id == rid
    assert exc.response.headers.get("x-request-id") == rid
    body = exc.body
    assert isinstance(body, dict) and body["type"] == "error" and body["request_id"] == rid, body
    assert body["error"]["type"] == kind == exc.type
    assert str(body["error"]["message"]).rstrip(" .)").endswith(rid)
    return rid


def _create(s: Surfaces, secret: str, stream: bool = False, **kw: Any) -> Any:
    kw.setdefault("model", "claude-sonnet-4-5")
    kw.setdefault("max_tokens", 64)
    kw.setdefault("messages", MESSAGES)
    with s.anthropic(secret) as client:
        if stream:
            with client.messages.stream(**kw) as st:
                return st.get_final_message()
        return client.messages.create(**kw)


def test_invalid_key_is_401_authentication_error(surfaces: Surfaces) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        _create(surfaces, "sk-not-a-key")
    _check(info.value, 401, "authentication_error")


def test_missing_key_is_401_in_the_anthropic_envelope(surfaces: Surfaces) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": MESSAGES}
    status, headers, doc = http_json("POST", f"{surfaces.stack.url}/v1/messages", body)
    assert status == 401
    assert doc["type"] == "error" and doc["error"]["type"] == "authentication_error"
    assert doc["request_id"] == headers["request-id"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_insufficient_balance_is_402_billing_error_never_retried(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("anth", credit="0.01")  # Sonnet 4.5: 4,096 output tokens cost $0.06
    with (
        surfaces.anthropic(c.secret, max_retries=2) as client,
        pytest.raises(anthropic.PaymentRequiredError) as info,
    ):
        kw: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": MESSAGES}
        if stream:
            with client.messages.stream(**kw) as st:
                st.get_final_message()
        else:
            client.messages.create(**kw)
    _check(info.value, 402, "billing_error")
    assert info.value.response.headers["x-should-retry"] == "false"
    error = info.value.body["error"]  # type: ignore[index]
    assert error["available_nano"] == 10_000_000
    assert error["affordable_output_tokens"] < 4096
    assert surfaces.stack.p.usage_list(c.account_id) == []


def test_model_not_allowed_for_the_group_is_403_permission_error(surfaces: Surfaces) -> None:
    c = surfaces.customer("mini")  # the group allows gpt-4o-mini only
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        _create(surfaces, c.secret)
    _check(info.value, 403, "permission_error")


def test_unknown_model_is_404_not_found_error(surfaces: Surfaces) -> None:
    c = surfaces.customer("anth")
    with pytest.raises(anthropic.NotFoundError) as info:
        _create(surfaces, c.secret, model="claude-does-not-exist")
    _check(info.value, 404, "not_found_error")
    assert info.value.body["error"]["code"] == "model_not_found"  # type: ignore[index]


def test_rate_limit_is_429_rate_limit_error_with_retry_after(surfaces: Surfaces) -> None:
    c = surfaces.customer("rpm2")
    _create(surfaces, c.secret)
    _create(surfaces, c.secret)
    with pytest.raises(anthropic.RateLimitError) as info:
        _create(surfaces, c.secret)
    _check(info.value, 429, "rate_limit_error")
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert "requests per minute" in info.value.body["error"]["message"]  # type: ignore[index]


def test_missing_max_tokens_is_400_naming_the_field(surfaces: Surfaces) -> None:
    c = surfaces.customer("anth")
    body = {"model": "claude-sonnet-4-5", "messages": MESSAGES}
    status, headers, doc = http_json(
        "POST", f"{surfaces.stack.url}/v1/messages", body, headers={"x-api-key": c.secret}
    )
    assert status == 400 and doc["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in doc["error"]["message"]
    assert headers["request-id"] == doc["request_id"]


@pytest.mark.parametrize(
    ("scenario", "stream", "status", "cls", "kind"),
    [
        ({"status": 500}, False, 502, anthropic.InternalServerError, "api_error"),
        ({"status": 500}, True, 502, anthropic.InternalServerError, "api_error"),
        ({"status": 529}, False, 503, anthropic.ServiceUnavailableError, "overloaded_error"),
        ({"hang_ms": 3000}, True, 504, anthropic.GatewayTimeoutError, "timeout_error"),
        ({"status": 400}, False, 400, anthropic.BadRequestError, "invalid_request_error"),
    ],
    ids=["500", "500-stream", "529-overloaded", "first-byte-timeout", "upstream-400"],
)
def test_upstream_failures_in_the_anthropic_envelope_charge_nothing(
    surfaces: Surfaces, scenario: dict[str, Any], stream: bool, status: int, cls: type, kind: str
) -> None:
    c = surfaces.customer("anth")  # claude-haiku-4-5: the Anthropic channel only
    with pytest.raises(cls) as info:
        _create(surfaces, c.secret, stream, model="claude-haiku-4-5", extra_body={"fake": scenario})
    rid = _check(info.value, status, kind)
    rec = surfaces.usage(rid)
    assert rec["deduction_nano"] == 0 and rec["status"] in ("upstream_failed", "upstream_rejected")
    bal = surfaces.stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (10_000_000_000, 0)
