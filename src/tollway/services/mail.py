"""Mail Tollway sends (password resets): queued in ``outbox`` in the same transaction as what
caused it, then delivered by :class:`SmtpSender` when ``TOLLWAY_SMTP_HOST`` is set. Without
SMTP the mail stays in the outbox and the operator reads it with ``tollway outbox list|show``.

Delivery uses the standard library's :mod:`smtplib` in a worker thread rather than adding
``aiosmtplib``: mail is rare (a reset now and then), a blocking send of one message off the
event loop costs nothing that matters, and it is one dependency fewer. A failed send stores
its ``error`` and stays unsent; the next round (every ``TOLLWAY_OUTBOX_INTERVAL_S``) tries
again. One server process sends (``tollway serve`` refuses several workers), so a message is
not sent twice by two senders.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.errors import NotFound
from tollway.settings import Settings
from tollway.store.config_repo import utcnow
from tollway.store.tables import outbox

log = logging.getLogger("tollway.mail")
Json = dict[str, Any]


async def queue_mail(conn: AsyncConnection, *, to_addr: str, subject: str, body: str) -> int:
    result = await conn.execute(
        outbox.insert().values(created_at=utcnow(), to_addr=to_addr, subject=subject[:200], body=body)
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def mail_json(row: Any, *, with_body: bool = False) -> Json:
    doc: Json = {
        "id": row.id,
        "created_at": row.created_at.isoformat(),
        "to": row.to_addr,
        "subject": row.subject,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "error": row.error,
    }
    if with_body:
        doc["body"] = row.body
    return doc


class Outbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list(self, *, limit: int = 50, unsent_only: bool = False) -> list[Json]:
        q = select(outbox).order_by(outbox.c.id.desc()).limit(max(1, min(limit, 1000)))
        if unsent_only:
            q = q.where(outbox.c.sent_at.is_(None))
        async with self.engine.connect() as conn:
            return [mail_json(r) for r in (await conn.execute(q))]

    async def get(self, mail_id: int) -> Json:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(outbox).where(outbox.c.id == mail_id))).first()
        if row is None:
            raise NotFound(f"no mail {mail_id} in the outbox", param="id")
        return mail_json(row, with_body=True)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    security: str  # "starttls", "ssl" or "none"
    timeout_s: float

    @classmethod
    def from_settings(cls, s: Settings) -> SmtpConfig | None:
        if not s.smtp_host:
            return None
        return cls(
            host=s.smtp_host,
            port=s.smtp_port,
            user=s.smtp_user,
            password=s.smtp_password,
            sender=s.smtp_from,
            security=s.smtp_security,
            timeout_s=s.smtp_timeout_s,
        )


def deliver(cfg: SmtpConfig, to_addr: str, subject: str, body: str) -> None:
    """Send one message (blocking: run it in a thread)."""
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=cfg.host)
    msg.set_content(body)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if cfg.security == "ssl":
        smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
    with smtp:
        if cfg.security == "starttls":
            smtp.starttls(context=context)
        if cfg.user:
            smtp.login(cfg.user, cfg.password or "")
        smtp.send_message(msg)


@dataclass(frozen=True, slots=True)
class SendRound:
    sent: int
    failed: int


class SmtpSender:
    def __init__(self, engine: AsyncEngine, cfg: SmtpConfig, *, batch: int = 50) -> None:
        self.engine = engine
        self.cfg = cfg
        self.batch = batch

    async def send_pending(self) -> SendRound:
        """Try every unsent message once (oldest first); record each outcome."""
        q = select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(self.batch)
        async with self.engine.connect() as conn:
            rows = list(await conn.execute(q))
        sent = failed = 0
        for row in rows:
            try:
                await asyncio.to_thread(deliver, self.cfg, row.to_addr, row.subject, row.body)
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                failed += 1
                values: Json = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                log.warning("mail %s to %s not sent: %s", row.id, row.to_addr, values["error"])
            else:
                sent += 1
                values = {"sent_at": utcnow(), "error": None}
            async with self.engine.begin() as conn:
                await conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))
        return SendRound(sent, failed)

    async def run(self, interval_s: float, may_run: Callable[[], bool] | None = None) -> None:
        """Send, sleep, repeat (a background task of the server); a round is skipped while
        ``may_run`` says another node runs the outbox."""
        while True:
            try:
                if may_run is None or may_run():
                    await self.send_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be down; the next round tries again
                log.exception("outbox round failed")
            await asyncio.sleep(interval_s)


def start_mail_sender(
    engine: AsyncEngine, settings: Settings, may_run: Callable[[], bool] | None = None
) -> asyncio.Task[None] | None:
    """The outbox sender task, when SMTP is configured."""
    cfg = SmtpConfig.from_settings(settings)
    if cfg is None:
        return None
    sender = SmtpSender(engine, cfg)
    return asyncio.get_running_loop().create_task(
        sender.run(settings.outbox_interval_s, may_run), name="outbox-sender"
    )
