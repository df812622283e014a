"""One generation call, whatever surface the client called and whatever channel serves it:
authenticate, open the call, limits, hold, upstream with failover, relay, settle, respond.

A surface module (``openai_chat``, ``anthropic_messages``, ``gemini_generate``) parses the
client's body once into a :class:`SurfaceCall`; this module does the rest. Per channel, the
body is passed through (same shape: only the model name and, for OpenAI streams,
``include_usage`` change) or translated through the pivot (different shapes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tollway import providers, tokens
from tollway.catalog.model import Channel, ChannelType
from tollway.errors import InsufficientBalance, InvalidRequest, ModelNotFound, TollwayError, UpstreamError
from tollway.limits.limiter import NO_PERMIT
from tollway.limits.specs import limit_specs
from tollway.pricing import cost
from tollway.pricing.model import Usage
from tollway.providers import translate
from tollway.providers.base import ClientHints, Json, Shape, Target
from tollway.providers.openai import operations
from tollway.providers.openai.operations import Operation
from tollway.relay.asgi import JSON_CT, ClientGone, ClientWatch, Headers, Scope, Send, send_bytes
from tollway.relay.envelopes import surface_headers
from tollway.relay.gateway import Call, Gateway
from tollway.relay.multipart import Form
from tollway.relay.output_cap import check_output_cap, output_limit
from tollway.relay.stream import relay_stream
from tollway.relay.upstream import Opened, UpstreamClientError, open_upstream

log = logging.getLogger("tollway.relay")


@dataclass(slots=True)
class SurfaceCall:
    """A client's request, parsed once by its surface."""

    surface: Shape
    endpoint: str  # as the usage record names it
    model: str
    body: Json
    stream: bool
    cap: int | None  # the client's output cap
    upper: int  # input tokens: upper bound and expected (tollway.tokens)
    expected: int
    client_wants_usage: bool = True
    hints: ClientHints = field(default_factory=ClientHints)
    operation: Operation | None = None  # an OpenAI-only operation (embeddings...), not chat
    calls: int = 1  # units a per-call price is held for (images: n)
    fallback_usage: Usage | None = None  # what the request measured, for answers without usage
    form: Form | None = None  # a multipart upload, sent on as it came (but for the model name)
    variant_keys: tuple[str, ...] = ()  # per-call price variant, first listed wins ("hd/1024x1792")
    cap_param: str = "max_tokens"  # the field the client's output cap came in, for a 400


@dataclass(frozen=True, slots=True)
class Reader:
    """How the response of the channel that answered is read: usage, text, shape."""

    shape: Shape
    usage_of: Any  # Callable[[Json], Usage | None]
    output_text: Any  # Callable[[Json], str]


class PassThroughError(InvalidRequest):
    """Upstream's own verdict on a bad request, with upstream's status."""

    def __init__(self, status: int, message: str, code: str | None) -> None:
        super().__init__(f"upstream rejected the request: {message}")
        self.status = status
        self.code = code or "invalid_request_error"


def _preparer(sc: SurfaceCall, max_output: int) -> Any:
    pivot: list[Json] = []  # translated once, on the first channel of another shape
    operation = sc.operation

    def prepare(channel: Channel) -> tuple[Target, bytes]:
        if operation is not None and (not operation.translatable or channel.type == ChannelType.OPENAI):
            target = operations.target(channel.base_url, channel.api_key, operation.path)
            if sc.form is not None:
                target.headers["content-type"] = sc.form.content_type
                return target, sc.form.encode(model=channel.upstream_model(sc.model))
            sc.body["model"] = channel.upstream_model(sc.model)
            return target, orjson.dumps(sc.body)
        adapter = providers.adapter_for(channel.type)
        model = channel.upstream_model(sc.model)
        if adapter.shape is sc.surface:
            body = adapter.passthrough_body(sc.body, model, stream=sc.stream)
        else:
            try:  # the translators take the client's body as it came: a wrong type is its 400
                if not pivot:
                    pivot.append(translate.request_to_pivot(sc.surface, sc.body, sc.model))
                body = translate.request_from_pivot(
                    adapter.shape, pivot[0], model=model, stream=sc.stream, max_output=max_output
                )
            except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
                log.info("untranslatable request body: %s: %s", type(exc).__name__, exc)
                raise InvalidRequest(
                    "the request body has a field of the wrong type or shape (it could not be "
                    f"translated for the provider serving {sc.model!r})"
                ) from None
        target = adapter.target(channel.base_url, channel.api_key, model, stream=sc.stream, hints=sc.hints)
        return target, orjson.dumps(body)

    return prepare


async def run(
    gw: Gateway,
    trace_id: str,
    scope: Scope,
    sc: SurfaceCall,
    secret: str | None,
    watch: ClientWatch,
    send: Send,
) -> Usage | None:
    """One call, recorded in the metrics at its end (whatever the outcome)."""
    if gw.metrics is None:
        return await _run(gw, trace_id, scope, sc, secret, watch, send, [])
    started = time.monotonic()
    holder: list[Call] = []
    status, code = "200", ""
    usage: Usage | None = None
    try:
        usage = await _run(gw, trace_id, scope, sc, secret, watch, send, holder)
        return usage
    except TollwayError as exc:
        status, code = str(exc.status), exc.code
        raise
    except ClientGone:
        status, code = "499", "client_disconnected"
        raise
    except BaseException:
        status, code = "500", "internal_error"
        raise
    finally:
        _observe(gw, sc, holder[0] if holder else None, usage, status, code, started)


def _observe(
    gw: Gateway, sc: SurfaceCall, call: Call | None, usage: Usage | None, status: str, code: str, t0: float
) -> None:
    m = gw.metrics
    if m is None:
        return
    surface = sc.surface.value
    group = call.facts.group_name if call is not None else ""
    m.requests.labels(surface, sc.model, group, status).inc()
    if code:
        m.errors.labels(surface, code).inc()
    m.latency.labels(surface, "true" if sc.stream else "false").observe(time.monotonic() - t0)
    if call is None:
        return
    if call.ttft_ms is not None:
        m.ttft.labels(surface).observe(call.ttft_ms / 1000)
    if usage is not None:
        for category, n in (
            ("input", usage.input_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_5m_tokens + usage.cache_write_1h_tokens),
            ("output", usage.output_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if n:
                m.tokens.labels(sc.model, group, category).inc(n)
    if call.facts.charged_nano:
        m.credits.labels(call.facts.model_billed, group).inc(call.facts.charged_nano)


async def _run(
    gw: Gateway,
    trace_id: str,
    scope: Scope,
    sc: SurfaceCall,
    secret: str | None,
    watch: ClientWatch,
    send: Send,
    holder: list[Call],
) -> Usage | None:
    caller = await gw.authenticate(secret)
    call = gw.open_call(trace_id, caller, sc.model, endpoint=sc.endpoint, stream=sc.stream, scope=scope)
    holder.append(call)
    if sc.variant_keys:
        call.entry = cost.with_variant(call.entry, *sc.variant_keys)
    entry = call.entry
    if sc.operation is not None and not sc.operation.translatable:  # OpenAI-compatible channels only
        call.channels = [c for c in call.channels if c.type == ChannelType.OPENAI]
        if not call.channels:
            raise ModelNotFound(
                f"no OpenAI-compatible upstream serves {sc.model!r} for {sc.endpoint}", param="model"
            )
    check_output_cap(sc.surface, sc.model, sc.cap, sc.cap_param, entry, gw.settings.output_cap_policy)
    max_output = output_limit(sc.cap, entry)
    reserve_tokens = sc.expected + max_output
    shared = gw.biller.shared is not None  # several nodes: Redis checks limits and balance at once
    permit = (
        NO_PERMIT if shared else gw.limiter.acquire(caller.key, caller.account, caller.group, reserve_tokens)
    )
    usage: Usage | None = None
    try:
        try:
            await gw.biller.admit(
                call.facts,
                entry,
                input_upper=sc.upper,
                input_expected=sc.expected,
                max_output=max_output,
                spend_cap_nano=caller.key.spend_cap_nano,
                calls=sc.calls,
                limits=limit_specs(caller.key, caller.account, caller.group) if shared else (),
                tokens=reserve_tokens,
            )
        except InsufficientBalance:
            permit.refund()  # a refused call uses up no rate budget (docs/limits.md)
            raise
        opened = await _open(gw, call, watch, _preparer(sc, max_output))
        headers = surface_headers(sc.surface, trace_id)
        op = sc.operation
        if op is not None and op.translatable and opened.channel.type != ChannelType.OPENAI:
            op = None  # served by translation, like any generation
        adapter = providers.adapter_for(opened.channel.type)
        if sc.stream:
            if op is not None and op.tap is not None and op.stream is not None:
                tap, surface = op.tap(), op.stream(sc.client_wants_usage)
            else:
                tap = adapter.tap()
                surface = translate.surface_stream(
                    sc.surface, adapter.shape, model=sc.model, client_wants_usage=sc.client_wants_usage
                )
            usage = await relay_stream(
                gw,
                call,
                opened,
                watch,
                send,
                tap=tap,
                surface=surface,
                headers=headers,
                input_estimate=sc.expected,
            )
        else:
            reader = (
                Reader(sc.surface, op.usage_of, op.output_text)
                if op is not None
                else Reader(adapter.shape, adapter.usage, adapter.output_text)
            )
            usage = await _relay_json(gw, call, opened, watch, send, sc, reader, headers)
    finally:
        # TPM counts the tokens billed: a call that ended without usage gives its reservation back
        permit.release(0 if usage is None else usage.prompt_tokens + usage.output_tokens)
    return usage


def _void(gw: Gateway, call: Call, status: str, http_status: int, code: str | None) -> None:
    gw.biller.void(
        call.facts,
        call.entry,
        status=status,
        http_status=http_status,
        error_code=code,
        latency_ms=call.elapsed_ms(),
    )


async def _open(gw: Gateway, call: Call, watch: ClientWatch, prepare: Any) -> Opened:
    s = gw.settings
    try:
        opened = await watch.race(
            open_upstream(
                gw.http,
                call.channels,
                prepare,
                connect_timeout=s.upstream_connect_timeout_s,
                first_byte_timeout=s.upstream_first_byte_timeout_s,
                idle_timeout=s.upstream_idle_timeout_s,
                health=gw.health,
                attempts_log=call.attempts,
                max_attempts=s.upstream_max_attempts,
                total_deadline=s.upstream_total_deadline_s,
                sticky=call.sticky_key,
            )
        )
    except ClientGone:
        _note_attempts(gw, call)
        _void(gw, call, "client_disconnected", 499, None)
        raise
    except UpstreamClientError as exc:
        _note_attempts(gw, call)
        _void(gw, call, "upstream_rejected", exc.status, exc.code)
        raise PassThroughError(exc.status, exc.message, exc.code) from exc
    except TollwayError as exc:
        _note_attempts(gw, call)
        _void(gw, call, "upstream_failed", exc.status, exc.code)
        raise
    call.facts.channel_id = opened.channel.id
    _note_attempts(gw, call)
    return opened


def _note_attempts(gw: Gateway, call: Call) -> None:
    if not call.attempts:
        return
    call.facts.attempts = orjson.dumps(call.attempts).decode()
    if gw.metrics is not None:
        counter = gw.metrics.upstream_attempts
        for a in call.attempts:
            counter.labels(a["name"], a["outcome"]).inc()


async def _relay_json(
    gw: Gateway,
    call: Call,
    opened: Opened,
    watch: ClientWatch,
    send: Send,
    sc: SurfaceCall,
    reader: Reader,
    headers: Headers,
) -> Usage | None:
    resp = opened.response
    try:
        data = await watch.race(resp.read())
    except ClientGone:
        _void(gw, call, "client_disconnected", 499, None)
        raise
    except Exception as exc:
        _void(gw, call, "upstream_failed", 502, "upstream_error")
        raise UpstreamError(
            f"upstream {opened.channel.name!r} broke off the response: {type(exc).__name__}"
        ) from exc
    finally:
        resp.release()
    op = sc.operation
    if op is not None and op.raw_answer:  # audio or text: relayed as bytes, usage if JSON says
        content_type = opened.response.headers.get("content-type", "application/octet-stream")
        answer = _json_object(data) if "json" in content_type else None
        told = None if answer is None else op.usage_of(answer)
        usage = told or sc.fallback_usage or estimated_usage(sc.expected, "")
        latency = call.ttft_ms = call.elapsed_ms()
        await gw.biller.settle(call.facts, call.entry, usage, latency_ms=latency, ttft_ms=latency)
        await send_bytes(send, 200, data, [(b"content-type", content_type.encode("latin-1")), *headers])
        return usage
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        _void(gw, call, "upstream_failed", 502, "upstream_error")
        raise UpstreamError(f"upstream {opened.channel.name!r} answered with a body that is not JSON")
    reported: Usage | None = reader.usage_of(doc)
    usage = reported if reported is not None else estimated_usage(sc.expected, reader.output_text(doc))
    if reader.shape is not sc.surface:
        pivot = translate.response_to_pivot(reader.shape, doc)
        data = translate.response_from_pivot(sc.surface, pivot, usage, sc.model)
    latency = call.ttft_ms = call.elapsed_ms()
    await gw.biller.settle(call.facts, call.entry, usage, latency_ms=latency, ttft_ms=latency)
    await send_bytes(send, 200, data, [JSON_CT, *headers])
    return usage


def _json_object(data: bytes) -> Json | None:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def estimated_usage(input_estimate: int, output_text: str) -> Usage:
    return Usage(
        input_tokens=input_estimate, output_tokens=tokens.count_output_tokens(output_text), estimated=True
    )
