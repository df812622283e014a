"""Channels and abilities: their channel type to a Tollway adapter and base URL, the
credentials, models, groups, model mapping, priority and weight.

Weights: new-api and one-api pick a channel inside a priority tier with probability
``(weight + 10) / sum(weight + 10)``; Tollway's weighted choice is ``weight / sum(weight)``,
so the imported weight is theirs + 10 and the shares stay the same. Abilities (group x model
x channel) are derived by them from each channel's models and groups; Tollway routes by the
channel's own lists, so abilities are only compared and any difference is reported.
"""

from __future__ import annotations

import json
from collections import defaultdict

from tollway.migrate import convert as cv
from tollway.migrate.plan_model import CREATE, EXISTS, SKIP, ChannelStep, Plan
from tollway.migrate.reader import SourceChannel, SourceData
from tollway.migrate.source_schema import CHANNEL_ENABLED, channel_kinds
from tollway.migrate.target_state import TargetState

WEIGHT_OFFSET = 10


def _base_url(channel: SourceChannel, default: str, append_v1: bool) -> str:
    base = (channel.base_url or default).rstrip("/")
    if append_v1 and not base.endswith("/v1"):
        base += "/v1"
    return base


def _model_map(text: str, step: ChannelStep) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        step.notes.append("model_mapping is not JSON: left out")
        return {}
    if not isinstance(doc, dict):
        step.notes.append("model_mapping is not a JSON object: left out")
        return {}
    out: dict[str, str] = {}
    for src, dst in doc.items():
        if not isinstance(dst, str) or not dst or any(c in f"{src}{dst}" for c in ",="):
            step.notes.append(f"model mapping {src!r} left out (not a plain model name)")
            continue
        out[str(src)] = dst
    return out


def plan_channels(plan: Plan, data: SourceData, state: TargetState) -> set[str]:
    """Add the channel steps; return the models the imported channels serve."""
    source = data.flavour.value
    kinds = channel_kinds(data.flavour)
    names = set(state.channel_names)
    abilities: dict[int, set[tuple[str, str, bool]]] = defaultdict(set)
    for a in data.abilities:
        abilities[a.channel_id].add((a.group, a.model, a.enabled))
    served: set[str] = set()
    for c in data.channels:
        step = ChannelStep("channel", str(c.id), c.name or f"channel {c.id}", CREATE)
        step.channel_id = cv.stable_id(source, "channel", c.id)
        plan.steps.append(step)
        kind = kinds.get(c.type)
        if kind is None:
            step.action, step.reason = SKIP, f"channel type {c.type} has no Tollway adapter"
            continue
        step.type = kind.tollway_type
        step.models = sorted(set(cv.split_csv(c.models)))
        step.groups = sorted(set(cv.split_csv(c.group)))
        if step.channel_id in state.channel_ids:
            step.action = EXISTS
            served.update(step.models)
            continue
        key_text = c.key.strip()
        if key_text.startswith("["):
            step.action, step.reason = SKIP, "JSON credentials (service accounts) are not supported"
            continue
        step.credentials = cv.split_lines(key_text)
        if not step.credentials:
            step.action, step.reason = SKIP, "no credential"
            continue
        if any("," in k for k in step.credentials):
            step.action, step.reason = SKIP, "a credential contains a comma"
            continue
        if not step.models:
            step.action, step.reason = SKIP, "serves no model"
            continue
        step.name = cv.unique_name(c.name, f"{source} channel {c.id}", f"({source} #{c.id})", names, 128)
        if step.name != c.name:
            step.notes.append(f"named {step.name!r} (the name was empty or taken)")
        step.base_url = _base_url(c, kind.default_base, kind.append_v1)
        if not step.base_url.startswith(("http://", "https://")):
            step.action, step.reason = SKIP, f"base URL {step.base_url!r} is not http(s)"
            continue
        step.model_map = _model_map(c.model_mapping, step)
        step.priority = c.priority
        step.weight = max(c.weight, 0) + WEIGHT_OFFSET
        step.enabled = c.status == CHANNEL_ENABLED
        if not step.enabled:
            step.notes.append(f"status {c.status} in the source: imported disabled")
        expected = {(g, m) for g in step.groups for m in step.models}
        found = abilities.get(c.id)
        if found is not None:
            pairs = {(g, m) for g, m, _ in found}
            if pairs != expected:
                step.notes.append(
                    "abilities differ from the channel's models x groups; Tollway routes by the lists"
                )
            if step.enabled and any(not enabled for _, _, enabled in found):
                step.notes.append(
                    "some abilities were disabled in the source; Tollway enables the whole channel"
                )
        served.update(step.models)
    return served
