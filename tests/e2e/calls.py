"""Calling Tollway the way customers do: the official openai SDK, sync and async, streaming
and not, with the fake upstream's per-request behaviour in ``extra_body={"fake": ...}``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .stack import Stack

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
# Tollway's documented prompt estimate for MESSAGES (tollway/tokens.py): ceil(2 ASCII bytes
# / 4) + 4 framing tokens per message + 3 reply-priming tokens = 8; the upper bound counts
# one token per UTF-8 byte instead: 2 + 4 + 3 = 9.
MESSAGES_EXPECTED_TOKENS = 8
MESSAGES_UPPER_TOKENS = 9

MODES = [("sync", False), ("sync", True), ("async", False), ("async", True)]
MODE_IDS = ["sync", "sync-stream", "async", "async-stream"]


def tag() -> str:
    return uuid.uuid4().hex


def fake(tag_: str | None = None, **kw: Any) -> dict[str, Any]:
    """``extra_body`` for the fake upstream; ``tag`` lets a test find its requests there."""
    body: dict[str, Any] = dict(kw)
    body["tag"] = tag_ or tag()
    return {"fake": body}


@dataclass
class ChatResult:
    trace_id: str
    text: str = ""
    usage: Any = None  # the usage the client saw (non-stream body or the usage chunk)
    chunks: list[Any] = field(default_factory=list)


async def chat(
    stack: Stack,
    secret: str,
    mode: str,
    stream: bool,
    *,
    model: str = "gpt-4o",
    include_usage: bool | None = None,
    **kw: Any,
) -> ChatResult:
    """One chat completion through Tollway; returns the trace id and what the client saw."""
    kw.setdefault("messages", MESSAGES)
    if stream:
        kw["stream"] = True
        if include_usage is not None:
            kw["stream_options"] = {"include_usage": include_usage}
    if mode == "sync":
        with stack.client(secret) as client:
            if not stream:
                resp = client.chat.completions.create(model=model, **kw)
                assert resp._request_id
                return ChatResult(resp._request_id, resp.choices[0].message.content or "", resp.usage)
            s = client.chat.completions.create(model=model, **kw)
            result = ChatResult(s.response.headers["x-request-id"])
            with s:
                for chunk in s:
                    _take(result, chunk)
            return result
    async with stack.aclient(secret) as aclient:
        if not stream:
            resp = await aclient.chat.completions.create(model=model, **kw)
            assert resp._request_id
            return ChatResult(resp._request_id, resp.choices[0].message.content or "", resp.usage)
        a = await aclient.chat.completions.create(model=model, **kw)
        result = ChatResult(a.response.headers["x-request-id"])
        async with a:
            async for chunk in a:
                _take(result, chunk)
        return result


def _take(result: ChatResult, chunk: Any) -> None:
    result.chunks.append(chunk)
    for choice in chunk.choices:
        if choice.delta and choice.delta.content:
            result.text += choice.delta.content
    if chunk.usage is not None:
        result.usage = chunk.usage
