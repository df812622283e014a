"""DESIGN.md §6, the errors customers can act on, as the official openai SDK sees them: the
right exception class and status, ``x-request-id`` set, the request id at the end of the
message, the OpenAI envelope's ``code`` / ``param``; never a 500. (502/503/504 are produced
in test_streams.py.) Plus the key spend cap."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest

from .calls import MESSAGES, fake, tag
from .stack import Stack, assert_request_id_error, http_json, poll

# A call with max_tokens=100 on gpt-4o: hold worst case = 9 upper-bound input tokens x $2.50
# + 100 x $10 = 1_022_500 nano; expected case = 8 x $2.50 + 100 x $10 = 1_020_000 nano.
HOLD_WORST = 1_022_500
HOLD_EXPECTED = 1_020_000
EXACT_USAGE = {"prompt_tokens": 9, "completion_tokens": 100}  # costs exactly HOLD_WORST


def _call(stack: Stack, secret: str, **kw: Any) -> Any:
    kw.setdefault("model", "gpt-4o")
    kw.setdefault("messages", MESSAGES)
    with stack.client(secret) as client:
        return client.chat.completions.create(**kw)


# ------------------------------------------------------------------ 401


def test_invalid_key_is_401(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        _call(stack, "sk-not-a-real-key")
    assert_request_id_error(info.value, 401)
    assert info.value.code == "invalid_api_key"


def test_missing_key_is_401(stack: Stack) -> None:
    status, headers, doc = http_json(
        "POST", f"{stack.url}/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}
    )
    assert status == 401 and doc["error"]["code"] == "invalid_api_key"
    assert doc["error"]["message"].rstrip(" .)").endswith(headers["x-request-id"])


def test_disabled_key_is_401(stack: Stack) -> None:
    c = stack.customer()
    _call(stack, c.secret, extra_body=fake())  # works, and is now cached by the server
    stack.p.set_key_status(c.key_id, "disabled")

    def refused() -> openai.AuthenticationError | None:
        try:
            _call(stack, c.secret, extra_body=fake())
        except openai.AuthenticationError as exc:
            return exc
        return None

    exc = poll(refused, timeout=5, interval=0.1, what="the disabled key to be refused")
    assert_request_id_error(exc, 401)
    assert "disabled" in str(exc.body["message"])  # type: ignore[index]


def test_expired_key_is_401(stack: Stack) -> None:
    c = stack.customer(expires=datetime.now(UTC) - timedelta(minutes=1))
    with pytest.raises(openai.AuthenticationError) as info:
        _call(stack, c.secret)
    assert_request_id_error(info.value, 401)
    assert "expired" in str(info.value.body["message"])  # type: ignore[index]


# ------------------------------------------------------------------ 402


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_insufficient_balance_is_402_and_never_retried(stack: Stack, mode: str) -> None:
    c = stack.customer(credit="0.000001")  # 1_000 nano
    attempts: list[str] = []
    kw: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 100}
    if mode == "sync":
        http = openai.DefaultHttpxClient(event_hooks={"request": [lambda r: attempts.append(str(r.url))]})
        with (
            stack.client(c.secret, max_retries=2, http_client=http) as client,
            pytest.raises(openai.APIStatusError) as info,
        ):
            client.chat.completions.create(**kw)
    else:

        async def hook(request: Any) -> None:
            attempts.append(str(request.url))

        ahttp = openai.DefaultAsyncHttpxClient(event_hooks={"request": [hook]})
        async with stack.aclient(c.secret, max_retries=2, http_client=ahttp) as aclient:
            with pytest.raises(openai.APIStatusError) as info:
                await aclient.chat.completions.create(**kw)
    exc = info.value
    assert type(exc) is openai.APIStatusError  # not a subclass the SDK would retry
    assert_request_id_error(exc, 402)
    assert exc.response.headers["x-should-retry"] == "false"
    assert attempts == [f"{stack.url}/v1/chat/completions"]  # exactly one attempt
    body: dict[str, Any] = exc.body  # type: ignore[assignment]
    assert body["code"] == "insufficient_balance"
    assert (body["available_nano"], body["required_nano"]) == (1_000, HOLD_EXPECTED)
    assert body["affordable_output_tokens"] == 0
    assert "0.000001" in body["message"] and "0.00102" in body["message"]
    assert stack.balance(c.account_id)["cash_nano"] == 1_000


def test_balance_short_of_the_model_maximum_is_402_naming_affordable_tokens(
    stack: Stack,
) -> None:
    c = stack.customer(credit="0.01")  # 10_000_000 nano: ~999 output tokens of gpt-4o
    with pytest.raises(openai.APIStatusError) as info:
        _call(stack, c.secret)  # no max_tokens: the model's 16,384 are reserved
    assert_request_id_error(info.value, 402)
    body: dict[str, Any] = info.value.body  # type: ignore[assignment]
    # (10_000_000 nano - 8 input tokens x 2_500 nano) / 10_000 nano per output token = 998
    assert body["affordable_output_tokens"] == 998
    assert "998" in body["message"]
    assert stack.balance(c.account_id)["cash_nano"] == 10_000_000


def test_partial_hold_overrun_is_bounded_and_reported_by_the_audit(stack: Stack) -> None:
    """DESIGN.md §4, middle case: expected cost <= available < worst case admits the call
    with a hold of the whole balance; the account may end below zero by at most the
    difference, and the audit lists it as an overrun (not a violation)."""
    c = stack.customer(credit="0.01")  # 10_000_000 nano
    # max_tokens 998: worst = 9 x 2_500 + 998 x 10_000 = 10_002_500 > 10_000_000 >= expected
    # = 8 x 2_500 + 998 x 10_000 = 10_000_000. Upstream then reports the worst case.
    r = _call(
        stack,
        c.secret,
        max_tokens=998,
        extra_body=fake(usage={"prompt_tokens": 9, "completion_tokens": 998}),
    )
    bal = stack.balance(c.account_id)
    assert (bal["cash_nano"], bal["held_nano"]) == (-2_500, 0)
    rec = stack.usage(str(r._request_id))
    assert (rec["hold_nano"], rec["deduction_nano"], rec["overrun_nano"]) == (
        10_000_000,
        10_002_500,
        2_500,
    )
    result = stack.audit_ok()
    mine = [o for o in result.overruns if o["account_id"] == c.account_id]
    assert [o["overrun_nano"] for o in mine] == [2_500]
    # Now below zero: the next call is refused.
    with pytest.raises(openai.APIStatusError) as info:
        _call(stack, c.secret, max_tokens=1)
    assert_request_id_error(info.value, 402)


# ------------------------------------------------------------------ spend cap


def test_key_spend_cap_is_402_naming_the_cap_once_used(stack: Stack) -> None:
    c = stack.customer(credit="1", spend_cap="0.005")  # cap 5_000_000 nano, balance 1 credit
    for _ in range(4):  # 4 x 1_022_500 = 4_090_000; 910_000 left < the next call's 1_020_000
        _call(stack, c.secret, max_tokens=100, extra_body=fake(usage=EXACT_USAGE))
    with pytest.raises(openai.APIStatusError) as info:
        _call(stack, c.secret, max_tokens=100, extra_body=fake(usage=EXACT_USAGE))
    assert_request_id_error(info.value, 402)
    body: dict[str, Any] = info.value.body  # type: ignore[assignment]
    assert "key spend cap" in body["message"]
    assert body["scope"] == "key spend cap"
    assert body["available_nano"] == 5_000_000 - 4 * HOLD_WORST
    assert stack.balance(c.account_id)["cash_nano"] == 1_000_000_000 - 4 * HOLD_WORST
    # The account itself still has money: another key of it without a cap works.
    other = stack.p.create_key(c.account_id, name="uncapped", group="x1")
    _call(stack, str(other["secret"]), max_tokens=100, extra_body=fake(usage=EXACT_USAGE))
    assert stack.balance(c.account_id)["cash_nano"] == 1_000_000_000 - 5 * HOLD_WORST


# ------------------------------------------------------------------ 403


def test_model_not_in_the_group_is_403(stack: Stack) -> None:
    c = stack.customer(group="mini")
    with pytest.raises(openai.PermissionDeniedError) as info:
        _call(stack, c.secret, model="gpt-4o")
    assert_request_id_error(info.value, 403)
    assert (info.value.code, info.value.param) == ("permission_denied", "model")
    _call(stack, c.secret, model="gpt-4o-mini", extra_body=fake())  # its own model works


def test_model_not_in_the_key_allow_list_is_403(stack: Stack) -> None:
    c = stack.customer(models="gpt-4o-mini")
    with pytest.raises(openai.PermissionDeniedError) as info:
        _call(stack, c.secret, model="gpt-4o")
    assert_request_id_error(info.value, 403)


def test_ip_not_allowed_is_403(stack: Stack) -> None:
    blocked = stack.customer(ip_allow="10.0.0.0/8")
    with pytest.raises(openai.PermissionDeniedError) as info:
        _call(stack, blocked.secret)
    assert_request_id_error(info.value, 403)
    allowed = stack.customer(ip_allow="10.0.0.0/8,127.0.0.0/8")
    _call(stack, allowed.secret, extra_body=fake())


# ------------------------------------------------------------------ 404


def test_unknown_model_is_404(stack: Stack) -> None:
    c = stack.customer()
    with pytest.raises(openai.NotFoundError) as info:
        _call(stack, c.secret, model="no-such-model-9000")
    assert_request_id_error(info.value, 404)
    assert info.value.code == "model_not_found"


def test_priced_model_no_channel_serves_for_the_group_is_404(stack: Stack) -> None:
    c = stack.customer(group="x1")  # gpt-4.1 is served only to group "fo"
    with pytest.raises(openai.NotFoundError) as info:
        _call(stack, c.secret, model="gpt-4.1")
    assert_request_id_error(info.value, 404)


# ------------------------------------------------------------------ 429


def test_rpm_limit_is_429_with_retry_after_naming_limit_and_scope(stack: Stack) -> None:
    c = stack.customer(group="rpm2")
    _call(stack, c.secret, extra_body=fake())
    _call(stack, c.secret, extra_body=fake())
    t = tag()
    with pytest.raises(openai.RateLimitError) as info:
        _call(stack, c.secret, extra_body=fake(t))
    exc = info.value
    assert_request_id_error(exc, 429)
    assert exc.code == "rate_limit_exceeded"
    assert int(exc.response.headers["retry-after"]) >= 1
    assert exc.response.headers["x-ratelimit-limit-requests"] == "2"
    message = str(exc.body["message"])  # type: ignore[index]
    assert "2 requests per minute" in message and "account" in message
    assert stack.fake_requests(t) == []  # refused at once, never queued or sent upstream
    assert len(stack.p.usage_list(c.account_id)) == 2


def test_refused_calls_use_no_rate_budget(stack: Stack) -> None:
    """rpm=2 (docs/limits.md): a 402, a top-up, then two calls: both served; a wrong model (404)
    in between takes no slot either; only the third real call gets 429."""
    c = stack.customer(group="rpm2", credit=None)
    with pytest.raises(openai.APIStatusError) as refused:
        _call(stack, c.secret, max_tokens=100, extra_body=fake())
    assert refused.value.status_code == 402
    with pytest.raises(openai.NotFoundError):
        _call(stack, c.secret, model="no-such-model", extra_body=fake())
    stack.p.credit(c.account_id, "1")
    poll(lambda: True if stack.balance(c.account_id)["cash_nano"] > 0 else None, timeout=5, what="the credit")

    def served() -> bool | None:
        try:
            _call(stack, c.secret, max_tokens=100, extra_body=fake())
        except openai.APIStatusError as exc:  # the server has not seen the credit yet: a 402 again
            assert exc.status_code == 402, exc
            return None
        return True

    poll(served, timeout=5, interval=0.2, what="the first call after the top-up")
    _call(stack, c.secret, max_tokens=100, extra_body=fake())
    with pytest.raises(openai.RateLimitError):
        _call(stack, c.secret, max_tokens=100, extra_body=fake())
    assert len(stack.p.usage_list(c.account_id)) == 2


def test_concurrency_limit_is_429_while_a_stream_is_open(stack: Stack) -> None:
    c = stack.customer(group="conc1")
    with stack.client(c.secret) as client:
        s = client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            extra_body=fake(chunks=10, chunk_interval_ms=50),
        )
        with s:
            next(iter(s))
            with pytest.raises(openai.RateLimitError) as info:
                _call(stack, c.secret, extra_body=fake())
            for _ in s:
                pass
    assert_request_id_error(info.value, 429)
    assert "concurrent requests" in str(info.value.body["message"])  # type: ignore[index]
    _call(stack, c.secret, extra_body=fake())  # the slot is free again


# ------------------------------------------------------------------ 400


def test_empty_messages_is_400_naming_the_field(stack: Stack) -> None:
    c = stack.customer()
    with pytest.raises(openai.BadRequestError) as info:
        _call(stack, c.secret, messages=[])
    assert_request_id_error(info.value, 400)
    assert info.value.param == "messages"


def test_missing_messages_is_400(stack: Stack) -> None:
    c = stack.customer()
    with stack.client(c.secret) as client, pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", body={"model": "gpt-4o"}, cast_to=object)
    assert_request_id_error(info.value, 400)
    assert info.value.param == "messages"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_negative_max_tokens_is_400(stack: Stack, field: str) -> None:
    c = stack.customer()
    with pytest.raises(openai.BadRequestError) as info:
        _call(stack, c.secret, **{field: -5})
    assert_request_id_error(info.value, 400)
    assert info.value.param == field


def test_body_that_is_not_json_is_400(stack: Stack) -> None:
    c = stack.customer()
    req = urllib.request.Request(
        f"{stack.url}/v1/chat/completions",
        data=b'{"model": "gpt-4o", "messages": [',
        method="POST",
        headers={"Authorization": f"Bearer {c.secret}", "content-type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(req, timeout=10)
    assert info.value.code == 400
    assert info.value.headers["x-request-id"].startswith("req_")


ODD_BODIES: dict[str, Any] = {
    "array": [],
    "string": "text",
    "model-not-string": {"model": 5, "messages": MESSAGES},
    "model-empty": {"model": "", "messages": MESSAGES},
    "messages-string": {"model": "gpt-4o", "messages": "hi"},
    "max-tokens-string": {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": "ten"},
    "max-tokens-bool": {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": True},
    "max-tokens-huge": {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 10**30},
    "max-tokens-float": {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 1.5},
    "stream-options-string": {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": "yes",
    },
    "stream-options-list": {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": [1],
    },
}


@pytest.mark.parametrize("name", list(ODD_BODIES))
def test_malformed_request_is_a_4xx_never_a_500(stack: Stack, name: str) -> None:
    """Odd requests get a 4xx in the OpenAI envelope with the request id, not a 500."""
    c = stack.customer()
    auth = {"Authorization": f"Bearer {c.secret}"}
    body = ODD_BODIES[name]
    status, headers, doc = http_json("POST", f"{stack.url}/v1/chat/completions", body, auth)
    assert 400 <= status < 500, (status, doc)
    assert isinstance(doc, dict) and "error" in doc, doc
    assert doc["error"]["message"].rstrip(" .)").endswith(headers["x-request-id"])


def test_unknown_route_is_404(stack: Stack) -> None:
    c = stack.customer()
    status, headers, doc = http_json(
        "GET", f"{stack.url}/v1/no-such-route", headers={"Authorization": f"Bearer {c.secret}"}
    )
    assert status == 404 and headers["x-request-id"].startswith("req_"), doc
