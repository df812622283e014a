"""``POST /v1/responses``: the OpenAI Responses API, streaming and not.

OpenAI-compatible channels get it passed through (only the model name changes) and it is
billed from the Responses usage (``response.completed`` when streaming, held back until the
settlement has committed). Anthropic and Gemini channels get it translated through the pivot
(``providers/openai/responses_surface.py``) and it is billed from their usage. A request that
continues a conversation stored upstream (``previous_response_id``) stays on OpenAI channels.
"""

from __future__ import annotations

from tollway import tokens
from tollway.errors import InvalidRequest
from tollway.providers.base import Shape
from tollway.providers.openai.responses import RESPONSES, RESPONSES_STORED
from tollway.relay import pipeline
from tollway.relay.asgi import ClientWatch, Scope, Send
from tollway.relay.bodies import parse_json_body, positive_int, require_model
from tollway.relay.gateway import Gateway, bearer_secret


async def responses(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = require_model(body)
    if body.get("input") in (None, "", []) and not body.get("previous_response_id"):
        raise InvalidRequest("'input' is required", param="input")
    upper, expected = tokens.responses_input_bounds(body, image_tokens=tokens.image_tokens_for(model))
    sc = pipeline.SurfaceCall(
        surface=Shape.OPENAI_RESPONSES,
        endpoint="responses",
        model=model,
        body=body,
        stream=bool(body.get("stream")),
        cap=positive_int(body, "max_output_tokens"),
        cap_param="max_output_tokens",
        upper=upper,
        expected=expected,
        operation=RESPONSES_STORED if body.get("previous_response_id") else RESPONSES,
    )
    await pipeline.run(gw, trace_id, scope, sc, bearer_secret(scope), watch, send)
