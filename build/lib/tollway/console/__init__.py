"""The web console (DESIGN.md §9): server-rendered pages under ``/console``, every asset local,
English and Simplified Chinese from gettext catalogues (``i18n/``)."""

from __future__ import annotations

from tollway.console.app import build_console

__all__ = ["build_console"]
