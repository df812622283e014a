"""OpenAI wire shape: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from aiohttp import web

from tollway.fake_upstream.embeddings import embedding_inputs, embedding_vector, unpack_floats
from tollway.fake_upstream.prologue import Reject, prologue
from tollway.fake_upstream.scenario import (
    Scenario,
    Usage,
    estimate_text_tokens,
    plan_usage,
)
from tollway.fake_upstream.state import FakeState
from tollway.fake_upstream.streaming import SSE_CONTENT_TYPE, send_stream

_JSON = "application/json"
_DONE = b"data: [DONE]\n\n"
_MODEL_CREATED = 1_700_000_000

# status -> (type, code, message) of the OpenAI error envelope
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (fake upstream)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to perform this request."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (fake upstream)."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_SERVER_ERROR = ("server_error", None, "The server had an error while processing your request.")


def error_response(
    status: int, message: str | None = None, code: str | None = None, request_id: str = ""
) -> web.Response:
    """An OpenAI-style error: ``{"error": {"message", "type", "param", "code"}}``."""
    etype, dcode, dmsg = _ERRORS.get(status) or (
        _SERVER_ERROR if status >= 500 else ("invalid_request_error", None, "Request failed.")
    )
    body = {"error": {"message": message or dmsg, "type": etype, "param": None, "code": code or dcode}}
    headers = {"Content-Type": _JSON}
    if request_id:
        headers["x-request-id"] = request_id
    if status == 429:
        headers["retry-after"] = "1"
    return web.Response(status=status, body=orjson.dumps(body), headers=headers)


class OpenAIShape:
    """Request handlers of the OpenAI-compatible surface, bound to one ``FakeState``."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        key = state.config.api_key
        self._expected_auth = None if key is None else f"Bearer {key}"
        self._models = {m: _model_obj(m) for m in state.config.models}
        self._models_body = orjson.dumps({"object": "list", "data": list(self._models.values())})

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.chat_completions)
        router.add_post("/v1/embeddings", self.embeddings)
        router.add_get("/v1/models", self.list_models)
        router.add_get("/v1/models/{model}", self.get_model)

    async def _prologue(self, request: web.Request, rid: str) -> tuple[Any, Scenario]:
        """Record, authenticate, resolve the scenario, wait, and apply injected failures."""
        expected = self._expected_auth

        def authorized(req: web.Request) -> bool:
            return expected is None or req.headers.get("Authorization") == expected

        def error(status: int, message: str | None) -> web.Response:
            return error_response(status, message, request_id=rid)

        return await prologue(self.state, request, authorized=authorized, error=error)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        n = self.state.next_id()
        rid = f"req_fake{n}"
        try:
            body, scenario = await self._prologue(request, rid)
        except Reject as rej:
            return rej.response
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.", request_id=rid)
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list):
            return error_response(400, "'model' and 'messages' are required.", request_id=rid)
        produced = scenario.chunks
        finish = "stop"
        cap = _max_tokens(body)
        if cap is not None and cap < produced:
            produced, finish = cap, "length"
        words = scenario.words(produced)
        usage = plan_usage(scenario, prompt_token_estimate(messages), produced)
        usage_json = dict(scenario.native_usage) if scenario.native_usage is not None else usage_dict(usage)
        tool = scenario.tool_call
        if tool is not None:
            finish = "tool_calls"
        headers = {"x-request-id": rid}
        cid = f"chatcmpl-fake{n}"
        created = int(time.time())
        if not body.get("stream"):
            out: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": "".join(words),
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
            }
            message = out["choices"][0]["message"]
            if tool is not None:
                message["content"] = None
                fn = {"name": str(tool.get("name", "")), "arguments": tool_arguments(tool)}
                message["tool_calls"] = [{"id": f"call_fake{n}", "type": "function", "function": fn}]
            if scenario.thinking:
                message["reasoning_content"] = scenario.thinking
            if not scenario.omit_usage:
                out["usage"] = usage_json
            headers["Content-Type"] = _JSON
            return web.Response(body=orjson.dumps(out), headers=headers)
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        prefix = (
            b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
            b'"service_tier":"default","system_fingerprint":"fp_fake","choices":['
            % (cid.encode(), created, orjson.dumps(model))
        )
        end = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        open_end = b',"logprobs":null,"finish_reason":null}]' + end
        head = prefix + b'{"index":0,"delta":{"role":"assistant","content":"","refusal":null}'
        head += open_end
        pieces = [
            b'%s{"index":0,"delta":{"content":%s}%s' % (prefix, orjson.dumps(w), open_end) for w in words
        ]
        if tool is not None:
            pieces = [b"%s%s%s" % (prefix, orjson.dumps(d)[:-1], open_end) for d in _tool_deltas(tool, n)]
        if scenario.thinking:
            delta = {"index": 0, "delta": {"reasoning_content": scenario.thinking}}
            pieces.insert(0, b"%s%s%s" % (prefix, orjson.dumps(delta)[:-1], open_end))
        tail = b'%s{"index":0,"delta":{},"logprobs":null,"finish_reason":"%s"}]%s' % (
            prefix,
            finish.encode(),
            end,
        )
        if include_usage and not scenario.omit_usage:
            tail += b'%s],"usage":%s}\n\n' % (prefix, orjson.dumps(usage_json))
        tail += _DONE
        headers["Content-Type"] = SSE_CONTENT_TYPE
        headers["Cache-Control"] = "no-cache"
        return await send_stream(request, self.state, scenario, head, pieces, tail, headers)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        rid = f"req_fake{self.state.next_id()}"
        try:
            body, scenario = await self._prologue(request, rid)
        except Reject as rej:
            return rej.response
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error_response(400, "'model' and 'input' are required.", request_id=rid)
        inputs = embedding_inputs(body.get("input"))
        if inputs is None:
            return error_response(400, "'input' must be a string or an array.", request_id=rid)
        dims = body.get("dimensions")
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 4096:
            dims = self.state.config.embedding_dimensions
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        for i, (seed, _) in enumerate(inputs):
            packed = embedding_vector(seed, dims)
            vec: Any = base64.b64encode(packed).decode() if as_b64 else unpack_floats(packed)
            data.append({"object": "embedding", "index": i, "embedding": vec})
        prompt = scenario.prompt_tokens
        if prompt is None:
            prompt = sum(t for _, t in inputs)
        out = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }
        return web.Response(body=orjson.dumps(out), headers={"Content-Type": _JSON, "x-request-id": rid})

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        rid = f"req_fake{self.state.next_id()}"
        try:
            await self._prologue(request, rid)
        except Reject as rej:
            return rej.response
        return web.Response(body=self._models_body, headers={"Content-Type": _JSON, "x-request-id": rid})

    async def get_model(self, request: web.Request) -> web.StreamResponse:
        rid = f"req_fake{self.state.next_id()}"
        try:
            await self._prologue(request, rid)
        except Reject as rej:
            return rej.response
        model = self._models.get(request.match_info["model"])
        if model is None:
            return error_response(404, request_id=rid)
        return web.Response(body=orjson.dumps(model), headers={"Content-Type": _JSON, "x-request-id": rid})


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def tool_arguments(tool: Any) -> str:
    """A scenario's ``tool_call.arguments`` (an object or a JSON string) as a JSON string."""
    args = tool.get("arguments", {})
    return args if isinstance(args, str) else orjson.dumps(args).decode()


def _tool_deltas(tool: Any, n: int) -> list[dict[str, Any]]:
    """The streamed tool call: name first, then the arguments in two pieces."""
    args = tool_arguments(tool)
    half = len(args) // 2
    head = {"index": 0, "id": f"call_fake{n}", "type": "function"}
    head["function"] = {"name": str(tool.get("name", "")), "arguments": ""}
    deltas = [{"index": 0, "delta": {"tool_calls": [head]}}]
    for piece in (args[:half], args[half:]):
        deltas.append({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}})
    return deltas


def prompt_token_estimate(messages: list[Any]) -> int:
    """ceil(UTF-8 bytes of all message text / 4) + 3 per message."""
    total = 0
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            total += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    total += len(text.encode())
    return estimate_text_tokens(total, len(messages))


def _max_tokens(body: dict[str, Any]) -> int | None:
    caps = [
        v
        for v in (body.get("max_completion_tokens"), body.get("max_tokens"))
        if isinstance(v, int) and not isinstance(v, bool)
    ]
    return max(0, min(caps)) if caps else None


def _model_obj(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "tollway-fake"}
