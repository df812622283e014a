"""Payment errors, inside the one error tree of :mod:`tollway.errors`."""

from __future__ import annotations

from tollway.errors import Conflict, InvalidRequest, UpstreamError


class NotificationRefused(InvalidRequest):
    """A provider notification that is forged, stale, or does not match the stored order.

    Nothing is credited; the refusal is logged (and recorded on the order when it names one).
    """

    code = "notification_refused"

    def __init__(self, message: str, *, order_number: str | None = None) -> None:
        super().__init__(message)
        self.order_number = order_number


class ProviderNotConfigured(InvalidRequest):
    code = "payment_provider_not_configured"


class ProviderError(UpstreamError):
    """The payment provider's API failed or answered something unusable."""

    code = "payment_provider_error"


class OrderStateConflict(Conflict):
    code = "order_state_conflict"
