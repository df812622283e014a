"""Payment settings (values or ``@path``), the provider registry, and the fakes' form parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tollway.errors import InvalidRequest
from tollway.payments.fakes.forms import flat, nested
from tollway.payments.registry import ProviderRegistry
from tollway.settings import Settings


def test_secrets_from_files(tmp_path: Path) -> None:
    key = tmp_path / "stripe.key"
    key.write_text("sk_test_from_file\n")
    s = Settings(stripe_secret_key=f"@{key}", stripe_webhook_secret="whsec_inline", epay_key=None)
    assert s.stripe_secret_key == "sk_test_from_file" and s.stripe_webhook_secret == "whsec_inline"
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(alipay_private_key=f"@{tmp_path / 'missing.pem'}")


def test_only_configured_providers_are_offered() -> None:
    registry = ProviderRegistry.from_settings(
        Settings(stripe_secret_key="sk_test_x", epay_url="https://e.example")
    )
    assert registry.customer_providers() == ["stripe"]  # EPay needs its pid and key too
    assert registry.get("manual").name == "manual"
    with pytest.raises(InvalidRequest, match="not configured"):
        registry.get("alipay")
    with pytest.raises(InvalidRequest, match="unknown payment provider"):
        registry.get("paypal")


def test_form_parsing() -> None:
    body = (
        "mode=payment&line_items[0][price_data][currency]=usd&line_items[0][quantity]=1"
        "&metadata[order_number]=TW1"
    )
    assert nested(body) == {
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "usd"}, "quantity": "1"}],
        "metadata": {"order_number": "TW1"},
    }
    assert flat("a=1&b=&c=x+y") == {"a": "1", "b": "", "c": "x y"}
