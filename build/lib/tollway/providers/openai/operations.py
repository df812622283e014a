"""OpenAI operations other than chat (embeddings, ...): served only by OpenAI-compatible
channels, passed through unchanged except for the model name, each with its own path and
usage report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.providers.base import Json, StreamTap, SurfaceStream, Target


def auth_headers(base_url: str, api_key: str) -> dict[str, str]:
    """Bearer auth; Azure OpenAI takes its key in ``api-key``."""
    headers = {"content-type": "application/json"}
    if ".openai.azure.com" in base_url:
        headers["api-key"] = api_key
    else:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


def target(base_url: str, api_key: str, path: str) -> Target:
    return Target(base_url.rstrip("/") + path, auth_headers(base_url, api_key))


@dataclass(frozen=True, slots=True)
class Operation:
    """One OpenAI endpoint: its path under the channel's base URL and how to read its usage.
    ``tap`` and ``stream`` are set for operations that can stream."""

    path: str
    usage_of: Callable[[Json], Usage | None]
    output_text: Callable[[Json], str]
    tap: Callable[[], StreamTap] | None = None
    stream: Callable[[bool], SurfaceStream] | None = None
    # the answer may be something other than JSON (speech audio, transcripts as text): it is
    # relayed as bytes with upstream's content type, and usage falls back to what the request
    # measured (SurfaceCall.fallback_usage) when upstream reports none
    raw_answer: bool = False
    # other channel types may serve it through translation (Responses); else OpenAI-only
    translatable: bool = False


def _embedding_usage(doc: Json) -> Usage | None:
    usage = doc.get("usage")
    return normalize.from_openai_chat(usage) if usage else None


EMBEDDINGS = Operation("/embeddings", _embedding_usage, lambda _doc: "")


def _images_usage(doc: Json) -> Usage:
    """Images upstream returned (``data``), plus its token usage where it reports one
    (gpt-image models; priced only if the model's entry is per token)."""
    usage = normalize.from_openai_responses(doc.get("usage")) if doc.get("usage") else Usage()
    data = doc.get("data")
    usage.calls = len(data) if isinstance(data, list) else 0
    return usage


IMAGES = Operation("/images/generations", _images_usage, lambda _doc: "")


def speech_usage(body: Json) -> Usage:
    """Speech is priced per character of input (tts-1 $15 per million characters): the
    characters are billed as input tokens. The answer is audio and reports nothing."""
    text = body.get("input")
    return Usage(input_tokens=len(text) if isinstance(text, str) else 0)


SPEECH = Operation("/audio/speech", lambda _doc: None, lambda _doc: "", raw_answer=True)


def transcription_usage(doc: Json) -> Usage | None:
    """``usage`` of a transcription: ``{"type": "duration", "seconds": N}`` (whisper: billed
    per second as calls) or ``{"type": "tokens", "input_tokens", "output_tokens"}``
    (gpt-4o-transcribe: billed as tokens; audio input tokens at the model's input price)."""
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None
    if usage.get("type") == "duration":
        seconds = usage.get("seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            return Usage(calls=max(1, -(-int(seconds * 1000) // 1000)))
        return None
    return normalize.from_openai_responses(usage)


TRANSCRIPTIONS = Operation(
    "/audio/transcriptions", transcription_usage, lambda doc: str(doc.get("text", "")), raw_answer=True
)


def _rerank_usage(doc: Json) -> Usage:
    """Cohere reports search units (``meta.billed_units.search_units``), Jina and most
    compatible rerankers tokens (``usage.total_tokens``); a per-search price with no units
    reported counts the call as one search."""
    meta = doc.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    units = billed.get("search_units") if isinstance(billed, dict) else None
    usage = doc.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return Usage(
        input_tokens=total if isinstance(total, int) and not isinstance(total, bool) else 0,
        calls=units if isinstance(units, int) and not isinstance(units, bool) else 1,
    )


RERANK = Operation("/rerank", _rerank_usage, lambda _doc: "")
