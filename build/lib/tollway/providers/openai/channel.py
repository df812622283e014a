"""OpenAI-compatible channels (OpenAI, OpenRouter, DeepSeek, most relays): chat completions.

Auth is ``Authorization: Bearer``; the base URL is the SDK's (``https://api.openai.com/v1``),
so the path is ``/chat/completions``. Streams always ask for usage
(``stream_options.include_usage``); the usage chunk is the one with ``choices: []``.
Azure OpenAI (``*.openai.azure.com``) takes the key in ``api-key`` and the deployment in the
path; a base URL of ``https://<resource>.openai.azure.com/openai/v1`` (Azure's v1 API) works
like any OpenAI-compatible one, which is what Tollway expects for Azure.
"""

from __future__ import annotations

from typing import Any

from tollway import tokens
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import ClientHints, Json, Shape, Target
from tollway.providers.openai import operations

DONE = object()  # the payload of ``data: [DONE]``


class ChatTap:
    """Reads an OpenAI chat stream: text for estimates, the usage chunk, ``[DONE]``."""

    __slots__ = ("done", "has_output", "has_usage", "text_parts", "usage_doc")

    def __init__(self) -> None:
        self.done = False
        self.has_output = False
        self.has_usage = False
        self.text_parts: list[str] = []
        self.usage_doc: Any = None

    def feed(self, event: bytes) -> Any:
        payload = sse.data_of(event)
        if payload is None:
            return None
        if payload == sse.DONE_PAYLOAD:
            self.done = True
            return DONE
        doc = sse.parse(payload)
        if not isinstance(doc, dict):
            return None
        for choice in doc.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text_parts.append(content)
                self.has_output = True
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.text_parts.append(reasoning)
                self.has_output = True
            for tool in delta.get("tool_calls") or ():
                fn = tool.get("function") or {}
                self.text_parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
                self.has_output = True
        usage = doc.get("usage")
        if usage:
            self.usage_doc = usage
            self.has_usage = True
        return doc

    def usage(self, input_estimate: int) -> Usage:
        if self.usage_doc is not None:
            return normalize.from_openai_chat(self.usage_doc)
        return Usage(
            input_tokens=input_estimate,
            output_tokens=tokens.count_output_tokens("".join(self.text_parts)),
            estimated=True,
        )


def is_usage_chunk(doc: Any) -> bool:
    """The dedicated usage chunk of ``include_usage`` streams: usage and no choices."""
    return isinstance(doc, dict) and bool(doc.get("usage")) and not doc.get("choices")


class OpenAIChatChannel:
    shape = Shape.OPENAI_CHAT

    def target(self, base_url: str, api_key: str, model: str, *, stream: bool, hints: ClientHints) -> Target:
        del model, stream, hints
        return operations.target(base_url, api_key, "/chat/completions")

    def passthrough_body(self, body: Json, model: str, *, stream: bool) -> Json:
        body["model"] = model
        if stream:
            raw = body.get("stream_options")
            options = dict(raw) if isinstance(raw, dict) else {}
            options["include_usage"] = True
            body["stream_options"] = options
        return body

    def usage(self, doc: Json) -> Usage | None:
        usage = doc.get("usage")
        return normalize.from_openai_chat(usage) if usage else None

    def output_text(self, doc: Json) -> str:
        return chat_output_text(doc)

    def tap(self) -> ChatTap:
        return ChatTap()


def chat_output_text(doc: Json) -> str:
    parts: list[str] = []
    for choice in doc.get("choices") or ():
        msg = choice.get("message") or {}
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str):
            parts.append(reasoning)
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return "".join(parts)
