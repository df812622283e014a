"""Fake payment providers on loopback, for tests and demos: a Stripe-compatible API subset that
the official ``stripe`` SDK talks to, an Alipay gateway with its own generated RSA keys (the
official ``python-alipay-sdk`` talks to it), and an EPay endpoint.

Each fake runs in a background thread (:class:`ThreadedServer`) so that synchronous SDK calls
and the test's own event loop never wait on each other. They sign what real providers sign,
and offer controls the real ones do not: "the customer paid", "send this notification".
"""

from tollway.payments.fakes.alipay_fake import FakeAlipay
from tollway.payments.fakes.epay_fake import FakeEPay
from tollway.payments.fakes.server import ThreadedServer
from tollway.payments.fakes.stripe_fake import FakeStripe

__all__ = ["FakeAlipay", "FakeEPay", "FakeStripe", "ThreadedServer"]
