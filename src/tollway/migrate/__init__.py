"""Moving in from other gateways: ``tollway import new-api|one-api`` (docs/migrate.md)."""
