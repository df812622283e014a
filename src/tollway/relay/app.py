"""The data-plane ASGI application: routing and the error edge for ``/v1``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tollway.errors import NotFound, PayloadTooLarge, RequestTimeout, TollwayError
from tollway.observability.logs import trace_id_var
from tollway.relay import (
    anthropic_messages,
    billing_compat,
    gemini_generate,
    intake,
    openai_chat,
    openai_operations,
    openai_responses,
)
from tollway.relay.asgi import (
    ClientGone,
    ClientWatch,
    Receive,
    Scope,
    Send,
    send_json,
)
from tollway.relay.envelopes import render_error, surface_of_path
from tollway.relay.gateway import Gateway, bearer_secret, new_trace_id

log = logging.getLogger("tollway.relay")

Handler = Callable[[Gateway, str, Scope, bytes, ClientWatch, Send], Awaitable[None]]

POST_ROUTES: dict[str, Handler] = {
    "/v1/chat/completions": openai_chat.chat_completions,
    "/v1/embeddings": openai_chat.embeddings,
    "/v1/responses": openai_responses.responses,
    "/v1/images/generations": openai_operations.images,
    "/v1/audio/speech": openai_operations.speech,
    "/v1/audio/transcriptions": openai_operations.transcriptions,
    "/v1/rerank": openai_operations.rerank,
    "/v1/messages": anthropic_messages.messages,
    "/v1/messages/count_tokens": anthropic_messages.count_tokens,
}


def post_handler(path: str) -> Handler | None:
    handler = POST_ROUTES.get(path)
    if (
        handler is None
        and ":" in path
        and path.startswith(("/v1beta/models/", "/v1/models/", "/v1alpha/models/"))
    ):
        return gemini_generate.generate  # /{version}/models/{model}:{action}
    return handler


class DataPlane:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trace_id = new_trace_id()
        token = trace_id_var.set(trace_id)
        try:
            await self._dispatch(trace_id, scope, receive, send)
        except TollwayError as exc:
            body, headers = render_error(surface_of_path(scope["path"]), exc, trace_id)
            if isinstance(exc, PayloadTooLarge | RequestTimeout):
                headers.append((b"connection", b"close"))  # the rest of the body is never read
            await send_json(send, exc.status, body, headers)
        except (ConnectionResetError, ClientGone):
            pass  # the client left before we could answer
        except Exception:
            log.exception("unexpected error in %s %s [%s]", scope["method"], scope["path"], trace_id)
            body, headers = render_error(
                surface_of_path(scope["path"]), TollwayError("internal error"), trace_id
            )
            await send_json(send, 500, body, headers)
        finally:
            self.gw.biller.abandon(trace_id)
            trace_id_var.reset(token)

    async def _dispatch(self, trace_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST":
            handler = post_handler(path)
            if handler is None:
                raise NotFound(f"no route POST {path}")
            self.gw.ready()
            settings = self.gw.settings
            rule = intake.body_rule(path, settings)
            intake.check_content_type(scope, rule)
            raw = await intake.read_request(scope, receive, rule, settings.body_read_timeout_s)
            watch = ClientWatch(receive)
            try:
                await handler(self.gw, trace_id, scope, raw, watch, send)
            finally:
                watch.close()
            return
        if method == "GET":
            if path == "/v1/models":
                await self._models(trace_id, scope, send)
                return
            if path in ("/v1/dashboard/billing/subscription", "/dashboard/billing/subscription"):
                await billing_compat.subscription(self.gw, trace_id, scope, send)
                return
            if path in ("/v1/dashboard/billing/usage", "/dashboard/billing/usage"):
                await billing_compat.usage(self.gw, trace_id, scope, send)
                return
        raise NotFound(f"no route {method} {path}")

    async def _models(self, trace_id: str, scope: Scope, send: Send) -> None:
        caller = await self.gw.authenticate(bearer_secret(scope))
        names = self.gw.config.models_for(caller.group, caller.key)
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "tollway"} for m in names]
        await send_json(send, 200, {"object": "list", "data": data}, [(b"x-request-id", trace_id.encode())])
