"""``POST /v1/chat/completions`` and ``POST /v1/embeddings``: the OpenAI surface.

The body is parsed once (to read the model, the output cap and the prompt size); the rest is
:mod:`tollway.relay.pipeline`: an OpenAI-compatible channel gets the body unchanged except for
the channel's model name and, for streams, ``stream_options.include_usage``; an Anthropic or
Gemini channel gets it translated.
"""

from __future__ import annotations

from tollway import tokens
from tollway.errors import InvalidRequest
from tollway.providers.base import Shape
from tollway.providers.openai.operations import EMBEDDINGS
from tollway.relay import pipeline
from tollway.relay.asgi import ClientWatch, Scope, Send
from tollway.relay.bodies import non_empty_list, optional_object, parse_json_body, positive_int, require_model
from tollway.relay.gateway import Gateway, bearer_secret


async def chat_completions(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    non_empty_list(body, "messages")
    stream = bool(body.get("stream"))
    cap_param = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    cap = positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens")
    options = optional_object(body, "stream_options")
    upper, expected = tokens.chat_input_bounds(body, image_tokens=tokens.image_tokens_for(model))
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_CHAT,
        endpoint="chat.completions",
        model=model,
        body=body,
        stream=stream,
        cap=cap,
        cap_param=cap_param,
        upper=upper,
        expected=expected,
        client_wants_usage=bool((options or {}).get("include_usage")) if stream else True,
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)


async def embeddings(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    if body.get("input") in (None, "", []):
        raise InvalidRequest("'input' is required", param="input")
    upper, expected = tokens.embedding_input_bounds(body)
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_CHAT,
        endpoint="embeddings",
        model=model,
        body=body,
        stream=False,
        cap=0,
        upper=upper,
        expected=expected,
        operation=EMBEDDINGS,
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)
