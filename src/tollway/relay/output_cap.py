"""A client's output cap (``max_tokens`` and its spellings) against the price book's output cap
of the model (docs/surfaces.md "Output caps").

The hold is always sized at ``min(client cap, model cap)``. A client cap above the model's is
answered 400 in the words the provider uses (``TOLLWAY_OUTPUT_CAP_POLICY=reject``, the default)
or forwarded unchanged, for upstream to judge (``clamp``).
"""

from __future__ import annotations

from tollway.errors import InvalidRequest
from tollway.pricing.model import BillingMode, PriceEntry
from tollway.providers.base import Shape


def output_limit(cap: int | None, entry: PriceEntry) -> int:
    """The output tokens the hold is sized for."""
    return entry.max_output_tokens if cap is None else min(cap, entry.max_output_tokens)


def check_output_cap(
    surface: Shape, model: str, cap: int | None, param: str, entry: PriceEntry, policy: str
) -> None:
    limit = entry.max_output_tokens
    if policy != "reject" or cap is None or cap <= limit or entry.mode is not BillingMode.TOKEN:
        return
    if surface is Shape.ANTHROPIC:
        message = f"{param}: {cap} > {limit}, which is the maximum allowed number of output tokens"
        message += f" for {model}"
    elif surface is Shape.GEMINI:
        message = (
            f"Unable to submit request because it has a maxOutputTokens value of {cap} but the "
            f"supported range is from 1 (inclusive) to {limit + 1} (exclusive). "
            "Update the value and try again."
        )
    else:
        message = (
            f"{param} is too large: {cap}. This model supports at most {limit} completion tokens, "
            f"whereas you provided {cap}."
        )
    raise InvalidRequest(message, param=param)
