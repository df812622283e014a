"""What the control-plane API needs from the composition root."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.services.admin import AdminService
from tollway.services.throttle import Throttles
from tollway.settings import Settings
from tollway.store.secret_box import SecretBox

if TYPE_CHECKING:
    from tollway.relay.probe import LiveChannels

log = logging.getLogger("tollway.api")


@dataclass(frozen=True, slots=True)
class ControlDeps:
    """``on_change`` is called after every configuration write, so the data plane running in
    the same process reloads at once instead of at its next refresh tick. ``live`` is the
    running data plane's channel health and test call (the console's channels page); None
    when no data plane runs in this process. ``write_holds`` writes the data plane's open
    holds to the database now (they are written lazily), so a refund decided in this process
    sees the cash every call in flight has reserved. ``throttles`` are the sign-in throttles the
    API and the console share (in Redis when the app shares state across nodes)."""

    engine: AsyncEngine
    box: SecretBox
    settings: Settings
    on_change: Callable[[], None] | None = None
    live: LiveChannels | None = None
    write_holds: Callable[[], Awaitable[None]] | None = None
    throttles: Throttles = field(default_factory=Throttles.in_memory)

    def service(self, actor: str) -> AdminService:
        return AdminService(self.engine, self.box, actor=actor)

    def changed(self) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change()
        except Exception:  # the write is committed; a failed nudge only delays the reload
            log.exception("on_change hook failed; the data plane reloads at its next refresh")
