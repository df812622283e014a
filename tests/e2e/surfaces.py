"""Shared set-up of the surface tests (test_anthropic_*, test_gemini_*, test_responses_*):
Anthropic and Gemini channels on the fake upstream next to the shared stack's OpenAI ones,
and the official ``anthropic`` and ``google-genai`` clients pointed at Tollway.

Routing (channels are added to the module's running stack; the server picks them up on its
next configuration refresh):

* group ``anth``: ``claude-*`` through an Anthropic channel (``anth-native``, priority 100);
* every other group: ``claude-sonnet-4-5`` (and the deprecated ``claude-opus-4-5``) through the
  shared OpenAI-compatible ``main`` channel (so an Anthropic client is translated to OpenAI chat);
* images, speech and rerank models: an OpenAI-compatible channel (``media``);
* ``gemini-2.5-*``: a Gemini channel for every group; ``gemini-2.0-flash``: an
  OpenAI-compatible channel (translation); ``claude-haiku-4-5`` in group ``gx``: a Gemini
  channel (Anthropic <-> Gemini translation).

A translated request loses its body's ``fake`` object, so :func:`marker` writes the fake
upstream's scenario into the prompt instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anthropic
from google import genai
from google.genai import types

from .stack import Customer, Stack, http_json, poll

GROUPS = {"anth": {"multiplier": "1"}, "gx": {"multiplier": "1"}, "ax03": {"multiplier": "0.3"}}
KEYS = {
    "anth-native": "upstream-anthropic",
    "gem-native": "upstream-gemini",
    "gem-openai": "upstream-gem-openai",
    "media": "upstream-media",
}
MEDIA_MODELS = ("dall-e-3", "dall-e-2", "tts-1", "tts-1-hd", "whisper-1", "rerank-v3.5")


def marker(**scenario: Any) -> str:
    """The fake upstream's scenario as prompt text (survives translation)."""
    return "<fake>" + json.dumps(scenario) + "</fake>"


@dataclass
class Surfaces:
    stack: Stack

    def customer(self, group: str = "anth", credit: str = "10") -> Customer:
        return self.stack.customer(group=group, credit=credit)

    def anthropic(self, secret: str, **kw: Any) -> anthropic.Anthropic:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30.0)
        return anthropic.Anthropic(base_url=self.stack.url, api_key=secret, **kw)

    def aanthropic(self, secret: str, **kw: Any) -> anthropic.AsyncAnthropic:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 30.0)
        return anthropic.AsyncAnthropic(base_url=self.stack.url, api_key=secret, **kw)

    def genai(self, secret: str, api_version: str | None = None) -> genai.Client:
        options = types.HttpOptions(base_url=self.stack.url, api_version=api_version, timeout=30_000)
        return genai.Client(api_key=secret, http_options=options)

    def fake_requests(self, needle: str) -> list[dict[str, Any]]:
        """Requests the fake received whose body mentions ``needle`` (a tag), in order."""
        status, _, doc = http_json("GET", f"{self.stack.fake_url}/_fake/requests")
        assert status == 200, doc
        return [r for r in doc if needle in json.dumps(r.get("body"))]

    def usage(self, trace_id: str, wait: float = 5.0) -> dict[str, Any]:
        return self.stack.usage(trace_id, wait=wait)


def _add_channel(stack: Stack, name: str, **kw: Any) -> None:
    prov: Any = stack.p
    if hasattr(prov, "svc"):  # AdminService provisioning (the default)
        prov._run(prov.svc.upsert_channel(name, create=True, **kw))
        return
    args = ["admin", "channel", "create", name, "--type", kw["type"], "--base-url", kw["base_url"]]
    args += ["--api-key", kw["api_key"], "--models", kw["models"], "--priority", str(kw.get("priority", 0))]
    if kw.get("groups_"):
        args += ["--groups", kw["groups_"]]
    prov.cli(*args)


def provision_surfaces(stack: Stack) -> Surfaces:
    """Add the surface tests' groups and channels to a running stack (once per module)."""
    for name, kw in GROUPS.items():
        stack.p.create_group(name, **kw)
    fake = stack.fake_url
    _add_channel(
        stack,
        "anth-native",
        type="anthropic",
        base_url=fake,
        api_key=KEYS["anth-native"],
        models="claude-opus-4-5,claude-sonnet-4-5,claude-haiku-4-5",
        priority=100,
        groups_="anth,ax03",
    )
    _add_channel(
        stack,
        "gem-openai",
        type="openai",
        base_url=f"{fake}/v1",
        api_key=KEYS["gem-openai"],
        models="gemini-2.0-flash",
    )
    _add_channel(
        stack,
        "gem-for-claude",
        type="gemini",
        base_url=fake,
        api_key=KEYS["gem-native"],
        models="claude-haiku-4-5",
        priority=100,
        groups_="gx",
    )
    _add_channel(
        stack,
        "media",
        type="openai",
        base_url=f"{fake}/v1",
        api_key=KEYS["media"],
        models=",".join(MEDIA_MODELS),
    )
    _add_channel(
        stack,
        "gem-native",
        type="gemini",
        base_url=fake,
        api_key=KEYS["gem-native"],
        models="gemini-2.5-pro,gemini-2.5-flash",
    )
    probe = stack.customer(group="x1", credit=None)

    def ready() -> bool | None:  # the last channel created is visible: all of them are
        status, _, doc = http_json(
            "GET", f"{stack.url}/v1/models", headers={"authorization": f"Bearer {probe.secret}"}
        )
        return True if status == 200 and any(m["id"] == "gemini-2.5-pro" for m in doc["data"]) else None

    poll(ready, timeout=10, what="the surface channels to be loaded")
    return Surfaces(stack)
