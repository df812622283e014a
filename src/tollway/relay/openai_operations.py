"""``POST /v1/images/generations``, ``/v1/audio/speech``, ``/v1/audio/transcriptions`` and
``/v1/rerank``: OpenAI-shaped
operations priced per call or per character, served by OpenAI-compatible channels and passed
through unchanged except for the model name (docs/surfaces.md §6).

* Images: per image, at the price the model lists for the request's quality and size
  (``per_call_variants``, e.g. ``hd/1024x1792``), times ``n``; billed for the images returned.
* Speech: per character of ``input`` (billed as input tokens); the answer is audio.
* Transcriptions: per second of audio (whisper: upstream's ``usage.seconds``; a transcript
  without usage is billed from the file's length, estimated) or per token (gpt-4o-transcribe).
* Rerank: per search unit (Cohere: one query over up to 100 documents) or per token
  (Jina-style ``usage.total_tokens``), whichever the model's price and upstream's report use.
"""

from __future__ import annotations

from typing import Any

from tollway import tokens
from tollway.errors import InvalidRequest
from tollway.pricing.model import Usage
from tollway.providers.base import Shape
from tollway.providers.openai.operations import IMAGES, RERANK, SPEECH, TRANSCRIPTIONS, speech_usage
from tollway.relay import multipart, pipeline
from tollway.relay.asgi import ClientWatch, Scope, Send, header
from tollway.relay.audio_length import seconds_bounds
from tollway.relay.bodies import non_empty_list, parse_json_body, positive_int, require_model
from tollway.relay.gateway import Gateway, bearer_secret

MAX_IMAGES = 10
DOCUMENTS_PER_SEARCH_UNIT = 100


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{name}' is required and must be a non-empty string", param=name)
    return value


def _no_stream(body: dict[str, Any], what: str) -> None:
    if body.get("stream") or body.get("stream_format") == "sse":
        raise InvalidRequest(
            f"streaming {what} is not supported; send the request without it", param="stream"
        )


async def images(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    prompt = _text(body, "prompt")
    _no_stream(body, "images")
    n = positive_int(body, "n") or 1
    if n > MAX_IMAGES:
        raise InvalidRequest(f"'n' must be at most {MAX_IMAGES}", param="n")
    size = str(body.get("size") or "1024x1024")
    quality = str(body.get("quality") or "standard")
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_CHAT,
        endpoint="images.generations",
        model=model,
        body=body,
        stream=False,
        cap=0,
        upper=tokens.utf8_len(prompt),
        expected=tokens.estimate_text_tokens(prompt),
        operation=IMAGES,
        calls=n,
        variant_keys=(f"{quality}/{size}", size),
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)


async def speech(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    characters = len(_text(body, "input"))
    _no_stream(body, "speech")
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_CHAT,
        endpoint="audio.speech",
        model=model,
        body=body,
        stream=False,
        cap=0,
        upper=characters,
        expected=characters,
        operation=SPEECH,
        fallback_usage=speech_usage(body),
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)


async def rerank(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    query = _text(body, "query")
    documents = non_empty_list(body, "documents")
    if not all(isinstance(d, str | dict) for d in documents):
        raise InvalidRequest("'documents' must be strings or objects with a 'text'", param="documents")
    texts = [query] + [d if isinstance(d, str) else str(d.get("text", "")) for d in documents]
    upper, expected = tokens.embedding_input_bounds({"input": texts})
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_CHAT,
        endpoint="rerank",
        model=model,
        body=body,
        stream=False,
        cap=0,
        upper=upper,
        expected=expected,
        operation=RERANK,
        calls=-(-len(documents) // DOCUMENTS_PER_SEARCH_UNIT),
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)


AUDIO_TOKENS_PER_SECOND_MAX = 32  # the most any audio model counts (Gemini); OpenAI about 10
AUDIO_TOKENS_PER_SECOND = 10


async def transcriptions(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    content_type = header(scope, b"content-type")
    form = multipart.parse(raw, content_type.decode("latin-1") if content_type else None)
    model = form.field("model")
    if not model:
        raise InvalidRequest("'model' is required", param="model")
    upload = form.file("file")
    if upload is None or not upload.body:
        raise InvalidRequest("'file' is required: the audio to transcribe", param="file")
    if (form.field("stream") or "").lower() == "true":
        raise InvalidRequest(
            "streaming transcriptions is not supported; send the request without it", param="stream"
        )
    upper_s, expected_s = seconds_bounds(upload.body)
    expected_tokens = expected_s * AUDIO_TOKENS_PER_SECOND
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_CHAT,
        endpoint="audio.transcriptions",
        model=model,
        body={},
        stream=False,
        cap=None,
        upper=upper_s * AUDIO_TOKENS_PER_SECOND_MAX,
        expected=expected_tokens,
        operation=TRANSCRIPTIONS,
        calls=upper_s,
        fallback_usage=Usage(input_tokens=expected_tokens, calls=expected_s, estimated=True),
        form=form,
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)
