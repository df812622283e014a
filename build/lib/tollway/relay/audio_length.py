"""How long an uploaded audio file can be, to hold for per-second transcription prices.

WAV says so in its header (exact). Any other format is bounded by its size: no speech codec
the transcription APIs accept goes below about 8 kbit/s (1,000 bytes per second), so
``bytes / 1000`` seconds can never be exceeded; 128 kbit/s (16,000 bytes per second) is the
expected case. The settlement bills the duration upstream reports.
"""

from __future__ import annotations

import struct

MIN_BYTES_PER_SECOND = 1_000
TYPICAL_BYTES_PER_SECOND = 16_000


def wav_seconds(data: bytes) -> int | None:
    """Whole seconds (rounded up) of a RIFF/WAVE file, from its ``fmt`` and ``data`` chunks."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        size: int = struct.unpack_from("<I", data, pos + 4)[0]
        if kind == b"fmt " and pos + 20 <= len(data):
            byte_rate = int(struct.unpack_from("<I", data, pos + 16)[0])
        elif kind == b"data":
            if byte_rate <= 0:
                return None
            size = min(size, len(data) - pos - 8)
            return max(1, -(-size // byte_rate))
        pos += 8 + size + (size & 1)
    return None


def seconds_bounds(data: bytes) -> tuple[int, int]:
    """(upper bound, expected) seconds of an audio file."""
    exact = wav_seconds(data)
    if exact is not None:
        return exact, exact
    return max(1, -(-len(data) // MIN_BYTES_PER_SECOND)), max(1, -(-len(data) // TYPICAL_BYTES_PER_SECOND))
