"""Form and query parsing shared by the fakes: Stripe's nested ``a[b][0][c]=v`` keys."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_PARTS = re.compile(r"[^\[\]]+")


def flat(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


def nested(text: str) -> dict[str, Any]:
    """``line_items[0][price_data][currency]=usd`` → ``{"line_items": [{"price_data": {...}}]}``."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _PARTS.findall(key.replace("[]", "[0]"))
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    result: dict[str, Any] = _lists(root)
    return result


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}
