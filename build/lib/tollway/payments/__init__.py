"""Money in and out: top-up orders, payment providers, refunds, reconciliation, exchange rates,
redemption codes and vouchers (DESIGN.md §8, docs/payments.md).

Layout: the pure domain (``model``, ``amounts``, ``numbers``, ``refund_plan``, ``provider``,
``epay.protocol``, ``stripe.declines``) knows nothing of the web or the database; ``db``
holds the SQL; the services (``orders``, ``notify``, ``reconcile``, ``refunds``, ``codes``,
``vouchers``, ``pricing``) tie them together; one package per provider adapts its SDK or
protocol to :class:`tollway.payments.provider.PaymentProvider`.
"""
