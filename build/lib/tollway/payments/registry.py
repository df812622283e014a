"""Which providers are configured, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from tollway.payments.errors import ProviderNotConfigured
from tollway.payments.manual import ManualProvider
from tollway.payments.provider import PaymentProvider
from tollway.settings import Settings

CUSTOMER_PROVIDERS = ("stripe", "alipay", "epay")  # manual orders are made by staff only
ALL_PROVIDERS = (*CUSTOMER_PROVIDERS, "manual")


@dataclass(slots=True)
class ProviderRegistry:
    providers: dict[str, PaymentProvider] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, s: Settings) -> ProviderRegistry:
        found: dict[str, PaymentProvider] = {"manual": ManualProvider()}
        if s.stripe_secret_key:
            from tollway.payments.stripe import StripeProvider

            found["stripe"] = StripeProvider(
                s.stripe_secret_key,
                s.stripe_webhook_secret,
                api_base=s.stripe_api_base,
                tolerance_s=s.stripe_webhook_tolerance_s,
            )
        if s.alipay_app_id and s.alipay_private_key and s.alipay_public_key:
            from tollway.payments.alipay import AlipayProvider

            found["alipay"] = AlipayProvider(
                app_id=s.alipay_app_id,
                private_key=s.alipay_private_key,
                alipay_public_key=s.alipay_public_key,
                gateway=s.alipay_gateway,
                seller_id=s.alipay_seller_id,
            )
        if s.epay_url and s.epay_pid and s.epay_key:
            from tollway.payments.epay import EPayProvider

            found["epay"] = EPayProvider(s.epay_url, s.epay_pid, s.epay_key)
        return cls(found)

    def get(self, name: str) -> PaymentProvider:
        provider = self.providers.get(name)
        if provider is None:
            if name not in ALL_PROVIDERS:
                raise ProviderNotConfigured(
                    f"unknown payment provider {name!r} (one of {', '.join(ALL_PROVIDERS)})", param="provider"
                )
            raise ProviderNotConfigured(
                f"the {name} provider is not configured on this server (see docs/payments.md)",
                param="provider",
            )
        return provider

    def customer_providers(self) -> list[str]:
        return [name for name in CUSTOMER_PROVIDERS if name in self.providers]
