"""Gemini channels: the Gemini API (``POST {base}/{version}/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse`` for streams), key in ``x-goog-api-key``.

The version is the one the client called on the Gemini surface (``v1beta`` or ``v1``),
``v1beta`` otherwise (it has every feature ``v1`` has). A base URL that already ends in a
version is used as it is.

Usage semantics (docs/pricing.md §6): ``promptTokenCount`` includes
``cachedContentTokenCount``; ``thoughtsTokenCount`` is reported beside
``candidatesTokenCount`` and billed as output. In a stream every chunk restates the counts so
far; the chunk carrying ``finishReason`` has the final ones.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tollway import tokens
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import ClientHints, Json, Shape, Target

DEFAULT_VERSION = "v1beta"
_VERSION = re.compile(r"v\d+(?:alpha|beta)?\d*")


def finish_reason_of(doc: Json) -> str | None:
    for candidate in doc.get("candidates") or ():
        if isinstance(candidate, dict) and candidate.get("finishReason"):
            return str(candidate["finishReason"])
    return None


def parts_text(doc: Json) -> str:
    out: list[str] = []
    for candidate in doc.get("candidates") or ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        for part in (content or {}).get("parts") or ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                out.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                out.append(str(call.get("name", "")) + orjson.dumps(call.get("args")).decode())
    return "".join(out)


class GenerateTap:
    """Reads a Gemini stream once: the latest usageMetadata, the text, the finishing chunk."""

    __slots__ = ("done", "has_output", "has_usage", "last_usage", "text_parts")

    def __init__(self) -> None:
        self.done = False
        self.has_output = False
        self.has_usage = False  # the finishing chunk carried usageMetadata
        self.last_usage: Any = None
        self.text_parts: list[str] = []

    def feed(self, event: bytes) -> Any:
        doc = sse.parse(sse.data_of(event))
        if not isinstance(doc, dict):
            return None
        text = parts_text(doc)
        if text:
            self.text_parts.append(text)
            self.has_output = True
        usage = doc.get("usageMetadata")
        if usage:
            self.last_usage = usage
        if finish_reason_of(doc):
            self.done = True
            self.has_usage = self.last_usage is not None
        return doc

    def usage(self, input_estimate: int) -> Usage:
        if self.has_usage:
            return normalize.from_gemini(self.last_usage)
        counted = tokens.count_output_tokens("".join(self.text_parts))
        if self.last_usage is not None:  # counts so far: exact input, output at least counted
            usage = normalize.from_gemini(self.last_usage)
            usage.output_tokens = max(usage.output_tokens, counted)
            usage.estimated = True
            return usage
        return Usage(input_tokens=input_estimate, output_tokens=counted, estimated=True)


class GeminiChannel:
    shape = Shape.GEMINI

    def target(self, base_url: str, api_key: str, model: str, *, stream: bool, hints: ClientHints) -> Target:
        base = base_url.rstrip("/")
        if not _VERSION.fullmatch(base.rsplit("/", 1)[-1]):
            base = f"{base}/{hints.api_version or DEFAULT_VERSION}"
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        headers = {"content-type": "application/json", "x-goog-api-key": api_key}
        return Target(f"{base}/models/{model}:{action}", headers)

    def passthrough_body(self, body: Json, model: str, *, stream: bool) -> Json:
        del model, stream  # the model and the streaming are in the URL
        return body

    def usage(self, doc: Json) -> Usage | None:
        usage = doc.get("usageMetadata")
        return normalize.from_gemini(usage) if usage else None

    def output_text(self, doc: Json) -> str:
        return parts_text(doc)

    def tap(self) -> GenerateTap:
        return GenerateTap()
