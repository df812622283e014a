"""``POST /v1/chat/completions`` and ``POST /v1/embeddings``: admit, relay, settle, respond.

The body is parsed once (to read the model, the output cap and the prompt size) and passed
upstream unchanged except for the fields Tollway must set: the channel's model name and, for
streams, ``stream_options.include_usage``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tollway import tokens
from tollway.errors import InvalidRequest, TollwayError
from tollway.pricing import normalize
from tollway.pricing.model import Usage
from tollway.relay.asgi import JSON_CT, ClientGone, ClientWatch, Scope, Send, send_bytes
from tollway.relay.gateway import Call, Gateway, bearer_secret
from tollway.relay.openai_stream import relay_stream
from tollway.relay.upstream import Opened, UpstreamClientError, open_upstream


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", param="model")
    return model


def _max_output(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer", param=name)
        return value
    return None


async def chat_completions(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = _model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    stream = bool(body.get("stream"))
    cap = _max_output(body)
    caller = await gw.authenticate(bearer_secret(scope))
    call = gw.open_call(trace_id, caller, model, endpoint="chat.completions", stream=stream, scope=scope)
    upper, expected = tokens.chat_input_bounds(body, image_tokens=tokens.image_tokens_for(model))
    max_output = min(cap, call.entry.max_output_tokens) if cap else call.entry.max_output_tokens
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    client_wants_usage = bool((stream_options or {}).get("include_usage")) if stream else True

    def build(channel: Any) -> bytes:
        body["model"] = channel.upstream_model(model)
        if stream:
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        return orjson.dumps(body)

    permit = gw.limiter.acquire(caller.key, caller.account, caller.group, expected + max_output)
    actual_tokens: int | None = None
    try:
        await gw.biller.admit(
            call.facts,
            call.entry,
            input_upper=upper,
            input_expected=expected,
            max_output=max_output,
            spend_cap_nano=caller.key.spend_cap_nano,
        )
        opened = await _open(gw, call, "/chat/completions", build, watch)
        if stream:
            usage = await relay_stream(
                gw,
                call,
                opened,
                watch,
                send,
                input_estimate=expected,
                client_wants_usage=client_wants_usage,
            )
        else:
            usage = await _relay_json(
                gw,
                call,
                opened,
                watch,
                send,
                input_estimate=expected,
                usage_of=normalize.from_openai_chat,
                output_text=_chat_output_text,
            )
        actual_tokens = None if usage is None else usage.prompt_tokens + usage.output_tokens
    finally:
        permit.release(actual_tokens)


async def embeddings(
    gw: Gateway, trace_id: str, scope: Scope, raw: bytes, watch: ClientWatch, send: Send
) -> None:
    body = parse_json_body(raw)
    model = _model(body)
    if body.get("input") in (None, "", []):
        raise InvalidRequest("'input' is required", param="input")
    caller = await gw.authenticate(bearer_secret(scope))
    call = gw.open_call(trace_id, caller, model, endpoint="embeddings", stream=False, scope=scope)
    upper, expected = tokens.embedding_input_bounds(body)

    def build(channel: Any) -> bytes:
        body["model"] = channel.upstream_model(model)
        return orjson.dumps(body)

    permit = gw.limiter.acquire(caller.key, caller.account, caller.group, expected)
    actual: int | None = None
    try:
        await gw.biller.admit(
            call.facts,
            call.entry,
            input_upper=upper,
            input_expected=expected,
            max_output=0,
            spend_cap_nano=caller.key.spend_cap_nano,
        )
        opened = await _open(gw, call, "/embeddings", build, watch)
        usage = await _relay_json(
            gw,
            call,
            opened,
            watch,
            send,
            input_estimate=expected,
            usage_of=normalize.from_openai_chat,
            output_text=lambda _doc: "",
        )
        actual = None if usage is None else usage.prompt_tokens
    finally:
        permit.release(actual)


def _void_client_gone(gw: Gateway, call: Call) -> None:
    gw.biller.void(
        call.facts,
        call.entry,
        status="client_disconnected",
        http_status=499,
        error_code=None,
        latency_ms=call.elapsed_ms(),
    )


async def _open(gw: Gateway, call: Call, path: str, build: Any, watch: ClientWatch) -> Opened:
    s = gw.settings
    try:
        opened = await watch.race(
            open_upstream(
                gw.http,
                call.channels,
                path,
                build,
                connect_timeout=s.upstream_connect_timeout_s,
                first_byte_timeout=s.upstream_first_byte_timeout_s,
                idle_timeout=s.upstream_idle_timeout_s,
            )
        )
    except ClientGone:
        _void_client_gone(gw, call)
        raise
    except UpstreamClientError as exc:
        gw.biller.void(
            call.facts,
            call.entry,
            status="upstream_rejected",
            http_status=exc.status,
            error_code=exc.code,
            latency_ms=call.elapsed_ms(),
        )
        raise PassThroughError(exc.status, exc.message, exc.code) from exc
    except TollwayError as exc:
        gw.biller.void(
            call.facts,
            call.entry,
            status="upstream_failed",
            http_status=exc.status,
            error_code=exc.code,
            latency_ms=call.elapsed_ms(),
        )
        raise
    call.facts.channel_id = opened.channel.id
    return opened


class PassThroughError(InvalidRequest):
    """Upstream's own verdict on a bad request, with upstream's status."""

    def __init__(self, status: int, message: str, code: str | None) -> None:
        super().__init__(f"upstream rejected the request: {message}")
        self.status = status
        self.code = code or "invalid_request_error"


def _chat_output_text(doc: dict[str, Any]) -> str:
    parts: list[str] = []
    for choice in doc.get("choices") or ():
        msg = choice.get("message") or {}
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return "".join(parts)


async def _relay_json(
    gw: Gateway,
    call: Call,
    opened: Opened,
    watch: ClientWatch,
    send: Send,
    *,
    input_estimate: int,
    usage_of: Callable[[Any], Usage],
    output_text: Callable[[dict[str, Any]], str],
) -> Usage | None:
    resp = opened.response
    try:
        data = await watch.race(resp.read())
    except ClientGone:
        _void_client_gone(gw, call)  # nobody will read the answer: stop and charge nothing
        raise
    except Exception as exc:
        gw.biller.void(
            call.facts,
            call.entry,
            status="upstream_failed",
            http_status=502,
            error_code="upstream_error",
            latency_ms=call.elapsed_ms(),
        )
        from tollway.errors import UpstreamError

        raise UpstreamError(
            f"upstream {opened.channel.name!r} broke off the response: {type(exc).__name__}"
        ) from exc
    finally:
        resp.release()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        gw.biller.void(
            call.facts,
            call.entry,
            status="upstream_failed",
            http_status=502,
            error_code="upstream_error",
            latency_ms=call.elapsed_ms(),
        )
        from tollway.errors import UpstreamError

        raise UpstreamError(f"upstream {opened.channel.name!r} answered with a body that is not JSON")
    usage: Usage
    if doc.get("usage"):
        usage = usage_of(doc["usage"])
    else:
        usage = Usage(
            input_tokens=input_estimate,
            output_tokens=tokens.count_output_tokens(output_text(doc)),
            estimated=True,
        )
    latency = call.elapsed_ms()
    await gw.biller.settle(call.facts, call.entry, usage, latency_ms=latency, ttft_ms=latency)
    await send_bytes(send, 200, data, [JSON_CT, (b"x-request-id", call.trace_id.encode())])
    return usage
