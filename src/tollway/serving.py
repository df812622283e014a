"""``tollway serve``: one process, or ``--workers N`` uvicorn workers (each its own node).

Before binding a port the node lease is checked (:func:`tollway.cluster.membership.preflight`),
so a node that may not run here exits at once with the reason instead of a traceback. With
several workers every worker builds its app from the environment (``TOLLWAY_*`` and
``TOLLWAY_CONFIG_FILE``) through :func:`worker_app`, registers its own node lease and shares
holds and limits through Redis; that needs the shared backend (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tollway.app import TollwayApp
from tollway.cluster.membership import preflight
from tollway.cluster.nodes import SHARED_HINT, NodeRefused
from tollway.observability import logs
from tollway.settings import Settings

WORKER_APP = "tollway.serving:worker_app"


def worker_app() -> TollwayApp:
    """The app factory of one worker (``--workers N``): settings from the environment."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return TollwayApp(settings)


def shared_backend_configured(settings: Settings) -> bool:
    return bool(settings.redis_url) and settings.resolved_database_url().startswith("postgresql")


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Run until stopped; raise :class:`NodeRefused` (before binding) when this may not run here."""
    import uvicorn

    logs.configure(settings.log_level, settings.log_format)
    if workers > 1 and not shared_backend_configured(settings):
        raise NodeRefused(
            f"refusing to start {workers} workers: without the shared backend holds and "
            f"limits are per process, so several workers could overdraw an account. {SHARED_HINT}"
        )
    asyncio.run(preflight(settings))
    common: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        # one mechanism for forwarded headers: TOLLWAY_TRUSTED_PROXIES (tollway.security.proxies);
        # uvicorn's own would trust 127.0.0.1 by default and take no networks
        "proxy_headers": False,
        "log_level": settings.log_level,
        "log_config": None,  # our handler on the root logger (logs.configure) formats uvicorn's too
        "timeout_graceful_shutdown": max(1, int(settings.shutdown_grace_s)),
    }
    if workers > 1:
        uvicorn.run(WORKER_APP, factory=True, workers=workers, **common)
    else:
        uvicorn.run(TollwayApp(settings), **common)
