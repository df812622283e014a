"""Channels: upstream endpoints, the models they serve and the groups they serve."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class ChannelType(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    type: ChannelType
    base_url: str  # as the provider's own SDK takes it, e.g. https://api.openai.com/v1
    api_key: str  # decrypted in memory only; never returned by any API
    models: frozenset[str]
    model_map: dict[str, str]
    groups: frozenset[str]  # empty = every group
    priority: int = 0
    weight: int = 1
    enabled: bool = True
    # Every credential of the channel (api_key is the first); each has its own breaker.
    api_keys: tuple[str, ...] = ()
    key_index: int = 0  # which credential api_key is, in a per-credential view
    # Per-channel timeouts in seconds; None = the global setting.
    connect_timeout: float | None = None
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return self.api_keys or (self.api_key,)

    @property
    def label(self) -> str:
        """Readable name of this credential: the channel name, plus ``#n`` (1-based) when the
        channel has several credentials."""
        return self.name if len(self.keys) <= 1 else f"{self.name}#{self.key_index + 1}"

    def credentials(self) -> list[Channel]:
        """One view of the channel per credential (``api_key``/``key_index`` set)."""
        keys = self.keys
        if len(keys) <= 1:
            return [self]
        return [replace(self, api_key=k, key_index=i) for i, k in enumerate(keys)]

    def serves(self, model: str, group: str) -> bool:
        return self.enabled and model in self.models and (not self.groups or group in self.groups)

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)
