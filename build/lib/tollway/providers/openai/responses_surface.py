"""The OpenAI Responses surface served by a channel of another shape (Anthropic, Gemini): the
pivot (OpenAI chat) back into a Responses object or Responses stream events (the request goes
the other way in ``responses_pivot``). OpenAI-compatible channels get Responses passed through.

Final event (held back until the settlement commits): ``response.completed``, which carries
the whole response and the usage in Responses semantics.
"""

from __future__ import annotations

import secrets
import time

import orjson

from tollway.pricing.model import Usage
from tollway.providers import sse
from tollway.providers.base import Json
from tollway.providers.openai.responses import error_event


def render_usage(u: Usage) -> Json:
    prompt = u.prompt_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": prompt + u.output_tokens,
    }


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _envelope(response_id: str, model: str, status: str, output: list[Json], usage: Json | None) -> Json:
    doc: Json = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }
    if status == "incomplete":
        doc["incomplete_details"] = {"reason": "max_output_tokens"}
    return doc


def _message_item(item_id: str, text: str, status: str = "completed") -> Json:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> Json:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_from_pivot(pivot: Json, usage: Usage, model: str) -> bytes:
    choices = pivot.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[Json] = []
    if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        summary = [{"type": "summary_text", "text": message["reasoning_content"]}]
        output.append({"id": _new_id("rs"), "type": "reasoning", "summary": summary})
    if isinstance(message.get("content"), str) and message["content"]:
        output.append(_message_item(_new_id("msg"), message["content"]))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        call_id = str(call.get("id") or _new_id("call"))
        output.append(
            _call_item(_new_id("fc"), call_id, str(fn.get("name", "")), str(fn.get("arguments", "")))
        )
    status = "incomplete" if choice.get("finish_reason") == "length" else "completed"
    return orjson.dumps(_envelope(_new_id("resp"), model, status, output, render_usage(usage)))


class ResponsesWriter:
    """Pivot chunks -> Responses stream events; ``finish`` closes the open item and sends
    ``response.completed`` with the whole response and the usage."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = _new_id("resp")
        self._seq = 0
        self._started = False
        self._output: list[Json] = []  # finished items
        self._open: Json | None = None  # the item being streamed
        self._calls: dict[int, int] = {}  # pivot tool-call index -> output index
        self._status = "completed"

    def _event(self, doc: Json) -> bytes:
        doc["sequence_number"] = self._seq
        self._seq += 1
        return sse.named_event(str(doc["type"]), doc)

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            created = _envelope(self._id, self._model, "in_progress", [], None)
            out.append(self._event({"type": "response.created", "response": created}))
            out.append(self._event({"type": "response.in_progress", "response": created}))

    def _close(self, out: list[bytes]) -> None:
        item = self._open
        if item is None:
            return
        index = len(self._output)
        if item["type"] == "message":
            part = item["content"][0]
            base = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out.append(self._event({"type": "response.output_text.done", **base, "text": part["text"]}))
            out.append(self._event({"type": "response.content_part.done", **base, "part": part}))
        else:
            base = {"item_id": item["id"], "output_index": index}
            out.append(
                self._event(
                    {"type": "response.function_call_arguments.done", **base, "arguments": item["arguments"]}
                )
            )
        item["status"] = "completed"
        out.append(self._event({"type": "response.output_item.done", "output_index": index, "item": item}))
        self._output.append(item)
        self._open = None

    def _open_item(self, out: list[bytes], item: Json) -> None:
        self._close(out)
        self._open = item
        index = len(self._output)
        added = {**item, "content": []} if item["type"] == "message" else dict(item)
        out.append(self._event({"type": "response.output_item.added", "output_index": index, "item": added}))
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            base = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out.append(self._event({"type": "response.content_part.added", **base, "part": part}))

    def feed(self, chunk: Json) -> bytes:
        out: list[bytes] = []
        self._start(out)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open is None or self._open["type"] != "message":
                    self._open_item(out, _message_item(_new_id("msg"), "", "in_progress"))
                assert self._open is not None
                self._open["content"][0]["text"] += text
                base = {"item_id": self._open["id"], "output_index": len(self._output), "content_index": 0}
                out.append(self._event({"type": "response.output_text.delta", **base, "delta": text}))
            for call in delta.get("tool_calls") or ():
                self._tool_call(out, call)
            if choice.get("finish_reason") == "length":
                self._status = "incomplete"
        return b"".join(out)

    def _tool_call(self, out: list[bytes], call: Json) -> None:
        number = int(call.get("index", 0))
        fn = call.get("function") or {}
        if number not in self._calls:
            call_id = str(call.get("id") or _new_id("call"))
            self._open_item(
                out, _call_item(_new_id("fc"), call_id, str(fn.get("name") or ""), "", "in_progress")
            )
            self._calls[number] = len(self._output)
        arguments = fn.get("arguments")
        if (
            isinstance(arguments, str)
            and arguments
            and self._open is not None
            and self._open["type"] == "function_call"
        ):
            self._open["arguments"] += arguments
            base = {"item_id": self._open["id"], "output_index": len(self._output)}
            out.append(
                self._event({"type": "response.function_call_arguments.delta", **base, "delta": arguments})
            )

    def finish(self, usage: Usage) -> bytes:
        out: list[bytes] = []
        self._start(out)
        self._close(out)
        final = _envelope(self._id, self._model, self._status, self._output, render_usage(usage))
        kind = "response.completed" if self._status == "completed" else "response.incomplete"
        out.append(self._event({"type": kind, "response": final}))
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        return error_event(message, code)
