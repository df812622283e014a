"""What the data plane checks of a request before anything else (docs/surfaces.md "Limits"):
its Content-Type, the size of its body and the time the body takes to arrive.

All of it happens before authentication, any rate permit or hold, so a refused body costs
nothing and leaves no record. The size is checked on ``Content-Length`` first (nothing is
read), then by counting the chunks as they arrive: reading stops at the first byte over.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tollway.errors import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from tollway.providers.base import Shape
from tollway.relay.asgi import Receive, Scope, header, read_body
from tollway.relay.envelopes import surface_of_path
from tollway.settings import Settings

# Routes whose body is a multipart/form-data upload, not JSON.
UPLOAD_ROUTES = frozenset({"/v1/audio/transcriptions"})

CURL_HINT = "send 'Content-Type: application/json' (curl: -H 'content-type: application/json')"


@dataclass(frozen=True, slots=True)
class BodyRule:
    limit: int  # bytes
    upload: bool  # multipart/form-data rather than JSON


def body_rule(path: str, settings: Settings) -> BodyRule:
    if path in UPLOAD_ROUTES:
        return BodyRule(settings.upload_max_body_bytes, upload=True)
    surface = surface_of_path(path)
    if surface is Shape.ANTHROPIC:
        return BodyRule(settings.anthropic_max_body_bytes, upload=False)
    if surface is Shape.GEMINI:
        return BodyRule(settings.gemini_max_body_bytes, upload=False)
    return BodyRule(settings.max_body_bytes, upload=False)


def media_type(scope: Scope) -> str | None:
    """The request's media type, lower case without parameters; None when not sent."""
    raw = header(scope, b"content-type")
    if raw is None:
        return None
    return raw.decode("latin-1").split(";", 1)[0].strip().lower() or None


def is_json(media: str) -> bool:
    _, _, subtype = media.partition("/")
    return subtype == "json" or subtype.endswith("+json")


def check_content_type(scope: Scope, rule: BodyRule) -> None:
    """415 for a body the route cannot read. A JSON route takes ``application/json`` (any
    ``*/json`` or ``*/*+json``, any charset) and a request without Content-Type (read as
    JSON, as every official SDK sends JSON); form-encoded, text and the rest are refused."""
    media = media_type(scope)
    if rule.upload:
        if media != "multipart/form-data":
            sent = media or "a body without Content-Type"
            raise UnsupportedMediaType(
                f"this endpoint takes a multipart/form-data upload, not {sent}",
                param="content-type",
            )
        return
    if media is None or is_json(media):
        return
    hint = f"; {CURL_HINT}" if media == "application/x-www-form-urlencoded" else ""
    raise UnsupportedMediaType(
        f"the request body must be JSON (Content-Type: application/json), not {media}{hint}",
        param="content-type",
    )


async def read_request(scope: Scope, receive: Receive, rule: BodyRule, timeout_s: float) -> bytes:
    """The whole body, or 413 (over ``rule.limit``) / 408 (not all there within ``timeout_s``)."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > rule.limit:
        raise PayloadTooLarge(f"the request body is larger than the limit of {rule.limit} bytes")
    try:
        async with asyncio.timeout(timeout_s):
            return await read_body(receive, rule.limit)  # stops at the first chunk over the limit
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} seconds") from None
