"""The nesting limit of request bodies (relay/bodies.py): 128 levels pass, 129 are a 400."""

from __future__ import annotations

import pytest

from tollway.errors import InvalidRequest
from tollway.relay.bodies import MAX_JSON_DEPTH, json_depth, parse_json_body


def body(depth: int) -> bytes:
    """An object whose ``x`` nests arrays so that the whole body is ``depth`` levels deep."""
    inner = depth - 1
    return b'{"x":' + b"[" * inner + b"]" * inner + b"}"


def test_depth_counts_arrays_and_objects() -> None:
    assert json_depth(1) == 0
    assert json_depth({}) == 1
    assert json_depth({"a": [1, {"b": []}], "c": "[[[["}) == 4
    assert json_depth([[[]], []]) == 3


def test_the_limit_is_inclusive() -> None:
    assert json_depth(parse_json_body(body(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH
    with pytest.raises(InvalidRequest, match="deeper than 128"):
        parse_json_body(body(MAX_JSON_DEPTH + 1))


def test_brackets_inside_strings_cost_a_walk_but_pass() -> None:
    raw = b'{"model":"m","text":"' + b"[{" * 1000 + b'"}'
    assert parse_json_body(raw)["model"] == "m"
