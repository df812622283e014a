"""What the payment services share: the engine, settings, providers and the change hook."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.payments.provider import CheckoutUrls
from tollway.payments.registry import ProviderRegistry
from tollway.settings import Settings
from tollway.store.secret_box import SecretBox

log = logging.getLogger("tollway.payments")


@dataclass(slots=True)
class PaymentsContext:
    engine: AsyncEngine
    box: SecretBox
    settings: Settings
    registry: ProviderRegistry = field(default_factory=ProviderRegistry)
    on_change: Callable[[], None] | None = None
    # Writes the open holds of this process's data plane now (see ControlDeps.write_holds).
    write_holds: Callable[[], Awaitable[None]] | None = None

    @classmethod
    def build(
        cls,
        engine: AsyncEngine,
        box: SecretBox,
        settings: Settings,
        on_change: Callable[[], None] | None = None,
        write_holds: Callable[[], Awaitable[None]] | None = None,
    ) -> PaymentsContext:
        registry = ProviderRegistry.from_settings(settings)
        return cls(engine, box, settings, registry, on_change, write_holds)

    async def holds_written(self) -> None:
        """Before reading what a customer's cash is reserved for: the data plane writes a hold
        only ``hold_persist_delay_s`` after the call starts, so ask it to write them all now."""
        if self.write_holds is not None:
            await self.write_holds()

    def changed(self) -> None:
        """After a money write: the data plane in this process reloads wallets at once."""
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:  # the write is committed; the next refresh tick picks it up
            log.exception("on_change hook failed")

    def base_url(self) -> str:
        s = self.settings
        return (s.public_base_url or f"http://{s.host}:{s.port}").rstrip("/")

    def urls(self, provider: str, order_number: str) -> CheckoutUrls:
        base = self.base_url()
        return CheckoutUrls(
            notify_url=f"{base}/webhooks/{provider}",
            return_url=f"{base}/pay/return/{order_number}",
            cancel_url=f"{base}/pay/return/{order_number}?cancelled=1",
        )
