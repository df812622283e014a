"""Names for durations, so a signature says what a number is (never money: money is int)."""

from __future__ import annotations

from typing import TypeAlias

Seconds: TypeAlias = float
Milliseconds: TypeAlias = float
