"""Gemini wire shape: ``POST /{v1beta|v1}/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse`` and ``:countTokens``.

Usage is reported in Gemini's own semantics (``usageMetadata``): ``promptTokenCount``
includes ``cachedContentTokenCount``; ``thoughtsTokenCount`` is reported beside
``candidatesTokenCount``. Stream chunks end with ``\\r\\n\\r\\n`` as Google's do; the last one
carries ``finishReason`` and the final counts.
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
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_response(status: int, message: str | None) -> web.Response:
    name = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    body = {"error": {"code": status, "message": message or f"{name} (fake upstream)", "status": name}}
    return web.Response(status=status, body=orjson.dumps(body), headers={"Content-Type": _JSON})


def prompt_estimate(body: dict[str, Any]) -> int:
    contents = body.get("contents") or []
    total = 0
    for content in [body.get("systemInstruction"), *contents]:
        for part in (content or {}).get("parts") or () if isinstance(content, dict) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                total += len(text.encode())
    return estimate_text_tokens(total, len(contents))


def _chunk(parts: list[Any], model: str, rid: str, *, usage: Any = None, finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps(_doc(parts, model, rid, usage=usage, finish=finish)) + b"\r\n\r\n"


def _doc(
    parts: list[Any], model: str, rid: str, *, usage: Any = None, finish: str | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    doc: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        doc["usageMetadata"] = usage
    doc["modelVersion"] = model
    doc["responseId"] = rid
    return doc


class GeminiShape:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def add_routes(self, router: web.UrlDispatcher) -> None:
        for version in ("v1beta", "v1"):
            router.add_post(f"/{version}/models/{{target}}", self.models_action)

    async def models_action(self, request: web.Request) -> web.StreamResponse:
        n = self.state.next_id()
        rid = f"fake-{n}"
        model, _, action = request.match_info["target"].rpartition(":")
        key = self.state.config.api_key

        def authorized(req: web.Request) -> bool:
            return key is None or key in (req.headers.get("x-goog-api-key"), req.query.get("key"))

        try:
            body, scenario = await prologue(
                self.state, request, authorized=authorized, error=lambda s, m: error_response(s, m)
            )
            if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
                raise Reject(error_response(400, "contents is not specified"))
        except Reject as rej:
            return rej.response
        if action == "countTokens":
            return web.Response(
                body=orjson.dumps({"totalTokens": prompt_estimate(body)}), headers={"Content-Type": _JSON}
            )
        if action not in ("generateContent", "streamGenerateContent"):
            return error_response(404, f"unknown action {action}")
        config = body.get("generationConfig") or {}
        cap = config.get("maxOutputTokens") if isinstance(config, dict) else None
        produced, finish = scenario.chunks, "STOP"
        if isinstance(cap, int) and cap < produced:
            produced, finish = cap, "MAX_TOKENS"
        words = scenario.words(produced)
        prompt = scenario.prompt_tokens if scenario.prompt_tokens is not None else prompt_estimate(body)
        output = scenario.completion_tokens if scenario.completion_tokens is not None else produced
        usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": output}
        usage["totalTokenCount"] = prompt + output
        if scenario.native_usage is not None:
            usage = dict(scenario.native_usage)
        parts: list[Any] = [{"text": scenario.thinking, "thought": True}] if scenario.thinking else []
        tool = scenario.tool_call
        call = None
        if tool is not None:
            call = {
                "functionCall": {
                    "name": str(tool.get("name", "")),
                    "args": orjson.loads(tool_arguments(tool)),
                }
            }
        if action == "generateContent":
            parts += [call] if call is not None else [{"text": "".join(words)}]
            doc = _doc(parts, model, rid, usage=None if scenario.omit_usage else usage, finish=finish)
            return web.Response(body=orjson.dumps(doc), headers={"Content-Type": _JSON})
        head, pieces, tail = self._stream(model, rid, scenario, usage, parts, words, call, finish)
        headers = {"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache"}
        return await send_stream(request, self.state, scenario, head, pieces, tail, headers)

    def _stream(
        self,
        model: str,
        rid: str,
        scenario: Scenario,
        usage: dict[str, Any],
        thought: list[Any],
        words: list[str],
        call: Any,
        finish: str,
    ) -> tuple[bytes, list[bytes], bytes]:
        steps = list(scenario.usage_steps or ())
        final_usage = None if scenario.omit_usage else (dict(steps[-1]) if steps else usage)
        partial = {
            "promptTokenCount": usage.get("promptTokenCount", 0),
            "totalTokenCount": usage.get("promptTokenCount", 0),
        }
        head = _chunk(thought, model, rid, usage=partial) if thought else b""
        pieces: list[bytes] = []
        if call is None:
            for i, word in enumerate(words):
                step = dict(steps[i]) if i < len(steps) - 1 else partial
                pieces.append(_chunk([{"text": word}], model, rid, usage=step))
            tail = _chunk([], model, rid, usage=final_usage, finish=finish)
        else:
            tail = _chunk([call], model, rid, usage=final_usage, finish=finish)
        return head, pieces, tail
