"""Alipay through ``python-alipay-sdk``: page pay, QR precreate, RSA2 notify, query, refund."""

from tollway.payments.alipay.provider import AlipayProvider

__all__ = ["AlipayProvider"]
