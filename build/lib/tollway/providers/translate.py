"""Between any two shapes, through the pivot (OpenAI chat): requests, responses, streams.

Same shape on both sides is never translated (see :func:`surface_stream`): the client's bytes
go upstream and upstream's bytes come back, with only the final events held.
"""

from __future__ import annotations

from typing import Any

from tollway.pricing.model import Usage
from tollway.providers.anthropic import from_pivot as anthropic_in
from tollway.providers.anthropic import surface as anthropic_out
from tollway.providers.anthropic import to_pivot as anthropic_pivot
from tollway.providers.base import Json, PivotReader, PivotWriter, Shape, SurfaceStream
from tollway.providers.gemini import from_pivot as gemini_in
from tollway.providers.gemini import surface as gemini_out
from tollway.providers.gemini import to_pivot as gemini_pivot
from tollway.providers.openai import responses_pivot, responses_surface
from tollway.providers.openai import surface as openai_out
from tollway.providers.openai.channel import DONE


def request_to_pivot(shape: Shape, body: Json, model: str) -> Json:
    if shape is Shape.ANTHROPIC:
        return anthropic_pivot.request_to_openai(body)
    if shape is Shape.GEMINI:
        return gemini_pivot.request_to_openai(body, model)
    if shape is Shape.OPENAI_RESPONSES:
        return responses_pivot.request_to_openai(body)
    return body


def request_from_pivot(shape: Shape, pivot: Json, *, model: str, stream: bool, max_output: int) -> Json:
    """The pivot as a request to an upstream of ``shape``; ``max_output`` fills a required
    output cap (Anthropic's ``max_tokens``) when the client gave none."""
    if shape is Shape.ANTHROPIC:
        cap = pivot.get("max_completion_tokens") or pivot.get("max_tokens") or max_output
        return anthropic_in.request_from_openai(pivot, model=model, stream=stream, max_tokens=int(cap))
    if shape is Shape.GEMINI:
        cap = pivot.get("max_completion_tokens") or pivot.get("max_tokens") or max_output
        return gemini_in.request_from_openai(pivot, max_tokens=int(cap))
    out = {k: v for k, v in pivot.items() if k not in ("stream", "stream_options")}
    out["model"] = model
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def response_to_pivot(shape: Shape, doc: Json) -> Json:
    if shape is Shape.ANTHROPIC:
        return anthropic_pivot.response_to_openai(doc)
    if shape is Shape.GEMINI:
        return gemini_pivot.response_to_openai(doc)
    return doc


def response_from_pivot(shape: Shape, pivot: Json, usage: Usage, model: str) -> bytes:
    if shape is Shape.ANTHROPIC:
        return anthropic_out.response_from_pivot(pivot, usage, model)
    if shape is Shape.GEMINI:
        return gemini_out.response_from_pivot(pivot, usage, model)
    if shape is Shape.OPENAI_RESPONSES:
        return responses_surface.response_from_pivot(pivot, usage, model)
    return openai_out.response_from_pivot(pivot, usage, model)


class OpenAIReader:
    """OpenAI chunks are already the pivot; the usage chunk and ``[DONE]`` are not content."""

    __slots__ = ()

    def read(self, doc: Any) -> list[Json]:
        if doc is DONE or not isinstance(doc, dict) or not doc.get("choices"):
            return []
        return [{"choices": doc["choices"]}]


def stream_reader(shape: Shape) -> PivotReader:
    if shape is Shape.ANTHROPIC:
        return anthropic_pivot.StreamToOpenAI()
    if shape is Shape.GEMINI:
        return gemini_pivot.StreamToOpenAI()
    return OpenAIReader()


def stream_writer(shape: Shape, model: str, client_wants_usage: bool) -> PivotWriter:
    if shape is Shape.ANTHROPIC:
        return anthropic_out.AnthropicWriter(model)
    if shape is Shape.GEMINI:
        return gemini_out.GeminiWriter(model)
    if shape is Shape.OPENAI_RESPONSES:
        return responses_surface.ResponsesWriter(model)
    return openai_out.OpenAIWriter(model, client_wants_usage)


class TranslatedStream:
    """Native events -> pivot chunks -> the surface's events; final events from the usage."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: PivotReader, writer: PivotWriter) -> None:
        self.reader = reader
        self.writer = writer

    def push(self, event: bytes, doc: Any) -> bytes:
        del event
        chunks = self.reader.read(doc)
        if not chunks:
            return b""
        if len(chunks) == 1:
            return self.writer.feed(chunks[0])
        return b"".join(self.writer.feed(c) for c in chunks)

    def tail(self, usage: Usage) -> bytes:
        return self.writer.finish(usage)

    def error(self, message: str, code: str) -> bytes:
        return self.writer.error(message, code)


def surface_stream(surface: Shape, channel: Shape, *, model: str, client_wants_usage: bool) -> SurfaceStream:
    """The client side of a stream from a ``channel``-shaped upstream to a ``surface`` client."""
    if surface is channel:
        if surface is Shape.ANTHROPIC:
            return anthropic_out.AnthropicPassThrough()
        if surface is Shape.GEMINI:
            return gemini_out.GeminiPassThrough()
        return openai_out.OpenAIPassThrough(client_wants_usage)
    return TranslatedStream(stream_reader(channel), stream_writer(surface, model, client_wants_usage))
