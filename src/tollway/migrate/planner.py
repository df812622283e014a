"""From what the source holds and what Tollway holds to the import plan. Pure decisions: no
database access here (the reader and :mod:`target_state` did that)."""

from __future__ import annotations

from decimal import Decimal

from tollway.accounts.model import hash_secret
from tollway.migrate import convert as cv
from tollway.migrate import source_schema as ss
from tollway.migrate.channel_plan import plan_channels
from tollway.migrate.plan_model import (
    CREATE,
    EXISTS,
    SKIP,
    UPDATE,
    AccountStep,
    BalanceStep,
    CodeStep,
    GroupStep,
    KeyStep,
    Plan,
    PriceStep,
)
from tollway.migrate.prices import compare
from tollway.migrate.reader import SourceData, SourceToken, SourceUser
from tollway.migrate.target_state import TargetState
from tollway.money import MoneyFormatError, Ratio, nano_to_credits
from tollway.payments.numbers import code_hash


def ledger_keys(data: SourceData) -> list[str]:
    return [cv.import_key(data.flavour.value, "user", u.id) for u in data.users]


def build_plan(data: SourceData, state: TargetState, *, import_prices: bool = True) -> Plan:
    source = data.flavour.value
    try:
        unit = cv.QuotaUnit.parse(data.options.get("QuotaPerUnit"), ss.QUOTA_PER_UNIT)
    except MoneyFormatError as exc:
        raise MoneyFormatError(f"option QuotaPerUnit: {exc}") from exc
    plan = Plan(source, str(unit), topups=list(data.topups), log_count=data.log_count)
    if data.missing_tables:
        plan.warnings.append("tables not found in the source: " + ", ".join(data.missing_tables))
    users = {u.id: u for u in data.users}
    _groups(plan, data, state)
    accounts = _accounts(plan, data, state)
    _balances(plan, data, state, unit, accounts)
    group_names = {s.label for s in plan.of("group") if s.action != SKIP}
    for token in data.tokens:
        plan.steps.append(_key(source, token, users.get(token.user_id), accounts, group_names, state, unit))
    served = plan_channels(plan, data, state)
    _prices(plan, data, state, served, import_prices)
    _codes(plan, data, state, unit)
    return plan


def _groups(plan: Plan, data: SourceData, state: TargetState) -> None:
    ratios = cv.parse_decimal_map(data.options.get("GroupRatio"), option="GroupRatio")
    names: dict[str, Decimal | None] = {"default": None}
    for u in data.users:
        names.setdefault(u.group or "default", None)
    for t in data.tokens:
        if t.group and t.group != ss.AUTO_GROUP:
            names.setdefault(t.group, None)
    for c in data.channels:
        for g in cv.split_csv(c.group):
            names.setdefault(g, None)
    names.update(ratios)
    for name in sorted(names):
        ratio = names[name]
        step = GroupStep("group", name, name, CREATE)
        if ratio is None:
            ratio = Decimal(1)
            step.notes.append("not in GroupRatio: multiplier 1")
        step.multiplier = cv.decimal_text(ratio)
        if name == ss.AUTO_GROUP:
            step.action, step.reason = SKIP, "new-api's automatic group has no Tollway equivalent"
        elif not name or len(name) > cv.MAX_GROUP_NAME:
            step.action, step.reason = SKIP, f"a Tollway group name is 1-{cv.MAX_GROUP_NAME} characters"
        elif ratio < 0:
            step.action, step.reason = SKIP, "negative group ratio"
        elif name in state.group_multipliers:
            current = state.group_multipliers[name]
            step.before = str(current)
            step.action = EXISTS if current == Ratio.parse(ratio) else UPDATE
        plan.steps.append(step)


def _accounts(plan: Plan, data: SourceData, state: TargetState) -> dict[int, AccountStep]:
    source = data.flavour.value
    taken = set(state.emails)
    out: dict[int, AccountStep] = {}
    for u in data.users:
        account_id = cv.stable_id(source, "user", u.id)
        step = AccountStep(
            "account",
            str(u.id),
            u.username or u.display_name or f"user {u.id}",
            CREATE,
            account_id=account_id,
            status="suspended" if u.status != ss.USER_ENABLED else "active",
            username=u.username,
            display_name=u.display_name,
        )
        plan.steps.append(step)
        if u.deleted:
            step.action, step.reason = SKIP, "deleted in the source"
            continue
        out[u.id] = step
        if account_id in state.account_ids:
            step.action = EXISTS
            continue
        step.email, placeholder = cv.account_email(u.email, source, u.id, taken)
        if placeholder:
            why = "no e-mail" if not u.email.strip() else f"e-mail {u.email!r} unusable or already taken"
            step.notes.append(f"{why}: placeholder address, set the real one by hand")
        if u.role >= ss.ROLE_ADMIN:
            step.notes.append(f"role {u.role} (admin) in the source: imported as a customer")
        if u.status != ss.USER_ENABLED:
            step.notes.append("disabled in the source: imported suspended")
    return out


def _balances(
    plan: Plan, data: SourceData, state: TargetState, unit: cv.QuotaUnit, accounts: dict[int, AccountStep]
) -> None:
    source = data.flavour.value
    for u in data.users:
        if u.id not in accounts or u.quota == 0:
            continue
        key = cv.import_key(source, "user", u.id)
        step = BalanceStep(
            "balance",
            str(u.id),
            accounts[u.id].label,
            CREATE,
            account_id=accounts[u.id].account_id,
            quota=u.quota,
            idempotency_key=key,
        )
        plan.steps.append(step)
        if u.quota < 0:
            step.action = SKIP
            debt = nano_to_credits(cv.quota_to_nano(-u.quota, unit).nano)
            step.reason = f"negative quota {u.quota} (a debt of {debt} credits): imported as 0, no debt"
            continue
        converted = cv.quota_to_nano(u.quota, unit)
        step.nano, step.remainder = converted.nano, converted.remainder
        if converted.remainder_num:
            step.notes.append(f"rounded down: {converted.remainder} of a nano-credit dropped")
        if key in state.ledger_keys:
            step.action = EXISTS
        elif converted.nano <= 0:
            step.action, step.reason = SKIP, "less than one nano-credit"


def _key(
    source: str,
    t: SourceToken,
    user: SourceUser | None,
    accounts: dict[int, AccountStep],
    group_names: set[str],
    state: TargetState,
    unit: cv.QuotaUnit,
) -> KeyStep:
    secret = "sk-" + t.key.removeprefix("sk-")
    step = KeyStep(
        "key",
        str(t.id),
        t.name or f"token {t.id}",
        CREATE,
        key_id=cv.stable_id(source, "token", t.id),
        secret=secret,
        name=cv.clip(t.name.strip() or f"{source} token {t.id}", cv.MAX_KEY_NAME),
    )
    if t.deleted:
        step.action, step.reason = SKIP, "deleted in the source"
        return step
    if user is None or t.user_id not in accounts:
        step.action, step.reason = SKIP, f"its user {t.user_id} is missing or deleted"
        return step
    if len(t.key) < 16:
        step.action, step.reason = SKIP, "key shorter than 16 characters"
        return step
    step.account_id = accounts[t.user_id].account_id
    existing = state.key_ids_by_hash.get(hash_secret(secret))
    if existing is not None:
        if existing == step.key_id:
            step.action = EXISTS
        else:
            step.action, step.reason = SKIP, f"the same secret is already Tollway key {existing}"
        return step
    group = t.group or user.group or "default"
    if group == ss.AUTO_GROUP:
        group = user.group or "default"
        step.notes.append(f"group 'auto' (any of the user's groups): bound to the user's group {group!r}")
    if group not in group_names:
        step.action, step.reason = SKIP, f"its group {group!r} cannot be imported"
        return step
    step.group = group
    if t.expired_time > 0:
        step.expires = cv.unix_time(t.expired_time)
    if t.status == ss.TOKEN_DISABLED or t.status not in (
        ss.TOKEN_ENABLED,
        ss.TOKEN_EXPIRED,
        ss.TOKEN_EXHAUSTED,
    ):
        step.status = "disabled"
    elif t.status == ss.TOKEN_EXPIRED:
        if step.expires is None or step.expires > state.now:
            step.status = "disabled"
            step.notes.append("marked expired without a past expiry: imported disabled")
        else:
            step.notes.append("expired: Tollway refuses it by its expiry")
    if not t.unlimited_quota:
        remain = max(t.remain_quota, 0)
        step.spend_cap = nano_to_credits(cv.quota_to_nano(remain, unit).nano)
        if t.remain_quota <= 0 or t.status == ss.TOKEN_EXHAUSTED:
            step.notes.append("exhausted: spend cap 0, calls are refused until the cap is raised")
    if t.model_limits_enabled:
        step.models = sorted(set(cv.split_csv(t.model_limits)))
        if not step.models:
            step.status = "disabled"
            step.notes.append("model limits on with an empty list (no model allowed): imported disabled")
    step.ip_allow, bad = cv.allow_list(t.allow_ips)
    if bad:
        step.notes.append("IP entries that are not addresses or networks were dropped: " + ", ".join(bad))
        if not step.ip_allow:
            step.status = "disabled"
            step.notes.append("no usable IP entry left: imported disabled rather than open to every address")
    return step


def _prices(plan: Plan, data: SourceData, state: TargetState, served: set[str], import_prices: bool) -> None:
    for row in compare(data.options, state.book, state.now):
        step = PriceStep("price", row.model, row.model, SKIP, price=row, notes=list(row.notes))
        if not row.differs:
            step.action, row.action = EXISTS, "same"
        elif not import_prices:
            step.reason = row.action = "report only (--prices report)"
        elif row.model not in served:
            step.reason = row.action = "no imported channel serves this model"
        elif row.output_unknown and row.tollway is not None:
            step.reason = row.action = "kept Tollway's price: their output price is not stored"
        else:
            step.action = UPDATE if row.tollway is not None else CREATE
            row.action = "set"
        plan.steps.append(step)


def _codes(plan: Plan, data: SourceData, state: TargetState, unit: cv.QuotaUnit) -> None:
    source = data.flavour.value
    for r in data.redemptions:
        label = r.name or f"redemption {r.id}"
        step = CodeStep("code", str(r.id), label, CREATE, code=r.key)
        plan.steps.append(step)
        expires = cv.unix_time(r.expired_time) if r.expired_time > 0 else None
        converted = cv.quota_to_nano(max(r.quota, 0), unit)
        step.value_nano, step.remainder, step.expires = converted.nano, converted.remainder, expires
        if r.deleted:
            step.action, step.reason = SKIP, "deleted in the source"
        elif r.status == ss.REDEMPTION_USED:
            step.action, step.reason = SKIP, "already redeemed (its credit is in the user's quota)"
        elif r.status != ss.REDEMPTION_ENABLED:
            step.action, step.reason = SKIP, "disabled in the source"
        elif expires is not None and expires <= state.now:
            step.action, step.reason = SKIP, "expired"
        elif not r.key:
            step.action, step.reason = SKIP, "no code"
        elif converted.nano <= 0:
            step.action, step.reason = SKIP, "worth nothing"
        else:
            step.code_hash = code_hash(r.key)
            step.code_id = cv.stable_id(source, "redemption", r.id)
            group_key = f"{r.name}|{converted.nano}|{r.expired_time}"
            step.batch_id = cv.stable_id(source, "redemption-batch", group_key)
            step.batch_label = cv.clip(f"{source}: {r.name}" if r.name else source, 128)
            if converted.remainder_num:
                step.notes.append(f"rounded down: {converted.remainder} of a nano-credit dropped")
            if step.code_hash in state.code_hashes:
                step.action = EXISTS
