"""Settings from ``TOLLWAY_*`` environment variables and an optional TOML/JSON file.

The file is named by ``TOLLWAY_CONFIG_FILE``; environment variables win over it. Every
timeout is in seconds (fractions allowed) so tests can shrink them.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLWAY_", extra="ignore")

    data_dir: Path = Path("./tollway-data")
    database_url: str | None = None
    redis_url: str | None = None
    admin_token: str | None = None
    secret_key: str | None = Field(
        default=None,
        description="Key for encrypting channel credentials; generated into the data dir if unset.",
    )
    config_file: Path | None = None

    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str | None = None

    # Settlement batching: a batch commits at B settlements or T ms, whichever comes first.
    commit_batch_size: int = 128
    commit_interval_ms: float = 2.0
    # Holds left open (crash, bug) are expired after this many seconds.
    hold_timeout_s: float = 900.0
    hold_sweep_interval_s: float = 5.0
    # How often a running server picks up changes made by the CLI, the API or other nodes.
    refresh_interval_s: float = 2.0

    # Upstream timeouts.
    upstream_connect_timeout_s: float = 10.0
    upstream_first_byte_timeout_s: float = 120.0
    upstream_idle_timeout_s: float = 300.0
    # Streams wait this long for their settlement to commit before failing closed.
    settlement_deadline_s: float = 30.0

    max_body_bytes: int = 32 * 1024 * 1024
    session_ttl_s: float = 7 * 24 * 3600.0
    log_level: str = "info"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tollway.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and pick the async driver Tollway uses."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


class _FileSource(PydanticBaseSettingsSource):
    """Values from the file named by TOLLWAY_CONFIG_FILE (TOML or JSON), keys without prefix."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        import os

        path = os.environ.get("TOLLWAY_CONFIG_FILE")
        self._data: dict[str, Any] = {}
        if path:
            text = Path(path).read_text(encoding="utf-8")
            self._data = json.loads(text) if path.endswith(".json") else tomllib.loads(text)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}
