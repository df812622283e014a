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
from sqlalchemy import and_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.billing.biller import Biller
from tollway.billing.wallets import WalletCache
from tollway.billing.writer import SettlementWriter
from tollway.catalog.cache import ConfigCache
from tollway.catalog.model import Channel
from tollway.cluster import leader
from tollway.cluster.membership import Membership
from tollway.cluster.node_sync import NodeSync
from tollway.cluster.nodes import NodeRefused
from tollway.cluster.shared_wallets import SharedWallets
from tollway.cluster.upkeep import open_shared_wallets, run_upkeep, shared_admission_wanted
from tollway.errors import ServiceUnavailable
from tollway.ledger import chart
from tollway.limits.limiter import Limiter
from tollway.observability.metrics import Metrics
from tollway.observability.status import STATUS_PATHS, StatusPage
from tollway.payments.jobs import start_payment_jobs
from tollway.relay.app import DataPlane
from tollway.relay.asgi import Receive, Scope, Send, send_json
from tollway.relay.gateway import Gateway
from tollway.relay.probe import LiveChannels, ProbeResult, probe_call
from tollway.routing.breaker import BreakerPolicy, BreakerState
from tollway.routing.health import ChannelHealth, ChannelTransition, Outcome
from tollway.security.headers import SecurityHeaders
from tollway.security.proxies import TrustedProxies, parse_trusted
from tollway.services.mail import start_mail_sender
from tollway.settings import Settings
from tollway.store import config_repo, ledger_repo
from tollway.store.db import make_engine, migrate, run_sqlite_checkpoints
from tollway.store.secret_box import SecretBox
from tollway.store.tables import holds, ledger_transfers
from tollway.usage.jobs import start_usage_jobs

log = logging.getLogger("tollway")

DATA_PLANE_PREFIXES = ("/v1/", "/v1beta/", "/dashboard/")
OPS_PATHS = ("/metrics", "/healthz", "/readyz")
PROMETHEUS_CT = b"text/plain; version=0.0.4; charset=utf-8"


class TollwayApp:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.engine: AsyncEngine = make_engine(
            self.settings.resolved_database_url(),
            background_checkpoint=self.settings.sqlite_checkpoint_interval_s > 0,
        )
        self.box = SecretBox.from_settings(self.settings.secret_key, self.settings.data_dir)
        self.gateway: Gateway | None = None
        self.shared_wallets: SharedWallets | None = None
        self.data_plane: DataPlane | None = None
        self.membership: Membership | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ledger_hwm = 0
        self._wake = asyncio.Event()
        self._upkeep_wake = asyncio.Event()
        s = self.settings
        self.metrics = Metrics()
        self.health = ChannelHealth(
            BreakerPolicy(
                consecutive_failures=s.breaker_consecutive_failures,
                failure_rate=s.breaker_failure_rate,
                min_calls=s.breaker_min_calls,
                window_s=s.breaker_window_s,
                open_s=s.breaker_open_s,
                max_open_s=s.breaker_max_open_s,
            ),
            on_transition=self._on_transition,
        )
        self._stopping = False
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._side_tasks: set[asyncio.Task[None]] = set()
        # breaker states, change notices and sign-in throttles shared with the other nodes
        self.sync = NodeSync(s, self.engine, self.health, self._channels, lambda _: self.request_refresh())
        self.status_page = StatusPage(
            self.engine, self.health, lambda: self.gateway.config.channels if self.gateway else []
        )
        self.control: Any = self._build_control()  # after the health: the console shows it
        # the outermost layer (docs/security.md): who the client is, and the security headers
        self.proxies = TrustedProxies(parse_trusted(s.trusted_proxies))
        self.security_headers = SecurityHeaders(s.hsts_max_age_s)

    def _build_control(self) -> Any:
        from tollway.api import ControlDeps, build_control_app

        live = LiveChannels(
            self.health, lambda: self.gateway.config.channels if self.gateway else [], self.test_call
        )
        return build_control_app(
            ControlDeps(
                self.engine,
                self.box,
                self.settings,
                on_change=self.request_refresh,
                live=live,
                write_holds=self.write_holds,
                throttles=self.sync.throttles,
            )
        )

    async def write_holds(self) -> None:
        """Write the open holds now (a refund is about to read what cash is reserved)."""
        if self.gateway is not None:
            await self.gateway.biller.writer.flush()

    def request_refresh(self) -> None:
        self._wake.set()
        self._upkeep_wake.set()  # a credit posted here or elsewhere reaches Redis at once

    def _channels(self) -> list[Channel]:
        return self.gateway.config.channels if self.gateway else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.proxies:
            self.proxies.resolve(scope)
        await self._route(kind, scope, receive, self.security_headers.wrap(scope, send))

    async def _route(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        if kind == "http" and scope["path"].startswith(DATA_PLANE_PREFIXES):
            if self.data_plane is None or self._stopping:
                starting = self.data_plane is None and not self._stopping
                body = {
                    "error": {
                        "message": "Tollway is starting" if starting else "Tollway is shutting down",
                        "type": "overloaded_error",
                        "code": "starting" if starting else "shutting_down",
                    }
                }
                await send_json(send, 503, body, [(b"retry-after", b"1" if starting else b"2")])
                return
            self._inflight += 1
            self._idle.clear()
            try:
                await self.data_plane(scope, receive, send)
            finally:
                self._inflight -= 1
                if self._inflight == 0:
                    self._idle.set()
            return
        if kind == "http" and scope["path"] in OPS_PATHS:
            await self._ops(scope["path"], send)
            return
        if kind == "http" and scope["path"] in STATUS_PATHS:
            await self.status_page.serve(scope["path"], send)
            return
        await self.control(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except NodeRefused as exc:  # an operator's mistake, not a bug: no traceback
                    log.error("%s", exc.message)
                    await send({"type": "lifespan.startup.failed", "message": exc.message})
                    return
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
        wanted = shared_admission_wanted(s, self.engine)
        member = self.membership = Membership(self.engine, s, shared=wanted)
        await member.join()  # refuses to run next to a live node unless both share (docs/scaling.md)
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
        shared = None
        if wanted:
            shared = self.shared_wallets = await open_shared_wallets(s, self.engine)
        biller = Biller(
            WalletCache(self.engine),
            writer,
            revenue_account_id=platform[chart.USAGE_REVENUE],
            hold_timeout_s=s.hold_timeout_s,
            settlement_deadline_s=s.settlement_deadline_s,
            shared=shared,
        )
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            auto_decompress=True,
        )
        self.gateway = Gateway(s, config, biller, Limiter(), http, health=self.health, metrics=self.metrics)
        self.data_plane = DataPlane(self.gateway)
        self.metrics.watch(
            "tollway_holds_in_flight", "Holds open right now (calls in progress)", lambda: len(biller.holds)
        )
        self.metrics.watch(
            "tollway_settlement_queue_depth", "Settlements waiting for their commit", lambda: writer.depth
        )
        self.metrics.watch(
            "tollway_settlement_writer_healthy", "1 while settlements commit", lambda: float(writer.healthy)
        )
        self._tasks = [
            *member.tasks(),  # node heartbeat, job leases
            asyncio.get_running_loop().create_task(self._probe_loop(), name="channel-prober"),
            asyncio.get_running_loop().create_task(self._db_watch_loop(), name="db-watch"),
            asyncio.get_running_loop().create_task(self._refresh_loop(), name="refresh"),
            asyncio.get_running_loop().create_task(self._sweep_loop(), name="hold-sweeper"),
            start_payment_jobs(  # FX + reconciliation
                self.engine, self.box, s, self.request_refresh, member.gate(leader.PAYMENTS)
            ),
        ]
        if self.engine.dialect.name == "sqlite" and s.sqlite_checkpoint_interval_s > 0:
            self._tasks.append(
                asyncio.get_running_loop().create_task(
                    run_sqlite_checkpoints(self.engine, s.sqlite_checkpoint_interval_s), name="wal-checkpoint"
                )
            )
        if shared is not None:  # Redis watch, hold expiry and the ledger follower (docs/scaling.md)
            upkeep = run_upkeep(shared, s, self._upkeep_wake, may_sweep=member.gate(leader.REDIS_SWEEP))
            self._tasks.append(asyncio.get_running_loop().create_task(upkeep, name="shared-upkeep"))
        self._tasks += self.sync.start()
        # the outbox over SMTP, when configured
        mail_sender = start_mail_sender(self.engine, s, member.gate(leader.OUTBOX))
        if mail_sender is not None:
            self._tasks.append(mail_sender)
        # daily rollups + retention (tollway.usage)
        usage_jobs = start_usage_jobs(self.engine, s, member.gate(leader.USAGE))
        if usage_jobs is not None:
            self._tasks.append(usage_jobs)

    async def stop(self) -> None:
        """Graceful shutdown: refuse new data-plane calls (503), let in-flight calls finish up to
        ``shutdown_grace_s``, void the holds still open, flush every record, close."""
        self._stopping = True
        gw = self.gateway
        if gw is not None:
            gw.accepting = False
        if self._inflight:
            log.info("shutting down: waiting for %d call(s) in flight", self._inflight)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_grace_s):
                    await self._idle.wait()
        await _cancel_and_wait(self._tasks, self.settings.shutdown_grace_s + 5.0)
        if self._side_tasks:  # audit entries and alerts of the last transitions
            await asyncio.wait(list(self._side_tasks), timeout=2.0)
            for task in list(self._side_tasks):
                task.cancel()
        if gw is not None:
            for trace_id in list(gw.biller.holds_trace_ids()):
                gw.biller.abandon(trace_id)
            await gw.biller.drain(self.settings.redis_timeout_s)
            try:
                async with asyncio.timeout(self.settings.settlement_deadline_s):
                    await gw.biller.writer.stop()
            except TimeoutError:
                log.error("shutdown: settlements could not be flushed in time; holds expire by timeout")
            await gw.http.close()
        if self.shared_wallets is not None:
            with contextlib.suppress(Exception):
                await self.shared_wallets.flush_replay()
            await self.shared_wallets.close()
        await self.sync.close()
        if self.membership is not None:  # the next node need not wait for the leases' TTL
            await self.membership.leave()
        await self.engine.dispose()

    # ------------------------------------------------------------------ operations endpoints

    async def _ops(self, path: str, send: Send) -> None:
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"}, [])
            return
        if path == "/metrics":
            self._export_channel_states()
            body = self.metrics.render()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", PROMETHEUS_CT),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        checks = await self.readiness()
        ok = all(checks.values())
        headers = [] if ok else [(b"retry-after", b"5")]
        await send_json(send, 200 if ok else 503, {"ready": ok, "checks": checks}, headers)

    async def readiness(self) -> dict[str, bool]:
        gw = self.gateway
        checks = {
            "started": gw is not None,
            "accepting": gw is not None and gw.accepting and not self._stopping,
            "settlement_writer": gw is not None and gw.biller.writer.healthy,
            "database": await self._ping_db(),
        }
        return checks

    async def _ping_db(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.debug("database ping failed", exc_info=True)
            return False

    async def _db_watch_loop(self) -> None:
        """Keep ``Gateway.db_ok`` current, so calls get 503 at once while the database is away
        (not after waiting for a settlement that cannot commit)."""
        assert self.gateway is not None
        gw = self.gateway
        while True:
            await asyncio.sleep(self.settings.db_check_interval_s)
            ok = await self._ping_db()
            if ok != gw.db_ok:
                log.warning("database %s", "reachable again" if ok else "unreachable: refusing new calls")
                gw.db_ok = ok

    def _export_channel_states(self) -> None:
        gw = self.gateway
        if gw is None:
            return
        gauge = self.metrics.channel_state
        for channel in (x for c in gw.config.channels for x in c.credentials()):
            current = self.health.state(channel)
            for st in BreakerState:
                gauge.labels(channel.label, st.value).set(1.0 if st is current else 0.0)

    # ------------------------------------------------------------------ channel health

    def _on_transition(self, ct: ChannelTransition) -> None:
        t = ct.transition
        self.metrics.channel_transitions.labels(ct.channel.label, t.after.value).inc()
        for st in BreakerState:
            self.metrics.channel_state.labels(ct.channel.label, st.value).set(1.0 if st is t.after else 0.0)
        log.warning(
            "channel %s: %s -> %s (%s)",
            ct.channel.label,
            t.before.value,
            t.after.value,
            t.reason,
            extra={"channel_id": ct.channel.id, "event": "channel.state"},
        )
        self._spawn(self._publish_transition(ct))
        if (shared := self.sync.announce(ct)) is not None:  # to the other nodes
            self._spawn(shared)

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (unit use): nothing to publish to
            coro.close()
            return
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _publish_transition(self, ct: ChannelTransition) -> None:
        t = ct.transition
        doc = {
            "event": "channel.state",
            "channel_id": ct.channel.id,
            "channel": ct.channel.label,
            "credential": ct.channel.key_index + 1,
            "before": t.before.value,
            "after": t.after.value,
            "reason": t.reason,
            "at": datetime.now(UTC).isoformat(),
        }
        # a channel with several credentials: name the one that changed ("name#2")
        cred = {"credential": ct.channel.label} if len(ct.channel.keys) > 1 else {}
        try:
            async with self.engine.begin() as conn:
                await config_repo.write_audit(
                    conn,
                    actor="tollway",
                    action="channel.state",
                    target=f"channel:{ct.channel.id}",
                    reason=t.reason,
                    before={"state": t.before.value, **cred},
                    after={"state": t.after.value, **cred},
                )
        except Exception:
            log.warning("could not write the audit entry of a channel state change", exc_info=True)
        url = self.settings.alert_webhook_url
        gw = self.gateway
        if url and gw is not None:
            try:
                async with gw.http.post(url, json=doc, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    await resp.read()
            except Exception:
                log.warning("alert webhook %s failed", url, exc_info=True)

    async def _probe_loop(self) -> None:
        assert self.gateway is not None
        gw = self.gateway
        interval = self.settings.probe_interval_s
        if interval <= 0:
            return
        mine = self.membership.gate(leader.PROBES) if self.membership else leader.always
        while True:
            await asyncio.sleep(interval)
            if not mine():
                continue
            try:
                due = gw.health.due_probes([c for c in gw.config.channels if c.enabled])
                if due:
                    await asyncio.gather(*(self.probe(c) for c in due))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("channel probe round failed; will retry", exc_info=True)

    async def probe(self, channel: Channel) -> Outcome:
        """One real 1-token call to ``channel``; its outcome goes to the channel's breaker."""
        return (await self.test_call(channel)).outcome

    async def test_call(self, channel: Channel) -> ProbeResult:
        """A probe's call (also the console's "test call"); the outcome feeds the breaker."""
        gw = self.gateway
        if gw is None:
            raise ServiceUnavailable("Tollway is starting; try again in a moment")
        gw.health.before_attempt(channel)  # an open breaker whose back-off has elapsed: the probe
        try:
            result = await probe_call(gw.http, channel, self.settings.probe_timeout_s)
        except asyncio.CancelledError:
            gw.health.cancel_probe(channel)
            raise
        gw.health.record(channel, result.outcome, result.reason)
        return result

    async def _refresh_loop(self) -> None:
        assert self.gateway is not None
        gw = self.gateway
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that arrives
            # as the event is set, and stop() would wait on this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.refresh_interval_s):
                    await self._wake.wait()
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
            rows = (await conn.execute(ledger_repo.control_transfers_after(self._ledger_hwm))).all()
        if rows:
            self._ledger_hwm = int(rows[-1].id)
        owners = {str(r.owner_id) for r in rows if r.owner_id}
        await self.gateway.biller.wallets.reload(owners)

    async def _sweep_loop(self) -> None:
        assert self.gateway is not None
        biller = self.gateway.biller
        mine = self.membership.gate(leader.HOLD_SWEEP) if self.membership else leader.always
        while True:
            await asyncio.sleep(self.settings.hold_sweep_interval_s)
            now = datetime.now(UTC)
            try:
                biller.expire_stale(now)  # this node's own holds, on every node
                if not mine():
                    continue
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
    """Run the server; see :mod:`tollway.serving`. A refusal exits 1 with its one-line reason."""
    from tollway.serving import serve as serve_app

    try:
        serve_app(settings, host, port, workers)
    except NodeRefused as exc:
        raise SystemExit(f"tollway: {exc.message}") from None


async def _cancel_and_wait(tasks: list[asyncio.Task[None]], limit_s: float) -> None:
    """Cancel the background loops and wait for them, asking again each second (a library may
    drop a cancel) and giving up, with a log line naming them, after ``limit_s``: a stop
    never hangs on one loop."""
    pending = {t for t in tasks if not t.done()}
    for task in pending:
        task.cancel()
    deadline = asyncio.get_running_loop().time() + limit_s
    while pending:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            log.error("shutdown: background tasks did not stop: %s", sorted(t.get_name() for t in pending))
            break
        _done, pending = await asyncio.wait(pending, timeout=min(1.0, left))
        for task in pending:
            task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("background task %s had failed", task.get_name(), exc_info=task.exception())
