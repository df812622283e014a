"""Shape-neutral embedding helpers: deterministic small vectors and input parsing."""

from __future__ import annotations

import hashlib
import math
import struct
from typing import Any

import orjson

from tollway.fake_upstream.scenario import estimate_text_tokens


def embedding_vector(seed: bytes, dims: int) -> bytes:
    """Deterministic unit vector for ``seed``, as little-endian float32 bytes."""
    raw = hashlib.shake_128(seed).digest(2 * dims)
    vals = [v / 32767.5 - 1.0 for v in struct.unpack(f"<{dims}H", raw)]
    norm = math.sqrt(sum(v * v for v in vals)) or 1.0
    return struct.pack(f"<{dims}f", *(v / norm for v in vals))


def unpack_floats(packed: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(packed) // 4}f", packed))


def embedding_inputs(value: Any) -> list[tuple[bytes, int]] | None:
    """(seed bytes, token count) per input: a string, strings, a token array, or arrays."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, int) for v in value):
        value = [value]
    out: list[tuple[bytes, int]] = []
    for item in value:
        if isinstance(item, str):
            data = item.encode()
            out.append((data, estimate_text_tokens(len(data), 0)))
        elif isinstance(item, list):
            out.append((orjson.dumps(item), len(item)))
        else:
            return None
    return out
