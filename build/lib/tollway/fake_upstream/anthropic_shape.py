"""Anthropic wire shape: ``POST /v1/messages`` (stream and not) and ``/v1/messages/count_tokens``.

Usage is reported in Anthropic's own semantics: ``input_tokens`` excludes the cache,
``cache_creation`` splits writes by TTL, and a stream's ``message_start`` carries the input
counts while each ``message_delta`` restates the cumulative output (``usage_steps`` makes
several of them, e.g. output 10, 50, 200).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tollway.fake_upstream.openai_shape import tool_arguments
from tollway.fake_upstream.prologue import Reject, prologue
from tollway.fake_upstream.scenario import Scenario, estimate_text_tokens
from tollway.fake_upstream.state import FakeState
from tollway.fake_upstream.streaming import SSE_CONTENT_TYPE, send_stream

_JSON = "application/json"
_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_response(status: int, message: str | None, request_id: str) -> web.Response:
    kind = _ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": message or f"{kind} (fake upstream)"}}
    body["request_id"] = request_id
    headers = {"Content-Type": _JSON, "request-id": request_id}
    if status in (429, 529):
        headers["retry-after"] = "1"
    return web.Response(status=status, body=orjson.dumps(body), headers=headers)


def _text_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(_text_bytes(b.get("text")) for b in value if isinstance(b, dict))
    return 0


def prompt_estimate(body: dict[str, Any]) -> int:
    messages = body.get("messages") or []
    total = _text_bytes(body.get("system")) + sum(
        _text_bytes(m.get("content")) for m in messages if isinstance(m, dict)
    )
    return estimate_text_tokens(total, len(messages))


def _event(name: str, doc: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"


class AnthropicShape:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/messages", self.messages)
        router.add_post("/v1/messages/count_tokens", self.count_tokens)

    async def _prologue(self, request: web.Request, rid: str) -> tuple[Any, Scenario]:
        key = self.state.config.api_key

        def authorized(req: web.Request) -> bool:
            return key is None or req.headers.get("x-api-key") == key

        def error(status: int, message: str | None) -> web.Response:
            return error_response(status, message, rid)

        body, scenario = await prologue(self.state, request, authorized=authorized, error=error)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise Reject(error_response(400, "model: Field required", rid))
        if not isinstance(body.get("messages"), list):
            raise Reject(error_response(400, "messages: Field required", rid))
        return body, scenario

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        rid = f"req_fake{self.state.next_id()}"
        try:
            body, _ = await self._prologue(request, rid)
        except Reject as rej:
            return rej.response
        doc = {"input_tokens": prompt_estimate(body)}
        return web.Response(body=orjson.dumps(doc), headers={"Content-Type": _JSON, "request-id": rid})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        n = self.state.next_id()
        rid = f"req_fake{n}"
        try:
            body, scenario = await self._prologue(request, rid)
        except Reject as rej:
            return rej.response
        cap = body.get("max_tokens")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            return error_response(400, "max_tokens: Field required", rid)
        produced, stop = scenario.chunks, "end_turn"
        if cap < produced:
            produced, stop = cap, "max_tokens"
        words = scenario.words(produced)
        tool = scenario.tool_call
        if tool is not None:
            stop = "tool_use"
        usage: dict[str, Any] = {
            "input_tokens": scenario.prompt_tokens
            if scenario.prompt_tokens is not None
            else prompt_estimate(body),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": scenario.completion_tokens
            if scenario.completion_tokens is not None
            else produced,
        }
        if scenario.native_usage is not None:
            usage = dict(scenario.native_usage)
        model = body["model"]
        headers = {"request-id": rid}
        if not body.get("stream"):
            content: list[dict[str, Any]] = []
            if scenario.thinking:
                content.append({"type": "thinking", "thinking": scenario.thinking, "signature": "sig-fake"})
            if tool is not None:
                args = orjson.loads(tool_arguments(tool))
                content.append(
                    {
                        "type": "tool_use",
                        "id": f"toolu_fake{n}",
                        "name": str(tool.get("name", "")),
                        "input": args,
                    }
                )
            else:
                content.append({"type": "text", "text": "".join(words)})
            doc = {
                "id": f"msg_fake{n}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage if not scenario.omit_usage else None,
            }
            headers["Content-Type"] = _JSON
            return web.Response(body=orjson.dumps(doc), headers=headers)
        head, pieces, tail = self._stream(n, model, scenario, usage, words, stop)
        headers["Content-Type"] = SSE_CONTENT_TYPE
        headers["Cache-Control"] = "no-cache"
        return await send_stream(request, self.state, scenario, head, pieces, tail, headers)

    def _stream(
        self, n: int, model: str, scenario: Scenario, usage: dict[str, Any], words: list[str], stop: str
    ) -> tuple[bytes, list[bytes], bytes]:
        start_usage = {**usage, "output_tokens": 1}
        message: dict[str, Any] = {
            "id": f"msg_fake{n}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        head = _event("message_start", {"type": "message_start", "message": message})
        head += _event("ping", {"type": "ping"})
        pieces: list[bytes] = []
        index = 0
        if scenario.thinking:
            pieces.append(
                _event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "thinking", "thinking": ""},
                    },
                )
                + _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "thinking_delta", "thinking": scenario.thinking},
                    },
                )
                + _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            )
            index = 1
        tool = scenario.tool_call
        if tool is not None:
            block = {
                "type": "tool_use",
                "id": f"toolu_fake{n}",
                "name": str(tool.get("name", "")),
                "input": {},
            }
            args = tool_arguments(tool)
            half = len(args) // 2
            pieces.append(
                _event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            for part in (args[:half], args[half:]):
                delta = {"type": "input_json_delta", "partial_json": part}
                pieces.append(
                    _event(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
                )
        else:
            first = {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            for i, word in enumerate(words):
                text_doc: dict[str, Any] = {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": word},
                }
                pieces.append(
                    (_event("content_block_start", first) if i == 0 else b"")
                    + _event("content_block_delta", text_doc)
                )
        tail = _event("content_block_stop", {"type": "content_block_stop", "index": index})
        steps = list(scenario.usage_steps or [{"output_tokens": usage.get("output_tokens", 0)}])
        if not scenario.omit_usage:
            for i, step in enumerate(steps):
                last = i == len(steps) - 1
                final = {"stop_reason": stop if last else None, "stop_sequence": None}
                tail += _event(
                    "message_delta", {"type": "message_delta", "delta": final, "usage": dict(step)}
                )
        tail += _event("message_stop", {"type": "message_stop"})
        return head, pieces, tail
