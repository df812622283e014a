"""The fake OpenAI-compatible upstream, driven in-process with the official openai SDK."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from tollway.fake_upstream import FakeConfig, start
from tollway.fake_upstream.openai_shape import prompt_token_estimate

MSGS: list[Any] = [{"role": "user", "content": "hello world"}]  # 11 bytes -> 3 + 3 = 6 tokens


class Fake:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def client(self, **kw: Any) -> AsyncOpenAI:
        kw.setdefault("api_key", "sk-test")
        kw.setdefault("max_retries", 0)
        return AsyncOpenAI(base_url=f"{self.base}/v1", **kw)

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as s, s.get(self.base + path) as r:
            return orjson.loads(await r.read())


async def _serve(config: FakeConfig) -> AsyncIterator[Fake]:
    runner, port = await start("127.0.0.1", 0, config)
    try:
        yield Fake(port)
    finally:
        await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    async for f in _serve(FakeConfig()):
        yield f


async def test_non_stream_default_usage(fake: Fake) -> None:
    async with fake.client() as c:
        r = await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.object == "chat.completion"
    assert r.model == "gpt-4o-mini"
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == "The quick brown fox jumps over the lazy"
    u = r.usage
    assert u is not None
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (6, 8, 14)
    assert u.prompt_tokens_details and u.prompt_tokens_details.cached_tokens == 0
    assert u.completion_tokens_details and u.completion_tokens_details.reasoning_tokens == 0


async def test_non_stream_overrides_and_max_tokens(fake: Fake) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "cached_tokens": 800}
    async with fake.client() as c:
        r = await c.chat.completions.create(
            model="o4-mini",
            messages=MSGS,
            extra_body={"fake": {"usage": {**usage, "reasoning_tokens": 30}, "text": "hi"}},
        )
        capped = await c.chat.completions.create(model="gpt-4o", messages=MSGS, max_completion_tokens=3)
    assert r.choices[0].message.content == "hi hi hi hi hi hi hi hi"
    u = r.usage
    assert u and u.prompt_tokens == 1000 and u.completion_tokens == 50 and u.total_tokens == 1050
    assert u.prompt_tokens_details and u.prompt_tokens_details.cached_tokens == 800
    assert u.completion_tokens_details and u.completion_tokens_details.reasoning_tokens == 30
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage and capped.usage.completion_tokens == 3


async def test_stream_without_usage(fake: Fake) -> None:
    async with fake.client() as c:
        stream = await c.chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=True, extra_body={"fake": {"chunks": 5}}
        )
        chunks = [ch async for ch in stream]
    assert all(ch.object == "chat.completion.chunk" and ch.usage is None for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [ch.choices[0].delta.content for ch in chunks[1:-1]]
    assert len(content) == 5 and all(content)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_with_usage_and_subsets(fake: Fake) -> None:
    fake_body = {"fake": {"usage": {"cached_tokens": 4, "reasoning_tokens": 2}}}
    async with fake.client() as c:
        stream = await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=MSGS,
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=4,
            extra_body=fake_body,
        )
        chunks = [ch async for ch in stream]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert chunks[-2].choices[0].finish_reason == "length"
    # derived: prompt 6 >= cached 4; completion = 4 content chunks + 2 reasoning
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (6, 6)
    assert last.usage.prompt_tokens_details and last.usage.prompt_tokens_details.cached_tokens == 4
    # raw wire: every earlier chunk carries "usage": null, then [DONE]
    body = {"model": "m", "messages": MSGS, "stream": True, "stream_options": {"include_usage": 1}}
    async with (
        aiohttp.ClientSession() as s,
        s.post(fake.base + "/v1/chat/completions", json=body) as r,
    ):
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = (await r.text()).split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    parsed = [orjson.loads(e[len("data: ") :]) for e in events[:-2]]
    assert all("usage" in p and p["usage"] is None for p in parsed[:-1])
    assert parsed[-1]["usage"]["total_tokens"] == 14


async def test_omit_usage(fake: Fake) -> None:
    async with fake.client() as c:
        stream = await c.chat.completions.create(
            model="m",
            messages=MSGS,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"fake": {"omit_usage": True}},
        )
        chunks = [ch async for ch in stream]
    assert all(ch.usage is None for ch in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_status_failures_map_to_sdk_exceptions(fake: Fake) -> None:
    async with fake.client() as c:
        with pytest.raises(openai.InternalServerError) as e500:
            await c.chat.completions.create(model="m", messages=MSGS, extra_body={"fake": {"status": 500}})
        with pytest.raises(openai.RateLimitError) as e429:
            await c.chat.completions.create(
                model="m", messages=MSGS, stream=True, extra_body={"fake": {"status": 429}}
            )
        with pytest.raises(openai.BadRequestError):  # header wins over body
            await c.chat.completions.create(
                model="m",
                messages=MSGS,
                extra_body={"fake": {"status": 500}},
                extra_headers={"x-fake-scenario": '{"status": 400}'},
            )
    assert e500.value.status_code == 500
    assert isinstance(e500.value.body, dict) and e500.value.body["type"] == "server_error"
    assert e429.value.response.headers["retry-after"] == "1"
    assert e429.value.code == "rate_limit_exceeded"


async def test_api_key_required() -> None:
    async for fake in _serve(FakeConfig(api_key="sk-right")):
        async with fake.client(api_key="sk-wrong") as c:
            with pytest.raises(openai.AuthenticationError) as exc:
                await c.chat.completions.create(model="m", messages=MSGS)
        assert exc.value.code == "invalid_api_key"
        async with fake.client(api_key="sk-right") as c:
            r = await c.chat.completions.create(model="m", messages=MSGS)
        assert r.choices[0].finish_reason == "stop"


async def test_cut_after_breaks_stream(fake: Fake) -> None:
    got: list[str] = []
    finished = False
    raised = False
    async with fake.client() as c:
        stream = await c.chat.completions.create(
            model="m",
            messages=MSGS,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"fake": {"cut_after": 3, "chunks": 10}},
        )
        try:
            async for ch in stream:
                if ch.choices and ch.choices[0].delta.content:
                    got.append(ch.choices[0].delta.content)
                if ch.choices and ch.choices[0].finish_reason:
                    finished = True
        except openai.APIConnectionError:  # the SDK wraps the incomplete-body error
            raised = True
    assert raised and not finished
    assert len(got) == 3
    stats = await fake.get("/_fake/stats")
    assert stats["streams_cut"] == 1 and stats["streams_completed"] == 0


async def test_fail_first(fake: Fake) -> None:
    extra = {"fake": {"fail_first": {"key": "k1", "times": 2, "status": 503}}}
    async with fake.client() as c:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as exc:
                await c.chat.completions.create(model="m", messages=MSGS, extra_body=extra)
            assert exc.value.status_code == 503
        r = await c.chat.completions.create(model="m", messages=MSGS, extra_body=extra)
    assert r.choices[0].finish_reason == "stop"


async def test_hang_times_out_before_first_byte(fake: Fake) -> None:
    async with fake.client(timeout=0.2) as c:
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(
                model="m", messages=MSGS, stream=True, extra_body={"fake": {"hang_ms": 3000}}
            )


async def test_client_abort_is_counted(fake: Fake) -> None:
    body = {
        "model": "m",
        "messages": MSGS,
        "stream": True,
        "fake": {"chunks": 50, "chunk_interval_ms": 20},
    }
    async with aiohttp.ClientSession() as s:
        r = await s.post(fake.base + "/v1/chat/completions", json=body)
        first = await r.content.readline()
        assert first.startswith(b"data: ")
        r.close()  # drop the connection mid-stream
    for _ in range(50):
        stats = await fake.get("/_fake/stats")
        if stats["streams_aborted_by_client"]:
            break
        await asyncio.sleep(0.01)
    assert stats["streams_started"] == 1
    assert stats["streams_aborted_by_client"] == 1
    assert stats["streams_completed"] == 0


async def test_embeddings_and_models(fake: Fake) -> None:
    async with fake.client() as c:
        b64 = await c.embeddings.create(model="text-embedding-3-small", input=["ab", "cdefgh"])
        flt = await c.embeddings.create(
            model="text-embedding-3-small", input="ab", encoding_format="float", dimensions=4
        )
        models = await c.models.list()
    assert [d.index for d in b64.data] == [0, 1]
    assert len(b64.data[0].embedding) == 8
    assert b64.usage.prompt_tokens == 3 and b64.usage.total_tokens == 3
    assert math.isclose(sum(v * v for v in b64.data[1].embedding), 1.0, rel_tol=1e-5)
    assert len(flt.data[0].embedding) == 4
    assert b64.data[0].embedding != b64.data[1].embedding
    assert "gpt-4o-mini" in [m.id for m in models.data]


async def test_recording_and_reset(fake: Fake) -> None:
    async with fake.client() as c:
        await c.chat.completions.create(model="m", messages=MSGS, extra_body={"fake": {"text": "x"}})
    recs = await fake.get("/_fake/requests")
    assert len(recs) == 1
    rec = recs[0]
    assert rec["method"] == "POST" and rec["path"] == "/v1/chat/completions"
    assert rec["body"]["fake"] == {"text": "x"}
    assert rec["headers"]["Authorization"] == "Bearer sk-test"
    assert (await fake.get("/_fake/stats"))["requests"] == 1
    async with aiohttp.ClientSession() as s, s.delete(fake.base + "/_fake/requests") as r:
        assert r.status == 200
    assert await fake.get("/_fake/requests") == []
    assert (await fake.get("/_fake/stats"))["requests"] == 0


async def test_record_off_still_counts() -> None:
    async for fake in _serve(FakeConfig(record=False, chunks=2, completion_tokens=7)):
        async with fake.client() as c:
            r = await c.chat.completions.create(model="m", messages=MSGS)
        assert r.usage and r.usage.completion_tokens == 7
        assert await fake.get("/_fake/requests") == []
        assert (await fake.get("/_fake/stats"))["requests"] == 1


def test_prompt_estimate_bound() -> None:
    msgs: list[Any] = [
        {"role": "system", "content": "héllo wörld ✓"},
        {"role": "user", "content": [{"type": "text", "text": "日本語"}, {"type": "image_url"}]},
        {"role": "assistant", "content": None},
    ]
    text_bytes = len("héllo wörld ✓".encode()) + len("日本語".encode())
    est = prompt_token_estimate(msgs)
    assert est == math.ceil(text_bytes / 4) + 3 * 3
    assert est <= text_bytes + 8 * len(msgs)
