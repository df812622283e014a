"""Fake upstream for tests, demos and benchmarks: OpenAI-compatible, Anthropic and Gemini.

Sibling modules per wire shape (``openai_shape``, ``anthropic_shape``, ``gemini_shape``) share
``scenario`` (per-request control), ``state`` (recording, counters) and ``streaming``.
"""

from tollway.fake_upstream.config import FakeConfig
from tollway.fake_upstream.server import STATE_KEY, build_app, run, start

__all__ = ["STATE_KEY", "FakeConfig", "build_app", "run", "start"]
