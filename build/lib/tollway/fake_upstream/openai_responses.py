"""OpenAI Responses wire shape: ``POST /v1/responses`` (stream and not).

Usage in the Responses semantics (``input_tokens`` includes
``input_tokens_details.cached_tokens``; ``output_tokens`` includes
``output_tokens_details.reasoning_tokens``); a stream ends with ``response.completed``
carrying it (no ``[DONE]``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from tollway.fake_upstream.openai_shape import error_response, tool_arguments
from tollway.fake_upstream.prologue import Reject, prologue
from tollway.fake_upstream.scenario import estimate_text_tokens
from tollway.fake_upstream.state import FakeState
from tollway.fake_upstream.streaming import SSE_CONTENT_TYPE, send_stream


def _input_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(_input_bytes(v) for v in value)
    if isinstance(value, dict):
        return _input_bytes(value.get("content")) + _input_bytes(value.get("text"))
    return 0


def _event(doc: dict[str, Any]) -> bytes:
    return b"event: " + str(doc["type"]).encode() + b"\ndata: " + orjson.dumps(doc) + b"\n\n"


class ResponsesShape:
    def __init__(self, state: FakeState) -> None:
        self.state = state
        key = state.config.api_key
        self._expected = None if key is None else f"Bearer {key}"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/responses", self.responses)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        n = self.state.next_id()
        rid = f"req_fake{n}"
        expected = self._expected
        try:
            body, scenario = await prologue(
                self.state,
                request,
                authorized=lambda r: expected is None or r.headers.get("Authorization") == expected,
                error=lambda s, m: error_response(s, m, request_id=rid),
            )
        except Reject as rej:
            return rej.response
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error_response(400, "Missing required parameter: 'model'.", request_id=rid)
        produced, status = scenario.chunks, "completed"
        cap = body.get("max_output_tokens")
        if isinstance(cap, int) and cap < produced:
            produced, status = cap, "incomplete"
        words = scenario.words(produced)
        prompt = scenario.prompt_tokens
        if prompt is None:
            prompt = estimate_text_tokens(
                _input_bytes(body.get("input")) + _input_bytes(body.get("instructions")), 1
            )
        output = scenario.completion_tokens if scenario.completion_tokens is not None else produced
        usage: dict[str, Any] = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": scenario.cached_tokens},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": scenario.reasoning_tokens},
            "total_tokens": prompt + output,
        }
        if scenario.native_usage is not None:
            usage = dict(scenario.native_usage)
        tool = scenario.tool_call
        if tool is not None:
            item: dict[str, Any] = {
                "id": f"fc_fake{n}",
                "type": "function_call",
                "status": "completed",
                "call_id": f"call_fake{n}",
                "name": str(tool.get("name", "")),
                "arguments": tool_arguments(tool),
            }
        else:
            part = {"type": "output_text", "text": "".join(words), "annotations": []}
            item = {"id": f"msg_fake{n}", "type": "message", "status": "completed", "role": "assistant"}
            item["content"] = [part]
        response: dict[str, Any] = {
            "id": f"resp_fake{n}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": body["model"],
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": None if scenario.omit_usage else usage,
        }
        if status == "incomplete":
            response["incomplete_details"] = {"reason": "max_output_tokens"}
        headers = {"x-request-id": rid}
        if not body.get("stream"):
            headers["Content-Type"] = "application/json"
            return web.Response(body=orjson.dumps(response), headers=headers)
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        head = _event({"type": "response.created", "sequence_number": 0, "response": started})
        pieces: list[bytes] = []
        seq = 1
        if tool is None:
            empty = {**item, "status": "in_progress", "content": []}
            head += _event(
                {
                    "type": "response.output_item.added",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": empty,
                }
            )
            blank = {"type": "output_text", "text": "", "annotations": []}
            head += _event(
                {
                    "type": "response.content_part.added",
                    "sequence_number": seq + 1,
                    "item_id": item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "part": blank,
                }
            )
            seq += 2
            for word in words:
                pieces.append(
                    _event(
                        {
                            "type": "response.output_text.delta",
                            "sequence_number": seq,
                            "item_id": item["id"],
                            "output_index": 0,
                            "content_index": 0,
                            "delta": word,
                        }
                    )
                )
                seq += 1
        else:
            added = {**item, "status": "in_progress", "arguments": ""}
            head += _event(
                {
                    "type": "response.output_item.added",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": added,
                }
            )
            seq += 1
            pieces.append(
                _event(
                    {
                        "type": "response.function_call_arguments.delta",
                        "sequence_number": seq,
                        "item_id": item["id"],
                        "output_index": 0,
                        "delta": item["arguments"],
                    }
                )
            )
            seq += 1
        tail = _event(
            {"type": "response.output_item.done", "sequence_number": seq, "output_index": 0, "item": item}
        )
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        tail += _event({"type": terminal, "sequence_number": seq + 1, "response": response})
        headers["Content-Type"] = SSE_CONTENT_TYPE
        return await send_stream(request, self.state, scenario, head, pieces, tail, headers)
