"""Composition root: builds every part from settings and serves both planes in one process.

``/v1/...`` goes to the data plane (plain ASGI), everything else to the control plane
(FastAPI). State lives on the :class:`TollwayApp` instance; there are no module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.billing.biller import Biller
from tollway.billing.wallets import WalletCache
from tollway.billing.writer import SettlementWriter
from tollway.catalog.cache import ConfigCache
from tollway.ledger import chart
from tollway.limits.limiter import Limiter
from tollway.payments.jobs import start_payment_jobs
from tollway.relay.app import DataPlane
from tollway.relay.asgi import Receive, Scope, Send, send_json
from tollway.relay.gateway import Gateway
from tollway.settings import Settings
from tollway.store import ledger_repo
from tollway.store.db import make_engine, migrate
from tollway.store.secret_box import SecretBox
from tollway.store.tables import holds, ledger_transfers

log = logging.getLogger("tollway")

DATA_PLANE_PREFIXES = ("/v1/", "/v1beta/", "/dashboard/")


class TollwayApp:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.engine: AsyncEngine = make_engine(self.settings.resolved_database_url())
        self.box = SecretBox.from_settings(self.settings.secret_key, self.settings.data_dir)
        self.gateway: Gateway | None = None
        self.data_plane: DataPlane | None = None
        self.control: Any = self._build_control()
        self._tasks: list[asyncio.Task[None]] = []
        self._ledger_hwm = 0
        self._wake = asyncio.Event()

    def _build_control(self) -> Any:
        from tollway.api import ControlDeps, build_control_app

        return build_control_app(
            ControlDeps(self.engine, self.box, self.settings, on_change=self.request_refresh)
        )

    def request_refresh(self) -> None:
        self._wake.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["path"].startswith(DATA_PLANE_PREFIXES):
            if self.data_plane is None:
                body = {
                    "error": {
                        "message": "Tollway is starting",
                        "type": "overloaded_error",
                        "code": "starting",
                    }
                }
                await send_json(send, 503, body, [(b"retry-after", b"1")])
                return
            await self.data_plane(scope, receive, send)
            return
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.control(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        s = self.settings
        await migrate(self.engine)
        async with self.engine.begin() as conn:
            platform = await ledger_repo.ensure_platform_accounts(conn)
            self._ledger_hwm = int(
                (
                    await conn.execute(
                        select(ledger_transfers.c.id).order_by(ledger_transfers.c.id.desc()).limit(1)
                    )
                ).scalar_one_or_none()
                or 0
            )
        config = ConfigCache(self.engine, self.box)
        await config.refresh(force=True)
        writer = SettlementWriter(
            self.engine,
            batch_size=s.commit_batch_size,
            interval_ms=s.commit_interval_ms,
            hold_persist_delay_s=s.hold_persist_delay_s,
        )
        writer.start()
        biller = Biller(
            WalletCache(self.engine),
            writer,
            revenue_account_id=platform[chart.USAGE_REVENUE],
            hold_timeout_s=s.hold_timeout_s,
            settlement_deadline_s=s.settlement_deadline_s,
        )
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            auto_decompress=True,
        )
        self.gateway = Gateway(s, config, biller, Limiter(), http)
        self.data_plane = DataPlane(self.gateway)
        self._tasks = [
            asyncio.get_running_loop().create_task(self._refresh_loop(), name="refresh"),
            asyncio.get_running_loop().create_task(self._sweep_loop(), name="hold-sweeper"),
            start_payment_jobs(self.engine, self.box, s, self.request_refresh),  # FX + reconciliation
        ]

    async def stop(self) -> None:
        gw = self.gateway
        if gw is not None:
            gw.accepting = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if gw is not None:
            for trace_id in list(gw.biller.holds_trace_ids()):
                gw.biller.abandon(trace_id)
            await gw.biller.writer.stop()
            await gw.http.close()
        await self.engine.dispose()

    async def _refresh_loop(self) -> None:
        assert self.gateway is not None
        gw = self.gateway
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.refresh_interval_s)
            self._wake.clear()
            try:
                await gw.config.refresh()
                await gw.biller.writer.run_exclusive(self._reload_changed_wallets)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("refresh failed; will retry", exc_info=True)

    async def _reload_changed_wallets(self) -> None:
        """Pick up transfers posted by the CLI, the API or other processes (not our own usage)."""
        assert self.gateway is not None
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(ledger_transfers.c.id, ledger_transfers.c.owner_id, ledger_transfers.c.kind)
                    .where(ledger_transfers.c.id > self._ledger_hwm)
                    .order_by(ledger_transfers.c.id)
                )
            ).all()
        if rows:
            self._ledger_hwm = int(rows[-1].id)
        owners = {str(r.owner_id) for r in rows if r.owner_id and r.kind != chart.TransferKind.USAGE.value}
        await self.gateway.biller.wallets.reload(owners)

    async def _sweep_loop(self) -> None:
        assert self.gateway is not None
        biller = self.gateway.biller
        while True:
            await asyncio.sleep(self.settings.hold_sweep_interval_s)
            now = datetime.now(UTC)
            try:
                biller.expire_stale(now)
                # Holds left active by a process that died: expire them once past their timeout.
                live = list(biller.holds_trace_ids())
                async with self.engine.begin() as conn:
                    q = update(holds).where(and_(holds.c.state == "active", holds.c.expires_at <= now))
                    if live:
                        q = q.where(holds.c.trace_id.not_in(live))
                    await conn.execute(q.values(state="expired", ended_at=now))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("hold sweep failed; will retry", exc_info=True)


def create_app(settings: Settings | None = None) -> TollwayApp:
    return TollwayApp(settings)


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    import uvicorn

    if workers > 1 and not settings.redis_url:
        raise SystemExit(
            "--workers > 1 needs TOLLWAY_REDIS_URL: holds and limits are per process without it, "
            "so several workers could overdraw an account. Run one worker per node, or configure Redis."
        )
    if workers > 1:
        raise SystemExit("several workers per node are not supported yet; run one worker per node")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
    )
