"""Sticky routing: calls of one account for one model go to the same channel (and the same
credential of it) while that channel is healthy, so the upstream's prompt cache keeps hitting.

Weighted rendezvous hashing (highest random weight): every (key, channel) pair gets a score
``weight / -ln(u)`` with ``u`` uniform in (0, 1) from a hash of the pair; channels inside a
priority tier are tried by descending score. A key lands on each channel in proportion to its
weight, adding or removing a channel moves only the keys that channel gains or held, and when
the preferred channel is skipped (breaker open) the key falls to its own second choice and comes
back once the breaker closes. Scores are floats; they route, they never price.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from tollway.catalog.model import Channel

_SPAN = float(1 << 64)


def _unit(key: str, member: str) -> float:
    digest = hashlib.blake2b(f"{key}\x00{member}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _SPAN  # in (0, 1), never 0 or 1


def score(key: str, channel: Channel) -> float:
    return max(channel.weight, 1) / -math.log(_unit(key, channel.id))


def sticky_order(channels: Sequence[Channel], key: str) -> list[Channel]:
    """Highest priority first; inside a tier, by descending rendezvous score for ``key``."""
    return sorted(channels, key=lambda c: (-c.priority, -score(key, c)))


def sticky_start(key: str, channel_id: str, n: int) -> int:
    """Which of a channel's ``n`` credentials a key starts with (the same one every time)."""
    return int(_unit(key, f"{channel_id}#credential") * n) % n if n > 1 else 0
