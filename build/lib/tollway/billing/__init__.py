"""Billing services: wallets cache, hold admission, settlement and its grouped commits."""
