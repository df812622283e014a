"""Reading a client's JSON body once, and the field checks every surface shares."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import InvalidRequest

# Deeper JSON is refused with a 400: the token counters walk bodies recursively and orjson
# writes at most 254 levels when a body is forwarded (docs/security.md, "Hostile bodies").
MAX_JSON_DEPTH = 128


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    # fewer brackets than the limit cannot nest past it: ordinary bodies skip the walk
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(body) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    return body


def json_depth(doc: Any) -> int:
    """How deep arrays and objects nest in ``doc`` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", param="model")
    return model


def positive_int(body: dict[str, Any] | None, name: str, *, param: str | None = None) -> int | None:
    """``body[name]`` as a positive integer, None when absent; anything else is a 400."""
    value = body.get(name) if isinstance(body, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{param or name}' must be a positive integer", param=param or name)
    return value


def optional_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{name}' must be an object", param=name)
    return value


def non_empty_list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"'{name}' must be a non-empty array", param=name)
    return value
