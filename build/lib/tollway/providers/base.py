"""The one small interface every upstream API sits behind, and the client-facing stream kinds.

Vocabulary (docs/surfaces.md):

* a **shape** is a wire format: OpenAI chat completions, Anthropic Messages, Gemini
  generateContent;
* the **surface** is the shape the client called, the **channel** the shape upstream speaks;
* same shape: the body and the stream bytes pass through (only the model name, and for OpenAI
  streams ``stream_options.include_usage``, change); different shapes: requests, responses and
  stream events are translated through the **pivot**, the OpenAI chat shape.

Usage is always read by the *channel* adapter from upstream's own report, so billing follows
the upstream provider's semantics, whatever the client speaks.

Nothing here knows about HTTP servers, the database or the domain: wire types only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from tollway.pricing.model import Usage

Json = dict[str, Any]


class Shape(StrEnum):
    OPENAI_CHAT = "openai-chat"
    ANTHROPIC = "anthropic-messages"
    GEMINI = "gemini"
    OPENAI_RESPONSES = "openai-responses"  # a surface only: OpenAI channels take it as it is


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send one upstream request."""

    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ClientHints:
    """What the client's own request says about how upstream should be called (pass-through
    headers such as ``anthropic-version`` / ``anthropic-beta``, the Gemini API version)."""

    headers: tuple[tuple[str, str], ...] = ()
    api_version: str | None = None


class StreamTap(Protocol):
    """The channel side of a stream: reads each native SSE event once, and knows the usage
    upstream reported, the output it produced (for an estimate when usage never arrives) and
    whether upstream's own end-of-stream marker has been seen."""

    done: bool
    has_output: bool
    has_usage: bool

    def feed(self, event: bytes) -> Any:
        """Parse one SSE event; returns its JSON payload (or None for comments, keep-alives
        and unparseable data). The payload is handed on to the surface, never parsed again."""
        ...

    def usage(self, input_estimate: int) -> Usage:
        """The reported usage, else input estimate + output counted from the text seen
        (``estimated=True``)."""
        ...


class ChannelAdapter(Protocol):
    """One upstream API: how to reach it, how to read its usage and its errors."""

    shape: Shape

    def target(self, base_url: str, api_key: str, model: str, *, stream: bool, hints: ClientHints) -> Target:
        """URL and headers of a generation request for ``model`` (the channel's model name)."""
        ...

    def passthrough_body(self, body: Json, model: str, *, stream: bool) -> Json:
        """The client's own body, made ready for upstream (same shape): the channel's model
        name and whatever Tollway must always ask for (OpenAI: ``include_usage``)."""
        ...

    def usage(self, doc: Json) -> Usage | None:
        """Usage of a whole (non-stream) response, None when upstream reported none."""
        ...

    def output_text(self, doc: Json) -> str:
        """All generated text of a whole response (for an estimate when usage is missing)."""
        ...

    def tap(self) -> StreamTap: ...


class SurfaceStream(Protocol):
    """The client side of a stream. ``push`` gets every upstream event (bytes and the payload
    the tap parsed) and returns what to send now; the events that end the stream are held back
    and returned by ``tail`` once the settlement has committed (DESIGN.md §10)."""

    def push(self, event: bytes, doc: Any) -> bytes: ...

    def tail(self, usage: Usage) -> bytes: ...

    def error(self, message: str, code: str) -> bytes:
        """An in-stream error event in the surface's shape (after a cut, or a failed settlement)."""
        ...


class PivotReader(Protocol):
    """Native stream payloads of one shape -> OpenAI chat chunks (the pivot)."""

    def read(self, doc: Any) -> list[Json]: ...


class PivotWriter(Protocol):
    """OpenAI chat chunks (the pivot) -> the surface's events; ``finish`` renders the final
    events with the usage the channel adapter normalised."""

    def feed(self, chunk: Json) -> bytes: ...

    def finish(self, usage: Usage) -> bytes: ...

    def error(self, message: str, code: str) -> bytes: ...
