"""Operator services behind the CLI and the admin API: groups, prices, channels, accounts,
keys, credits, balances. Raises only :mod:`tollway.errors`; knows nothing of HTTP or typer."""

from __future__ import annotations

from tollway.services.account_admin import AccountAdmin, account_json
from tollway.services.base import Json
from tollway.services.catalog_admin import CatalogAdmin
from tollway.services.key_admin import KeyAdmin, key_json

__all__ = ["AdminService", "Json", "account_json", "key_json"]


class AdminService(CatalogAdmin, AccountAdmin, KeyAdmin):
    """Every operator service in one object (the CLI and the API take this one)."""
