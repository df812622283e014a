"""DESIGN.md §6 on the Gemini surface: every error in Google's envelope
(``{"error": {"code", "message", "status", "details"}}``), raised by ``google-genai`` as
``ClientError`` (4xx) or ``ServerError`` (5xx) with the right code and status; the message
ends with the request id, which ``x-request-id`` also carries."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import errors, types

from .stack import Stack, http_json
from .surfaces import Surfaces, provision_surfaces


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


def _generate(
    s: Surfaces, secret: str, *, stream: bool = False, model: str = "gemini-2.5-pro", **fake: Any
) -> None:
    client = s.genai(secret)
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(extra_body={"fake": fake}) if fake else None, max_output_tokens=4096
    )
    if stream:
        for _ in client.models.generate_content_stream(model=model, contents="hi", config=config):
            pass
    else:
        client.models.generate_content(model=model, contents="hi", config=config)


def _check(exc: errors.APIError, code: int, status: str) -> None:
    assert (exc.code, exc.status) == (code, status), (exc.code, exc.status, exc.message)
    assert exc.message and "(request id: req_" in exc.message
    assert exc.details["error"]["details"][0]["metadata"]["request_id"] in exc.message


def test_invalid_key_is_401_unauthenticated(surfaces: Surfaces) -> None:
    with pytest.raises(errors.ClientError) as info:
        _generate(surfaces, "sk-not-a-key")
    _check(info.value, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_insufficient_balance_is_402_never_a_rate_limit(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("x1", credit="0.001")  # gemini-2.5-pro: 4,096 output tokens cost $0.04
    with pytest.raises(errors.ClientError) as info:
        _generate(surfaces, c.secret, stream=stream)
    _check(info.value, 402, "FAILED_PRECONDITION")
    detail = info.value.details["error"]["details"][0]
    assert detail["reason"] == "INSUFFICIENT_BALANCE"
    assert detail["metadata"]["available_nano"] == "1000000"
    assert surfaces.stack.p.usage_list(c.account_id) == []


def test_model_not_allowed_is_403_permission_denied(surfaces: Surfaces) -> None:
    c = surfaces.customer("mini")
    with pytest.raises(errors.ClientError) as info:
        _generate(surfaces, c.secret)
    _check(info.value, 403, "PERMISSION_DENIED")


def test_unknown_model_is_404_not_found(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    with pytest.raises(errors.ClientError) as info:
        _generate(surfaces, c.secret, model="gemini-does-not-exist")
    _check(info.value, 404, "NOT_FOUND")


def test_rate_limit_is_429_resource_exhausted(surfaces: Surfaces) -> None:
    c = surfaces.customer("rpm2")
    _generate(surfaces, c.secret)
    _generate(surfaces, c.secret)
    with pytest.raises(errors.ClientError) as info:
        _generate(surfaces, c.secret)
    _check(info.value, 429, "RESOURCE_EXHAUSTED")


def test_malformed_request_is_400_invalid_argument(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    url = f"{surfaces.stack.url}/v1beta/models/gemini-2.5-pro:generateContent"
    status, headers, doc = http_json("POST", url, {"contents": []}, headers={"x-goog-api-key": c.secret})
    assert status == 400 and doc["error"]["status"] == "INVALID_ARGUMENT"
    assert "contents" in doc["error"]["message"]
    assert doc["error"]["message"].rstrip(" .)").endswith(headers["x-request-id"])


@pytest.mark.parametrize(
    ("scenario", "stream", "code", "status"),
    [
        ({"status": 500}, False, 502, "UNAVAILABLE"),
        ({"status": 503}, True, 503, "UNAVAILABLE"),
        ({"hang_ms": 3000}, False, 504, "DEADLINE_EXCEEDED"),
    ],
    ids=["500", "503-stream", "first-byte-timeout"],
)
def test_upstream_failures_are_server_errors_and_charge_nothing(
    surfaces: Surfaces, scenario: dict[str, Any], stream: bool, code: int, status: str
) -> None:
    c = surfaces.customer("x1")
    with pytest.raises(errors.ServerError) as info:
        _generate(surfaces, c.secret, stream=stream, **scenario)
    _check(info.value, code, status)
    rid = info.value.details["error"]["details"][0]["metadata"]["request_id"]
    assert surfaces.usage(rid)["deduction_nano"] == 0
    bal = surfaces.stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (10_000_000_000, 0)


def test_stream_cut_ends_with_an_error_chunk_and_bills_the_output_received(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    text = ""
    with pytest.raises(errors.APIError) as info:
        client = surfaces.genai(c.secret)
        config = types.GenerateContentConfig(
            http_options=types.HttpOptions(extra_body={"fake": {"cut_after": 3, "chunk_interval_ms": 20}})
        )
        for chunk in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi", config=config
        ):
            text += chunk.text or ""
    assert text == "The quick brown"
    assert "billed for the output received" in (info.value.message or "")
    (rec,) = surfaces.stack.p.usage_list(c.account_id)
    assert (rec["status"], rec["estimated"], rec["tokens"]["output"]) == ("upstream_cut", True, 4)
    surfaces.stack.audit_ok()
