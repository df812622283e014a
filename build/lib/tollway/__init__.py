"""Tollway: a self-hostable LLM API gateway with prepaid billing."""

__version__ = "0.1.0"
