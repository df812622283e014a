"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: the Anthropic surface.

Auth is ``x-api-key`` (or a bearer token); ``anthropic-version`` and ``anthropic-beta`` are
forwarded to Anthropic channels. ``max_tokens`` is required, as Anthropic requires it, and is
the output cap the hold is sized with. An OpenAI-compatible or Gemini channel gets the request
translated (:mod:`tollway.providers.translate`).
"""

from __future__ import annotations

import orjson

from tollway import providers, tokens
from tollway.catalog.model import ChannelType
from tollway.errors import InvalidRequest
from tollway.providers.base import ClientHints, Shape
from tollway.relay import pipeline
from tollway.relay.asgi import JSON_CT, ClientWatch, Scope, Send, header, send_bytes
from tollway.relay.bodies import non_empty_list, parse_json_body, positive_int, require_model
from tollway.relay.counting import count_upstream
from tollway.relay.envelopes import surface_headers
from tollway.relay.gateway import Gateway, bearer_secret

FORWARDED = (b"anthropic-version", b"anthropic-beta")


def _hints(scope: Scope) -> ClientHints:
    found = []
    for name in FORWARDED:
        value = header(scope, name)
        if value:
            found.append((name.decode(), value.decode("latin-1")))
    return ClientHints(headers=tuple(found))


def _check(body: dict[str, object]) -> None:
    non_empty_list(body, "messages")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest("'system' must be a string or an array of text blocks", param="system")


async def messages(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    _check(body)
    cap = positive_int(body, "max_tokens")
    if cap is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    upper, expected = tokens.chat_input_bounds(body, image_tokens=tokens.image_tokens_for(model))
    sc = pipeline.SurfaceCall(
        surface=Shape.ANTHROPIC,
        endpoint="messages",
        model=model,
        body=body,
        stream=bool(body.get("stream")),
        cap=cap,
        upper=upper,
        expected=expected,
        hints=_hints(scope),
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)


async def count_tokens(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    """Anthropic's own count when an Anthropic channel serves the model, else Tollway's
    estimate (tollway.tokens). Not billed, as Anthropic does not bill it."""
    del watch
    body = parse_json_body(raw)
    model = require_model(body)
    _check(body)
    caller = await gw.authenticate(bearer_secret(scope))
    call = gw.open_call(trace_id, caller, model, endpoint="messages.count_tokens", stream=False, scope=scope)
    adapter = providers.adapter_for(ChannelType.ANTHROPIC)
    hints = _hints(scope)

    def target(channel_base: str, key: str, upstream_model: str) -> tuple[str, dict[str, str]]:
        t = adapter.target(channel_base, key, upstream_model, stream=False, hints=hints)
        return t.url + "/count_tokens", t.headers

    counted = await count_upstream(gw, call, ChannelType.ANTHROPIC, body, target, "input_tokens")
    if counted is None:
        counted = tokens.chat_input_bounds(body, image_tokens=tokens.image_tokens_for(model))[1]
    headers = [JSON_CT, *surface_headers(Shape.ANTHROPIC, trace_id)]
    await send_bytes(send, 200, orjson.dumps({"input_tokens": counted}), headers)
