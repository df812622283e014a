"""What Tollway knows of the new-api and one-api databases: status codes, channel types and
the quota unit, as their Go sources define them (new-api ``common/constants.go``,
``constant/channel.go``; one-api ``relay/channeltype/define.go``). Column names are those of
their GORM structs (``model/user.go``, ``model/token.go``, ``model/channel.go``, ...); the
reader takes whichever of them a given version has.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Flavour(StrEnum):
    NEW_API = "new-api"
    ONE_API = "one-api"


# 500,000 quota = $1 (common.QuotaPerUnit in both; the ``QuotaPerUnit`` option overrides it).
QUOTA_PER_UNIT = 500_000
# Model ratio 1 = $0.002 per 1K tokens = $2 per million tokens (both projects' ratio docs).
USD_PER_MTOK_AT_RATIO_ONE = 2

USER_ENABLED, USER_DISABLED = 1, 2
ROLE_COMMON, ROLE_ADMIN, ROLE_ROOT = 1, 10, 100
TOKEN_ENABLED, TOKEN_DISABLED, TOKEN_EXPIRED, TOKEN_EXHAUSTED = 1, 2, 3, 4
REDEMPTION_ENABLED, REDEMPTION_DISABLED, REDEMPTION_USED = 1, 2, 3
CHANNEL_ENABLED = 1  # 2 = disabled by hand, 3 = disabled automatically
NEVER_EXPIRES = -1  # tokens.expired_time; redemptions use 0 for "never"
AUTO_GROUP = "auto"  # new-api: a token that picks any of the user's groups

TABLES = ("users", "tokens", "channels", "abilities", "options", "redemptions", "top_ups", "logs")


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """How a channel type is served by Tollway: its adapter and default base URL (without the
    version path); ``append_v1``: the OpenAI SDK base URL is the host plus ``/v1``."""

    name: str
    tollway_type: str  # openai | anthropic | gemini
    default_base: str
    append_v1: bool = True


_OPENAI = "openai"
NEW_API_CHANNELS: dict[int, ChannelKind] = {
    1: ChannelKind("OpenAI", _OPENAI, "https://api.openai.com"),
    4: ChannelKind("Ollama", _OPENAI, "http://localhost:11434"),
    14: ChannelKind("Anthropic", "anthropic", "https://api.anthropic.com", append_v1=False),
    20: ChannelKind("OpenRouter", _OPENAI, "https://openrouter.ai/api"),
    24: ChannelKind("Gemini", "gemini", "https://generativelanguage.googleapis.com", append_v1=False),
    25: ChannelKind("Moonshot", _OPENAI, "https://api.moonshot.cn"),
    31: ChannelKind("LingYiWanWu", _OPENAI, "https://api.lingyiwanwu.com"),
    40: ChannelKind("SiliconFlow", _OPENAI, "https://api.siliconflow.cn"),
    42: ChannelKind("Mistral", _OPENAI, "https://api.mistral.ai"),
    43: ChannelKind("DeepSeek", _OPENAI, "https://api.deepseek.com"),
    48: ChannelKind("xAI", _OPENAI, "https://api.x.ai"),
}

ONE_API_CHANNELS: dict[int, ChannelKind] = {
    1: ChannelKind("OpenAI", _OPENAI, "https://api.openai.com"),
    14: ChannelKind("Anthropic", "anthropic", "https://api.anthropic.com", append_v1=False),
    20: ChannelKind("OpenRouter", _OPENAI, "https://openrouter.ai/api"),
    24: ChannelKind("Gemini", "gemini", "https://generativelanguage.googleapis.com", append_v1=False),
    25: ChannelKind("Moonshot", _OPENAI, "https://api.moonshot.cn"),
    28: ChannelKind("Mistral", _OPENAI, "https://api.mistral.ai"),
    29: ChannelKind("Groq", _OPENAI, "https://api.groq.com/openai"),
    30: ChannelKind("Ollama", _OPENAI, "http://localhost:11434"),
    31: ChannelKind("LingYiWanWu", _OPENAI, "https://api.lingyiwanwu.com"),
    32: ChannelKind("StepFun", _OPENAI, "https://api.stepfun.com"),
    36: ChannelKind("DeepSeek", _OPENAI, "https://api.deepseek.com"),
    39: ChannelKind("TogetherAI", _OPENAI, "https://api.together.xyz"),
}


def channel_kinds(flavour: Flavour) -> dict[int, ChannelKind]:
    return NEW_API_CHANNELS if flavour is Flavour.NEW_API else ONE_API_CHANNELS
