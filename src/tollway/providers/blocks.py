"""Text blocks across shapes: a translated request keeps its block boundaries.

Several text blocks (Anthropic ``system`` blocks or ``tool_result`` content, OpenAI content
parts, Gemini parts) stay several blocks wherever the target field takes a list; where it
takes only a string they are joined with :data:`SEPARATOR`, never glued together.
"""

from __future__ import annotations

from typing import Any

from tollway.providers.base import Json

SEPARATOR = "\n\n"
CHAT_TEXT = frozenset({"text", "input_text", "output_text"})


def texts(content: Any, kinds: frozenset[str] = CHAT_TEXT) -> list[str]:
    """The texts of a content value: a string is one text; a list gives one text per block
    whose ``type`` is in ``kinds`` (other blocks are not text and are left out)."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") in kinds]


def chat_content(items: list[str]) -> str | list[Json]:
    """OpenAI chat content of these texts: one text is a string, several are text parts."""
    if len(items) == 1:
        return items[0]
    return [{"type": "text", "text": t} for t in items] if items else ""


def joined(items: list[str]) -> str:
    """Texts for a field that takes one string, block boundaries kept as blank lines."""
    return SEPARATOR.join(items)
