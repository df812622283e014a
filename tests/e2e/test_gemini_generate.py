"""The Gemini surface with the official ``google-genai`` SDK: generateContent and
streamGenerateContent through a Gemini channel, billed per DESIGN.md §5 (the prompt count
includes cached tokens; thinking tokens bill as output), long-context tiers, both API
versions and both ways of passing the key; translation to and from the other shapes."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from .stack import Stack, http_json, nano
from .surfaces import KEYS, Surfaces, marker, provision_surfaces


@pytest.fixture(scope="module")
def surfaces(stack: Stack) -> Surfaces:
    return provision_surfaces(stack)


TEN = 10_000_000_000
TEXT = "The quick brown fox jumps over the lazy"

# prompt 11,500 of which 10,000 cached, candidates 1,000, thoughts 10,000 (docs/pricing.md §6)
CACHED_THINKING = {
    "promptTokenCount": 11_500,
    "cachedContentTokenCount": 10_000,
    "candidatesTokenCount": 1_000,
    "thoughtsTokenCount": 10_000,
    "totalTokenCount": 22_500,
}
CACHED_THINKING_NANO = 113_125_000  # 1,500 x $1.25 + 10,000 x $0.125 + 11,000 x $10 per MTok


def _config(fake: dict[str, Any], **kw: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(http_options=types.HttpOptions(extra_body={"fake": fake}), **kw)


def _generate(s: Surfaces, secret: str, stream: bool, fake: dict[str, Any], **kw: Any) -> tuple[str, Any]:
    """(text, the last response object) of one call; the request id comes from the record."""
    client = s.genai(secret, kw.pop("api_version", None))
    model = kw.pop("model", "gemini-2.5-pro")
    contents = kw.pop("contents", "Explain caching.")
    if stream:
        text, last = "", None
        for chunk in client.models.generate_content_stream(
            model=model, contents=contents, config=_config(fake, **kw)
        ):
            text += chunk.text or ""
            last = chunk
        return text, last
    resp = client.models.generate_content(model=model, contents=contents, config=_config(fake, **kw))
    return resp.text or "", resp


def _only_record(s: Surfaces, account_id: str) -> dict[str, Any]:
    records = s.stack.p.usage_list(account_id)
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cached_and_thinking_tokens_bill_per_design(surfaces: Surfaces, stream: bool) -> None:
    c = surfaces.customer("x1")
    fake: dict[str, Any] = {"native_usage": CACHED_THINKING, "thinking": "Hmm."}
    if stream:
        partial = {"promptTokenCount": 11_500, "cachedContentTokenCount": 10_000, "candidatesTokenCount": 2}
        fake["usage_steps"] = [partial, partial, CACHED_THINKING]
    text, last = _generate(surfaces, c.secret, stream, fake)
    assert text == TEXT
    meta = last.usage_metadata
    assert (meta.prompt_token_count, meta.cached_content_token_count, meta.thoughts_token_count) == (
        11_500,
        10_000,
        10_000,
    )
    rec = _only_record(surfaces, c.account_id)
    assert (rec["tokens"]["input"], rec["tokens"]["cache_read"]) == (1_500, 10_000)
    assert (rec["tokens"]["output"], rec["tokens"]["reasoning"]) == (11_000, 10_000)
    assert rec["deduction_nano"] == CACHED_THINKING_NANO
    assert (rec["endpoint"], rec["stream"], rec["tier"]) == (
        "gemini.streamGenerateContent" if stream else "gemini.generateContent",
        stream,
        None,
    )
    assert surfaces.stack.balance(c.account_id)["cash_nano"] == TEN - CACHED_THINKING_NANO


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_long_context_tier_prices_the_whole_request(surfaces: Surfaces, stream: bool) -> None:
    """gemini-2.5-pro above 200k prompt tokens: $2.50 in / $15 out for the whole request."""
    c = surfaces.customer("x1")
    usage = {"promptTokenCount": 250_000, "candidatesTokenCount": 1_000, "totalTokenCount": 251_000}
    _generate(surfaces, c.secret, stream, {"native_usage": usage})
    rec = _only_record(surfaces, c.account_id)
    assert rec["tier"] == ">200k"
    assert rec["deduction_nano"] == nano((250_000, "2.50"), (1_000, "15")) == 640_000_000


def test_exactly_200k_stays_at_the_base_price(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    _generate(surfaces, c.secret, False, {"native_usage": {"promptTokenCount": 200_000}})
    rec = _only_record(surfaces, c.account_id)
    assert (rec["tier"], rec["deduction_nano"]) == (None, 250_000_000)


@pytest.mark.parametrize("version", [None, "v1beta"], ids=["sdk-default-v1", "v1beta"])
def test_both_api_versions_reach_the_channel_with_its_key(surfaces: Surfaces, version: str | None) -> None:
    c = surfaces.customer("x1")
    tag = f"gv-{c.key_id}"
    text, _ = _generate(surfaces, c.secret, False, {"tag": tag}, api_version=version, max_output_tokens=3)
    assert text == "The quick brown"  # maxOutputTokens reached upstream
    (req,) = surfaces.fake_requests(tag)
    assert req["path"] == f"/{version or 'v1'}/models/gemini-2.5-pro:generateContent"
    assert {k.lower(): v for k, v in req["headers"].items()}["x-goog-api-key"] == KEYS["gem-native"]
    assert req["body"]["generationConfig"]["maxOutputTokens"] == 3


def test_key_in_the_query_string(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    url = f"{surfaces.stack.url}/v1beta/models/gemini-2.5-flash:generateContent?key={c.secret}"
    status, headers, doc = http_json("POST", url, body)
    assert status == 200, doc
    assert doc["candidates"][0]["content"]["parts"][0]["text"] == TEXT
    assert headers["x-request-id"].startswith("req_")


def test_count_tokens_is_answered_and_not_billed(surfaces: Surfaces) -> None:
    c = surfaces.customer("x1")
    client = surfaces.genai(c.secret)
    counted = client.models.count_tokens(model="gemini-2.5-pro", contents="Hello there")
    assert counted.total_tokens and counted.total_tokens > 0
    assert surfaces.stack.p.usage_list(c.account_id) == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_client_through_an_openai_channel(surfaces: Surfaces, stream: bool) -> None:
    """gemini-2.0-flash is served by an OpenAI-compatible channel: translated both ways,
    billed from OpenAI's usage (cached tokens are a subset of the prompt)."""
    c = surfaces.customer("x1")
    usage = {
        "prompt_tokens": 5_000,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 4_000},
    }
    contents = f"Explain {c.key_id} " + marker(native_usage=usage)
    text, last = _generate(
        surfaces,
        c.secret,
        stream,
        {},
        model="gemini-2.0-flash",
        contents=contents,
        system_instruction="Be brief.",
    )
    assert text == TEXT
    meta = last.usage_metadata
    assert (meta.prompt_token_count, meta.cached_content_token_count, meta.candidates_token_count) == (
        5_000,
        4_000,
        300,
    )
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    (req,) = surfaces.fake_requests(c.key_id)
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "max_tokens" not in req["body"]  # no cap from the client: OpenAI needs none
    rec = _only_record(surfaces, c.account_id)
    assert (rec["tokens"]["input"], rec["tokens"]["cache_read"], rec["tokens"]["output"]) == (
        1_000,
        4_000,
        300,
    )
    assert rec["deduction_nano"] == nano((1_000, "0.10"), (4_000, "0.025"), (300, "0.40"))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_client_through_a_gemini_channel(surfaces: Surfaces, stream: bool) -> None:
    """claude-haiku-4-5 in group gx is served by a Gemini channel: billed from Gemini's usage."""
    c = surfaces.customer("gx")
    content = "Hello " + marker(native_usage=CACHED_THINKING, thinking="Hmm.")
    kw: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": content}],
    }
    with surfaces.anthropic(c.secret) as client:
        if stream:
            with client.messages.stream(**kw) as st:
                message = st.get_final_message()
        else:
            message = client.messages.create(**kw)
    kinds = [b.type for b in message.content]
    assert kinds == ["thinking", "text"]
    assert message.content[1].text == TEXT
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (1_500, 10_000)
    assert message.usage.output_tokens == 11_000
    rec = _only_record(surfaces, c.account_id)
    # Haiku 4.5 prices ($1 in, $0.10 cache read, $5 out), Gemini's usage semantics.
    assert rec["deduction_nano"] == nano((1_500, "1"), (10_000, "0.10"), (11_000, "5"))
