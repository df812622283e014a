"""EPay (易支付): the MD5-signed aggregator protocol common on Chinese relay sites."""

from tollway.payments.epay.provider import EPayProvider

__all__ = ["EPayProvider"]
