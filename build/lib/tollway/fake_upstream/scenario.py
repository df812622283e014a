"""Per-request behaviour control shared by every wire shape.

A request may carry a top-level ``"fake": {...}`` object in its JSON body (the openai SDK's
``extra_body``) or an ``x-fake-scenario: <json>`` header; header keys win over body keys.
Recognised keys: ``usage`` {prompt_tokens, completion_tokens, cached_tokens,
reasoning_tokens}, ``latency_ms``, ``hang_ms``, ``chunks``, ``chunk_interval_ms``,
``status``, ``cut_after``, ``stall_after`` + ``stall_ms`` (a stream pauses that long before
content chunk ``stall_after``: a timeout after the first byte), ``omit_usage``,
``fail_first`` {key, times, status}, ``text``,
and, for every wire shape:

* ``native_usage``: the usage object exactly as the answering shape reports it, in that
  provider's own semantics (OpenAI ``usage``, Anthropic ``usage`` with ``input_tokens``
  excluding the cache and the ``cache_creation`` 5m/1h split, Gemini ``usageMetadata`` with
  ``cachedContentTokenCount`` and ``thoughtsTokenCount``);
* ``usage_steps``: for streams, a list of such objects reported one after another (Anthropic:
  one cumulative ``message_delta`` each; Gemini: the ``usageMetadata`` of successive chunks,
  the last on the finishing chunk);
* ``tool_call`` {name, arguments}: answer with this function call instead of text;
* ``thinking``: reasoning text sent before the answer (where the shape has a place for it).

A request that goes through a translating gateway loses its ``fake`` object, so the scenario
may also be written into the prompt text as ``<fake>{...json...}</fake>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from tollway.fake_upstream.config import FakeConfig

SCENARIO_HEADER = "x-fake-scenario"
MARKER_OPEN = "<fake>"
MARKER_CLOSE = "</fake>"

DEFAULT_WORDS: tuple[str, ...] = (
    "The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and",
    "runs", "far", "away", "into", "green", "hills",
)  # fmt: skip


class ScenarioError(ValueError):
    """The ``fake`` object or the scenario header is malformed (answered with a 400)."""


@dataclass(frozen=True, slots=True)
class FailFirst:
    key: str
    times: int
    status: int


@dataclass(frozen=True, slots=True)
class Scenario:
    """Fully resolved behaviour of one request (config defaults + overrides)."""

    latency_ms: float = 0.0
    hang_ms: float = 0.0
    chunks: int = 8
    chunk_interval_ms: float = 0.0
    status: int | None = None
    cut_after: int | None = None
    stall_after: int | None = None
    stall_ms: float = 0.0
    omit_usage: bool = False
    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    fail_first: FailFirst | None = None
    native_usage: Mapping[str, Any] | None = None
    usage_steps: tuple[Mapping[str, Any], ...] | None = None
    tool_call: Mapping[str, Any] | None = None
    thinking: str | None = None

    @property
    def delay_s(self) -> float:
        """Seconds to wait before the response headers."""
        return (self.latency_ms + self.hang_ms) / 1000.0

    def words(self, n: int) -> list[str]:
        """The ``n`` content tokens: the scenario's ``text`` repeated, else a fixed sentence."""
        if self.text is not None:
            first = self.text
            rest = " " + self.text
            return [first if i == 0 else rest for i in range(n)]
        w = DEFAULT_WORDS
        return [w[0] if i == 0 else " " + w[i % len(w)] for i in range(n)]


@dataclass(frozen=True, slots=True)
class Usage:
    """Shape-neutral usage with OpenAI semantics (cached ⊆ prompt, reasoning ⊆ completion)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def default_scenario(config: FakeConfig) -> Scenario:
    return Scenario(
        latency_ms=config.latency_ms,
        chunks=config.chunks,
        chunk_interval_ms=config.chunk_interval_ms,
        prompt_tokens=config.prompt_tokens,
        completion_tokens=config.completion_tokens,
        cached_tokens=config.cached_tokens,
        reasoning_tokens=config.reasoning_tokens,
    )


def estimate_text_tokens(text_bytes: int, items: int, per_item: int = 3) -> int:
    """Deterministic token estimate: ceil(bytes / 4) + ``per_item`` per message/input."""
    return math.ceil(text_bytes / 4) + per_item * items


def plan_usage(scenario: Scenario, prompt_estimate: int, produced: int) -> Usage:
    """Usage to report: exact overrides win; derived values keep the subset invariants."""
    cached = scenario.cached_tokens
    reasoning = scenario.reasoning_tokens
    prompt = scenario.prompt_tokens
    if prompt is None:
        prompt = max(prompt_estimate, cached)
    completion = scenario.completion_tokens
    if completion is None:
        completion = produced + reasoning
    return Usage(prompt, completion, cached, reasoning)


def from_marker(value: Any) -> Any:
    """The JSON of the first ``<fake>...</fake>`` found in any string of ``value``."""
    if isinstance(value, str):
        start = value.find(MARKER_OPEN)
        end = value.find(MARKER_CLOSE, start)
        if start >= 0 and end > start:
            try:
                return orjson.loads(value[start + len(MARKER_OPEN) : end])
            except orjson.JSONDecodeError as exc:
                raise ScenarioError(f"the <fake> marker is not valid JSON: {exc}") from None
        return None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = from_marker(item)
        if found is not None:
            return found
    return None


def resolve(base: Scenario, body: Any, header: str | None, raw: bytes | None = None) -> Scenario:
    """Apply the body's ``fake`` object (else a ``<fake>`` marker in the prompt) and the
    scenario header (header wins) to ``base``. ``raw`` (the body's bytes) lets a request
    without a marker skip the search."""
    fake = body.get("fake") if isinstance(body, dict) else None
    if fake is None and (raw is None or MARKER_OPEN.encode() in raw):
        fake = from_marker(body)
    if fake is None and header is None:
        return base
    merged: dict[str, Any] = {}
    if fake is not None:
        if not isinstance(fake, dict):
            raise ScenarioError("'fake' must be an object")
        merged.update(fake)
    if header is not None:
        try:
            parsed = orjson.loads(header)
        except orjson.JSONDecodeError as exc:
            raise ScenarioError(f"{SCENARIO_HEADER} is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ScenarioError(f"{SCENARIO_HEADER} must be a JSON object")
        merged.update(parsed)
    return _apply(base, merged)


def _apply(base: Scenario, fake: Mapping[str, Any]) -> Scenario:
    changes: dict[str, Any] = {}
    for key in ("latency_ms", "hang_ms", "chunk_interval_ms", "stall_ms"):
        if key in fake:
            changes[key] = _number(fake, key)
    for key in ("chunks", "cut_after", "stall_after", "status"):
        if key in fake:
            changes[key] = _opt_int(fake, key)
    if changes.get("chunks") is None:
        changes.pop("chunks", None)
    if "omit_usage" in fake:
        changes["omit_usage"] = bool(fake["omit_usage"])
    if "text" in fake:
        text = fake["text"]
        if text is not None and not isinstance(text, str):
            raise ScenarioError("fake.text must be a string")
        changes["text"] = text
    usage = fake.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            raise ScenarioError("fake.usage must be an object")
        for key in ("prompt_tokens", "completion_tokens"):
            if key in usage:
                changes[key] = _opt_int(usage, key)
        for key in ("cached_tokens", "reasoning_tokens"):
            if key in usage:
                changes[key] = _opt_int(usage, key) or 0
    changes.update(_native(fake))
    ff = fake.get("fail_first")
    if ff is not None:
        if not isinstance(ff, dict) or not isinstance(ff.get("key"), str):
            raise ScenarioError("fake.fail_first must be {key: str, times: int, status: int}")
        times = _opt_int(ff, "times")
        status = _opt_int(ff, "status")
        changes["fail_first"] = FailFirst(ff["key"], 1 if times is None else times, status or 500)
    return replace(base, **changes) if changes else base


def _number(obj: Mapping[str, Any], key: str) -> float:
    value = obj[key]
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"fake.{key} must be a number")
    return float(value)


def _opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"fake.{key} must be an integer")
    if value < 0:
        raise ScenarioError(f"fake.{key} must not be negative")
    return value


def _native(fake: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in ("native_usage", "tool_call"):
        if key in fake:
            value = fake[key]
            if value is not None and not isinstance(value, dict):
                raise ScenarioError(f"fake.{key} must be an object")
            changes[key] = value
    if "usage_steps" in fake:
        steps = fake["usage_steps"]
        if steps is not None and (not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps)):
            raise ScenarioError("fake.usage_steps must be an array of objects")
        changes["usage_steps"] = tuple(steps) if steps else None
    if "thinking" in fake:
        if fake["thinking"] is not None and not isinstance(fake["thinking"], str):
            raise ScenarioError("fake.thinking must be a string")
        changes["thinking"] = fake["thinking"]
    return changes
