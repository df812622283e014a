"""Admission, settlement and voiding of calls: the two-phase money path of the data plane.

``admit`` sizes and opens a hold (or raises InsufficientBalance), ``settle`` prices the usage,
posts the transfer and the usage record and waits until they are committed, ``void`` ends a
hold that produced nothing. Each ends a hold at most once, keyed by the trace ID.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tollway.billing.wallets import WalletCache
from tollway.billing.writer import HoldEnded, HoldOpened, SettlementWriter
from tollway.cluster.shared_wallets import SharedWallets, Short
from tollway.durations import Seconds
from tollway.errors import InsufficientBalance, ServiceUnavailable
from tollway.ledger import chart
from tollway.ledger.chart import TransferKind
from tollway.ledger.holds import Hold, HoldBook, size_hold
from tollway.ledger.transfer import Leg, Transfer
from tollway.ledger.wallet import Pot, Wallet
from tollway.limits.specs import LimitSpec
from tollway.money import Ratio, nano_to_credits
from tollway.pricing import cost
from tollway.pricing.book import entry_to_dict
from tollway.pricing.model import Charge, PriceEntry, Usage
from tollway.store.batch_store import BatchRefused


@dataclass(slots=True)
class CallFacts:
    """What the usage record says about a call besides its usage and price."""

    trace_id: str
    owner_id: str
    key_id: str
    endpoint: str
    model_requested: str
    model_billed: str
    group_name: str
    multiplier: Ratio
    stream: bool
    client_ip: str | None
    started_at: datetime
    channel_id: str | None = None
    attempts: str | None = None  # JSON: the upstream attempts (channel, outcome, status, ms)
    charged_nano: int = 0  # set by settle: what the call deducted (for the metrics)


class Biller:
    def __init__(
        self,
        wallets: WalletCache,
        writer: SettlementWriter,
        *,
        revenue_account_id: int,
        hold_timeout_s: Seconds,
        settlement_deadline_s: Seconds,
        shared: SharedWallets | None = None,
    ) -> None:
        self.wallets = wallets
        # Several nodes: Redis decides admission and spend order (docs/scaling.md); else memory.
        self.shared = shared
        self._side: set[asyncio.Task[None]] = set()
        self.writer = writer
        self.holds = HoldBook()
        self._revenue = revenue_account_id
        self._hold_timeout = timedelta(seconds=hold_timeout_s)
        self._deadline = settlement_deadline_s
        self._snapshots: dict[int, tuple[PriceEntry, str]] = {}

    def snapshot(self, entry: PriceEntry) -> str:
        """The price entry as JSON for usage records, serialised once per entry."""
        cached = self._snapshots.get(id(entry))
        if cached is None or cached[0] is not entry:
            if len(self._snapshots) > 10_000:
                self._snapshots.clear()
            cached = (entry, orjson.dumps(entry_to_dict(entry)).decode())
            self._snapshots[id(entry)] = cached
        return cached[1]

    async def admit(
        self,
        facts: CallFacts,
        entry: PriceEntry,
        *,
        input_upper: int,
        input_expected: int,
        max_output: int,
        spend_cap_nano: int | None,
        calls: int = 1,
        limits: tuple[LimitSpec, ...] = (),
        tokens: int = 0,
    ) -> Hold:
        """Open the call's hold, or raise InsufficientBalance. With shared admission the
        ``limits`` are checked and taken in the same atomic step (none taken on a 402)."""
        if self.shared is not None:
            return await self._admit_shared(
                facts, entry, input_upper, input_expected, max_output, spend_cap_nano, calls, limits, tokens
            )
        wallet = await self.wallets.get(facts.owner_id)
        key_spent = await self.wallets.key_spent(facts.key_id) if spend_cap_nano is not None else 0
        # No awaits from here to the hold being open: concurrent calls see each other's holds.
        now = datetime.now(UTC)
        mult = facts.multiplier
        worst = cost.hold_cost_nano(entry, input_upper, max_output, mult, calls=calls)
        expected = cost.hold_cost_nano(entry, input_expected, max_output, mult, calls=calls)
        available = wallet.available_nano(now)
        scope = "account"
        if spend_cap_nano is not None:
            cap_left = spend_cap_nano - key_spent - self.holds.held_by_key(facts.key_id)
            if cap_left < available:
                available, scope = cap_left, "key spend cap"
        size = size_hold(available, worst, expected)
        if size is None:
            raise _short(facts, entry, available, expected, input_expected, max_output, scope, calls)
        return self._open(facts, wallet, size.amount_nano, now)

    def _open(self, facts: CallFacts, wallet: Wallet, amount_nano: int, now: datetime) -> Hold:
        hold = Hold(facts.trace_id, facts.owner_id, facts.key_id, amount_nano, now, now + self._hold_timeout)
        self.holds.open(hold, wallet)
        self.writer.submit(HoldOpened(hold))
        return hold

    async def _admit_shared(
        self,
        facts: CallFacts,
        entry: PriceEntry,
        input_upper: int,
        input_expected: int,
        max_output: int,
        spend_cap_nano: int | None,
        calls: int,
        limits: tuple[LimitSpec, ...],
        tokens: int,
    ) -> Hold:
        assert self.shared is not None
        wallet = await self.wallets.get(facts.owner_id)  # this node's view, for the record
        mult = facts.multiplier
        worst = cost.hold_cost_nano(entry, input_upper, max_output, mult, calls=calls)
        expected = cost.hold_cost_nano(entry, input_expected, max_output, mult, calls=calls)
        got = await self.shared.admit(
            trace_id=facts.trace_id,
            owner_id=facts.owner_id,
            key_id=facts.key_id,
            worst=worst,
            expected=expected,
            cap_nano=spend_cap_nano,
            limits=limits,
            tokens=tokens,
        )
        if isinstance(got, Short):
            raise _short(
                facts, entry, got.available_nano, expected, input_expected, max_output, got.scope, calls
            )
        return self._open(facts, wallet, got, datetime.now(UTC))

    async def settle(
        self,
        facts: CallFacts,
        entry: PriceEntry,
        usage: Usage,
        *,
        status: str = "ok",
        http_status: int = 200,
        error_code: str | None = None,
        latency_ms: int,
        ttft_ms: int | None,
    ) -> Charge:
        """Post the call's cost and its record; returns once both are committed."""
        charge = cost.charge(entry, usage, facts.multiplier)
        wallet = await self.wallets.get(facts.owner_id)
        now = datetime.now(UTC)
        hold = self.holds.close(facts.trace_id, wallet)
        hold_nano = hold.amount_nano if hold else 0
        amount = charge.deduction_nano
        plan, cash_before, cash_after, balance_after = await self._spend(
            facts, wallet, hold, amount, usage, now
        )
        overrun = max(0, -cash_after) - max(0, -cash_before)
        deltas = [(pot.ledger_account_id, -take) for pot, take in plan]
        transfer = None
        if amount > 0:
            legs = [Leg(pot.ledger_account_id, -take) for pot, take in plan]
            legs.append(Leg(self._revenue, amount))
            transfer = Transfer(
                chart.usage_transfer_key(facts.trace_id),
                TransferKind.USAGE.value,
                tuple(legs),
                owner_id=facts.owner_id,
                trace_id=facts.trace_id,
                memo=facts.model_billed,
            )
            deltas.append((self._revenue, amount))
        self.wallets.add_key_spend(facts.key_id, amount)
        facts.charged_nano = amount
        row = usage_row(
            facts,
            self.snapshot(entry),
            usage,
            charge,
            status=status,
            http_status=http_status,
            error_code=error_code,
            balance_after=balance_after,
            overrun=overrun,
            hold_nano=hold_nano,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            at=now,
        )
        self.wallets.add_pending(deltas)
        fut = self.writer.submit(
            HoldEnded(
                facts.trace_id,
                "settled",
                now,
                settled_nano=amount,
                overrun_nano=overrun,
                transfer=transfer,
                usage_row=row,
                hold=hold,
            ),
            on_commit=lambda: self.wallets.commit_pending(deltas),
        )
        try:
            async with asyncio.timeout(self._deadline):
                await asyncio.shield(fut)
        except BatchRefused:
            self.wallets.mark_stale(facts.owner_id)  # memory applied a spend the store refused
            if self.shared is not None and plan:
                await self.shared.unspend(
                    facts.owner_id, [(p.ledger_account_id, t) for p, t in plan], wallet.cash.ledger_account_id
                )
            raise
        except TimeoutError as exc:
            raise ServiceUnavailable(
                "the charge for this call could not be recorded in time; it will be recorded when the "
                "database recovers",
                retry_after_s=5,
            ) from exc
        return charge

    def void(
        self,
        facts: CallFacts,
        entry: PriceEntry,
        *,
        status: str,
        http_status: int,
        error_code: str | None,
        latency_ms: int,
    ) -> None:
        """End a hold that produced no output: nothing is charged; the failure is recorded."""
        hold = self.holds.close(facts.trace_id, self.wallets.cached(facts.owner_id))
        self._release_shared(facts.trace_id)
        now = datetime.now(UTC)
        usage = Usage()
        charge = cost.charge(entry, usage, facts.multiplier)
        row = usage_row(
            facts,
            self.snapshot(entry),
            usage,
            charge,
            status=status,
            http_status=http_status,
            error_code=error_code,
            balance_after=None,
            overrun=0,
            hold_nano=hold.amount_nano if hold else 0,
            latency_ms=latency_ms,
            ttft_ms=None,
            at=now,
        )
        self.writer.submit(HoldEnded(facts.trace_id, "voided", now, settled_nano=0, usage_row=row, hold=hold))

    def abandon(self, trace_id: str) -> None:
        """End a hold its call left open (an error path that neither settled nor voided)."""
        hold = self.holds.get(trace_id)
        if hold is None:
            return
        self.holds.close(trace_id, self.wallets.cached(hold.owner_id))
        self._release_shared(trace_id)
        self.writer.submit(HoldEnded(trace_id, "voided", datetime.now(UTC), settled_nano=0, hold=hold))

    async def _spend(
        self, facts: CallFacts, wallet: Wallet, hold: Hold | None, amount: int, usage: Usage, now: datetime
    ) -> tuple[list[tuple[Pot, int]], int, int, int]:
        """Spend ``amount`` in spend order: (plan, cash before, cash after, balance after)."""
        shared = self.shared
        if shared is not None:
            tokens = usage.prompt_tokens + usage.output_tokens
            spent = await shared.spend(facts.trace_id, amount, force=hold is None, tokens_actual=tokens)
            if spent is not None:
                plan = [(self._pot(wallet, lid), take) for lid, take in spent.plan]
                wallet.apply(plan)  # keep this node's view near (the record's balance comes from Redis)
                return plan, spent.cash_before, spent.cash_after, spent.cash_after + spent.vouchers_after
        cash_before = wallet.cash.balance_nano
        plan = wallet.spend_plan(amount, now) if amount > 0 else []
        wallet.apply(plan)
        if shared is not None:  # Redis away: this node's plan, replayed into Redis when it is back
            shared.replay_spend(
                facts.trace_id,
                amount,
                [(p.ledger_account_id, t) for p, t in plan],
                force=hold is None,
                tokens_actual=usage.prompt_tokens + usage.output_tokens,
            )
        return (
            plan,
            cash_before,
            wallet.cash.balance_nano,
            wallet.cash.balance_nano + wallet.voucher_nano(now),
        )

    def _pot(self, wallet: Wallet, ledger_account_id: int) -> Pot:
        pot = wallet.pot_by_id(ledger_account_id)
        if pot is None:  # a grant this node has not loaded yet: reload at the next refresh
            self.wallets.mark_stale(wallet.owner_id)
            pot = Pot(ledger_account_id, "", 0)
        return pot

    def _release_shared(self, trace_id: str) -> None:
        if self.shared is None or trace_id not in self.shared.tickets:
            return
        task = asyncio.get_running_loop().create_task(self.shared.release(trace_id))
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def drain(self, timeout_s: Seconds = 2.0) -> None:
        """Wait (bounded) for the shared-hold releases still on their way to Redis."""
        if self._side:
            await asyncio.wait(list(self._side), timeout=timeout_s)

    def holds_trace_ids(self) -> list[str]:
        return self.holds.trace_ids()

    def expire_stale(self, now: datetime) -> int:
        """Release holds past their timeout (a safety net: every call ends its own hold)."""
        stale = self.holds.expired(now)
        for hold in stale:
            self.holds.close(hold.trace_id, self.wallets.cached(hold.owner_id))
            self._release_shared(hold.trace_id)
            self.writer.submit(HoldEnded(hold.trace_id, "expired", now, hold=hold))
        return len(stale)


def _short(
    facts: CallFacts,
    entry: PriceEntry,
    available: int,
    expected: int,
    input_expected: int,
    max_output: int,
    scope: str,
    calls: int,
) -> InsufficientBalance:
    affordable = cost.affordable_output_tokens(
        entry, input_expected, max(available, 0), facts.multiplier, calls=calls
    )
    what = "balance" if scope == "account" else "remaining key spend cap"
    return InsufficientBalance(
        f"Insufficient {what}: available {nano_to_credits(available)} credits, this request needs "
        f"at least {nano_to_credits(expected)} credits ({max_output} max output tokens of "
        f"{facts.model_requested}); the {what} can afford about {affordable} output tokens - "
        "lower max_tokens or top up",
        available_nano=available,
        required_nano=expected,
        scope=scope,
        affordable_output_tokens=affordable,
    )


def usage_row(
    facts: CallFacts,
    snapshot: str,
    usage: Usage,
    charge: Charge,
    *,
    status: str,
    http_status: int,
    error_code: str | None,
    balance_after: int | None,
    overrun: int,
    hold_nano: int,
    latency_ms: int,
    ttft_ms: int | None,
    at: datetime,
) -> dict[str, Any]:
    lines = [
        {
            "category": ln.category,
            "quantity": ln.quantity,
            "unit_price_nano": ln.unit_price_nano,
            "per": ln.per,
        }
        for ln in charge.lines
    ]
    return {
        "trace_id": facts.trace_id,
        "created_at": at,
        "owner_id": facts.owner_id,
        "key_id": facts.key_id,
        "endpoint": facts.endpoint,
        "model_requested": facts.model_requested,
        "model_billed": facts.model_billed,
        "group_name": facts.group_name,
        "multiplier": str(facts.multiplier),
        "stream": facts.stream,
        "status": status,
        "http_status": http_status,
        "error_code": error_code,
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "calls": usage.calls,
        "estimated": usage.estimated,
        "tier": charge.tier,
        "price_snapshot": snapshot,
        "lines": orjson.dumps(lines).decode(),
        "official_cost_nano": charge.official_cost_nano,
        "deduction_nano": charge.deduction_nano,
        "balance_after_nano": balance_after,
        "overrun_nano": overrun,
        "hold_nano": hold_nano,
        "latency_ms": latency_ms,
        "ttft_ms": ttft_ms,
        "channel_id": facts.channel_id,
        "attempts": facts.attempts,
        "client_ip": facts.client_ip,
    }
