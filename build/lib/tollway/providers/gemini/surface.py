"""The Gemini surface: what a Gemini client (google-genai) receives.

Final events (held back until the settlement commits): the chunk carrying ``finishReason``
(and anything after it). A Gemini stream has no other terminator.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import Json
from tollway.providers.gemini.channel import finish_reason_of
from tollway.providers.gemini.from_pivot import FINISH_TO_GEMINI


def render_usage(u: Usage) -> Json:
    """Normalised usage in Gemini's semantics: the prompt count includes cached tokens,
    thinking tokens are reported beside the candidates' tokens."""
    prompt = u.prompt_tokens
    thoughts = min(u.reasoning_tokens, u.output_tokens)
    doc: Json = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": u.output_tokens - thoughts,
        "totalTokenCount": prompt + u.output_tokens,
    }
    if u.cache_read_tokens:
        doc["cachedContentTokenCount"] = u.cache_read_tokens
    if thoughts:
        doc["thoughtsTokenCount"] = thoughts
    return doc


def error_event(message: str, code: str) -> bytes:
    status = "UNAVAILABLE" if code in ("overloaded_error", "upstream_error") else "INTERNAL"
    return sse.data_event(
        {"error": {"code": 503 if status == "UNAVAILABLE" else 500, "message": message, "status": status}}
    )


class GeminiPassThrough:
    """A Gemini channel's chunks relayed as they are; the finishing chunk held."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: list[bytes] = []

    def push(self, event: bytes, doc: Any) -> bytes:
        if self.held or (isinstance(doc, dict) and finish_reason_of(doc)):
            self.held.append(event)
            return b""
        return event

    def tail(self, usage: Usage) -> bytes:
        del usage  # upstream's own final chunk, as it was sent
        return b"".join(self.held)

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)


def new_id() -> str:
    return secrets.token_urlsafe(16)


class GeminiWriter:
    """Pivot chunks -> Gemini stream chunks. Text flows as it comes; tool calls are collected
    (Gemini sends whole function calls) and sent in the finishing chunk with the usage."""

    __slots__ = ("_calls", "_finish", "_id", "_model")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = new_id()
        self._calls: dict[int, Json] = {}
        self._finish: str | None = None

    def _chunk(self, parts: list[Json], extra: Json | None = None) -> bytes:
        candidate: Json = {"content": {"role": "model", "parts": parts}, "index": 0}
        doc: Json = {"candidates": [candidate], "modelVersion": self._model, "responseId": self._id}
        if extra:
            candidate.update(extra.get("candidate") or {})
            if "usageMetadata" in extra:
                doc["usageMetadata"] = extra["usageMetadata"]
        return sse.data_event(doc)

    def feed(self, chunk: Json) -> bytes:
        parts: list[Json] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                parts.append({"text": reasoning, "thought": True})
            if isinstance(delta.get("content"), str) and delta["content"]:
                parts.append({"text": delta["content"]})
            for call in delta.get("tool_calls") or ():
                slot = self._calls.setdefault(int(call.get("index", 0)), {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                slot["name"] = slot["name"] or str(fn.get("name") or "")
                slot["arguments"] += str(fn.get("arguments") or "")
            if choice.get("finish_reason"):
                self._finish = FINISH_TO_GEMINI.get(str(choice["finish_reason"]), "STOP")
        return self._chunk(parts) if parts else b""

    def finish(self, usage: Usage) -> bytes:
        parts = [
            {"functionCall": {"name": c["name"], "args": _args(c["arguments"])}}
            for _, c in sorted(self._calls.items())
        ]
        extra = {"candidate": {"finishReason": self._finish or "STOP"}, "usageMetadata": render_usage(usage)}
        return self._chunk(parts, extra)

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)


def _args(arguments: str) -> Json:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def response_from_pivot(pivot: Json, usage: Usage, model: str) -> bytes:
    """A whole generateContent response for the client, from the pivot of another shape."""
    candidates: list[Json] = []
    for choice in pivot.get("choices") or ():
        message = choice.get("message") or {}
        parts: list[Json] = []
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.append({"text": reasoning, "thought": True})
        if isinstance(message.get("content"), str) and message["content"]:
            parts.append({"text": message["content"]})
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append(
                {"functionCall": {"name": fn.get("name", ""), "args": _args(fn.get("arguments") or "")}}
            )
        finish = FINISH_TO_GEMINI.get(str(choice.get("finish_reason")), "STOP")
        candidates.append(
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish,
                "index": choice.get("index", 0),
            }
        )
    doc = {
        "candidates": candidates,
        "usageMetadata": render_usage(usage),
        "modelVersion": model,
        "responseId": new_id(),
    }
    return orjson.dumps(doc)
