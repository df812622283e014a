"""``POST /{v1beta|v1}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` and
``:countTokens``: the Gemini surface.

The model is in the path; the key in ``x-goog-api-key`` or ``?key=``. ``google-genai`` calls
``/v1/...`` by default and ``/v1beta/...`` when asked; both are served, and the version is
forwarded to Gemini channels. Streams are server-sent events (``alt=sse``, what the SDKs use).
"""

from __future__ import annotations

import orjson

from tollway import tokens
from tollway.catalog.model import ChannelType
from tollway.errors import InvalidRequest, NotFound
from tollway.providers import adapter_for
from tollway.providers.base import ClientHints, Shape
from tollway.relay import pipeline
from tollway.relay.asgi import JSON_CT, ClientWatch, Scope, Send, send_bytes
from tollway.relay.bodies import non_empty_list, parse_json_body, positive_int
from tollway.relay.counting import count_upstream
from tollway.relay.envelopes import surface_headers
from tollway.relay.gateway import Gateway, goog_secret

ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")


def parse_path(path: str) -> tuple[str, str, str] | None:
    """``/v1beta/models/gemini-2.5-pro:generateContent`` -> (version, model, action)."""
    parts = path.split("/", 3)
    if len(parts) != 4 or parts[0] or parts[2] != "models" or ":" not in parts[3]:
        return None
    model, _, action = parts[3].rpartition(":")
    if parts[1] not in ("v1", "v1beta", "v1alpha") or not model or action not in ACTIONS:
        return None
    return parts[1], model, action


def _alt_is_sse(scope: Scope) -> bool:
    query: bytes = scope.get("query_string") or b""
    return any(pair in (b"alt=sse", b"alt=SSE") for pair in query.split(b"&"))


async def generate(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    parsed = parse_path(scope["path"])
    if parsed is None:
        raise NotFound(f"no route POST {scope['path']}")
    version, model, action = parsed
    body = parse_json_body(raw)
    non_empty_list(body, "contents")
    if action == "countTokens":
        await _count(gw, trace_id, scope, body, model, version, send)
        return
    stream = action == "streamGenerateContent"
    if stream and not _alt_is_sse(scope):
        raise InvalidRequest(
            "streamGenerateContent is served as server-sent events: add ?alt=sse", param="alt"
        )
    config = body.get("generationConfig", body.get("generation_config"))
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("'generationConfig' must be an object", param="generationConfig")
    cap = positive_int(config, "maxOutputTokens", param="generationConfig.maxOutputTokens")
    if cap is None:
        cap = positive_int(config, "max_output_tokens", param="generationConfig.maxOutputTokens")
    upper, expected = tokens.gemini_input_bounds(body)
    sc = pipeline.SurfaceCall(
        surface=Shape.GEMINI,
        endpoint=f"gemini.{action}",
        model=model,
        body=body,
        stream=stream,
        cap=cap,
        cap_param="generationConfig.maxOutputTokens",
        upper=upper,
        expected=expected,
        hints=ClientHints(api_version=version),
    )
    await pipeline.run(gw, trace_id, scope, sc, goog_secret(scope), watch, send)


async def _count(
    gw: Gateway, trace_id: str, scope: Scope, body: dict[str, object], model: str, version: str, send: Send
) -> None:
    caller = await gw.authenticate(goog_secret(scope))
    call = gw.open_call(trace_id, caller, model, endpoint="gemini.countTokens", stream=False, scope=scope)
    adapter = adapter_for(ChannelType.GEMINI)
    hints = ClientHints(api_version=version)

    def target(base: str, key: str, upstream_model: str) -> tuple[str, dict[str, str]]:
        t = adapter.target(base, key, upstream_model, stream=False, hints=hints)
        return t.url.rsplit(":", 1)[0] + ":countTokens", t.headers

    counted = await count_upstream(gw, call, ChannelType.GEMINI, body, target, "totalTokens")
    if counted is None:
        counted = tokens.gemini_input_bounds(body)[1]
    headers = [JSON_CT, *surface_headers(Shape.GEMINI, trace_id)]
    await send_bytes(send, 200, orjson.dumps({"totalTokens": counted}), headers)
