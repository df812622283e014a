"""Paths, the request and the credentials the benchmark uses, shared by bench/run.py and its parts."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent

MODEL = "gpt-4o-mini"
PROMPT = "Say hello in one short sentence."
LITELLM_KEY = "sk-bench-litellm"  # bench/litellm.yaml's master_key
FAKE_KEY = "sk-fake-upstream"  # the fake accepts any key; sent anyway, as a client would
# The Anthropic surface (POST /v1/messages): a model on an anthropic-type channel (pass-through)
# and one served only by the OpenAI-type channel (Tollway translates Anthropic <-> OpenAI chat).
ANTHROPIC_MODEL = "claude-haiku-4-5"
TRANSLATED_MODEL = "claude-sonnet-4-5"
ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
# name -> (model, what it measures, the direct baseline it is compared with)
ANTHROPIC_VARIANTS = {
    "direct-messages": (ANTHROPIC_MODEL, "the fake's /v1/messages, direct", None),
    "tollway-messages": (
        ANTHROPIC_MODEL,
        "Tollway /v1/messages -> anthropic channel (pass-through)",
        "direct-messages",
    ),
    "tollway-translated": (
        TRANSLATED_MODEL,
        "Tollway /v1/messages -> OpenAI channel (Anthropic -> OpenAI chat and back)",
        "direct",
    ),
}
