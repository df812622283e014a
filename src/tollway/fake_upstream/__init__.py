"""Fake OpenAI-compatible upstream for tests, demos and benchmarks.

Sibling modules per wire shape (``openai_shape``; Anthropic / Gemini later) share
``scenario`` (per-request control), ``state`` (recording, counters) and ``streaming``.
"""

from tollway.fake_upstream.config import FakeConfig
from tollway.fake_upstream.server import STATE_KEY, build_app, run, start

__all__ = ["STATE_KEY", "FakeConfig", "build_app", "run", "start"]
