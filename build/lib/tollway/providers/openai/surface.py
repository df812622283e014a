"""The OpenAI chat surface: what an OpenAI client receives.

Final events (held back until the settlement commits): the usage chunk (shown only to
clients that asked for it with ``stream_options.include_usage``) and ``data: [DONE]``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import Json
from tollway.providers.openai.channel import DONE, is_usage_chunk

DONE_EVENT = b"data: [DONE]\n\n"


def render_usage(u: Usage) -> Json:
    """Normalised usage in OpenAI's semantics: cached and written tokens are subsets of
    ``prompt_tokens``, reasoning a subset of ``completion_tokens``."""
    prompt = u.prompt_tokens
    details: Json = {"cached_tokens": u.cache_read_tokens}
    writes = u.cache_write_5m_tokens + u.cache_write_1h_tokens
    if writes:
        details["cache_write_tokens"] = writes
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def error_event(message: str, code: str) -> bytes:
    return sse.data_event({"error": {"message": message, "type": "upstream_error", "code": code}})


class OpenAIPassThrough:
    """An OpenAI channel's chunks relayed as they are; the usage chunk and ``[DONE]`` held."""

    __slots__ = ("usage_event", "wants_usage")

    def __init__(self, client_wants_usage: bool) -> None:
        self.wants_usage = client_wants_usage
        self.usage_event: bytes | None = None

    def push(self, event: bytes, doc: Any) -> bytes:
        if doc is DONE:
            return b""
        if is_usage_chunk(doc):
            if self.wants_usage:
                self.usage_event = event
            return b""
        return event

    def tail(self, usage: Usage) -> bytes:
        del usage  # upstream's own usage chunk, as it was sent
        return (self.usage_event or b"") + DONE_EVENT

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)


def new_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


class OpenAIWriter:
    """Pivot chunks stamped with this call's id, model and time; the usage chunk rendered
    from the channel's normalised usage."""

    __slots__ = ("_stamp", "wants_usage")

    def __init__(self, model: str, client_wants_usage: bool) -> None:
        self.wants_usage = client_wants_usage
        self._stamp: Json = {
            "id": new_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

    def feed(self, chunk: Json) -> bytes:
        return sse.data_event({**self._stamp, **chunk})

    def finish(self, usage: Usage) -> bytes:
        if not self.wants_usage:
            return DONE_EVENT
        return sse.data_event({**self._stamp, "choices": [], "usage": render_usage(usage)}) + DONE_EVENT

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)


def response_from_pivot(pivot: Json, usage: Usage, model: str) -> bytes:
    """A whole chat completion for the client, from the pivot built off another shape."""
    doc = {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": pivot.get("choices") or [],
        "usage": render_usage(usage),
    }
    return orjson.dumps(doc)
