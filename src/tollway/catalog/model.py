"""Channels: upstream endpoints, the models they serve and the groups they serve."""

from __future__ import annotations

from dataclasses import dataclass
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

    def serves(self, model: str, group: str) -> bool:
        return self.enabled and model in self.models and (not self.groups or group in self.groups)

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)
