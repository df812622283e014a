"""The manual provider: orders paid outside Tollway (a bank transfer, an invoice), credited by
staff after checking, with a reason, in the audit log."""

from tollway.payments.manual.provider import ManualProvider

__all__ = ["ManualProvider"]
