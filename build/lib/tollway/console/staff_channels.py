"""Staff page for channels: each channel and each of its credentials with the breaker state
the running data plane holds (``ControlDeps.live``, handed over by the composition root), the
last error from the audit log, priority, weight, models and groups. Admins enable and disable
a channel, make a real 1-token test call through one credential (the prober's call), create
and edit the non-secret fields and set new credentials. Credentials are never shown back:
the services keep no readable hint of them, so the page says only whether one is set."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.console import stats
from tollway.console.staff_common import Form, admin_viewer, seconds, staff_viewer, text, whole
from tollway.console.web import Viewer, Web
from tollway.errors import InvalidRequest, NotFound, ServiceUnavailable, TollwayError
from tollway.relay.probe import ProbeResult

Json = dict[str, Any]
CHANNEL_TYPES = ("openai", "anthropic", "gemini")
TIMEOUTS = (  # form field, key in the channel's timeouts
    ("connect_timeout", "connect_timeout_s"),
    ("first_byte_timeout", "first_byte_timeout_s"),
    ("idle_timeout", "idle_timeout_s"),
)


def channel_form(c: Json) -> Form:
    """A channel as the edit form's values (no credential: it is write-only)."""
    out = {
        "name": c["name"],
        "type": c["type"],
        "base_url": c["base_url"],
        "models": ", ".join(c["models"]),
        "groups": ", ".join(c["groups"]),
        "priority": str(c["priority"]),
        "weight": str(c["weight"]),
        "model_map": ", ".join(f"{k}={v}" for k, v in sorted(c["model_map"].items())),
    }
    out.update({field: str(c["timeouts"].get(key, "")) for field, key in TIMEOUTS})
    return out


def last_error(entries: list[Json]) -> Json | None:
    """The newest breaker transition away from ``closed`` (its reason is the error)."""
    for e in entries:
        if e["action"] != "channel.state":
            continue
        try:
            state = orjson.loads(e["after"] or "{}").get("state")
        except orjson.JSONDecodeError:
            continue
        if state != "closed":
            return {"at": e["at"], "reason": e["reason"], "state": state}
    return None


def channel_routes(router: APIRouter, web: Web) -> None:
    deps = web.deps

    async def page(
        request: Request,
        v: Viewer,
        *,
        form: Form | None = None,
        editing: str = "",
        error: str | None = None,
        saved: str = "",
        tested: tuple[str, int, ProbeResult] | None = None,
    ) -> Response:
        rows = await deps.service(v.actor).list_channels()
        async with deps.engine.connect() as conn:
            for c in rows:
                c["creds"] = deps.live.credentials(c["id"]) if deps.live is not None else None
                entries = await stats.audit_entries(conn, target=f"channel:{c['id']}", limit=20)
                c["last_error"] = last_error(entries)
        return web.render(
            request,
            "staff_channels.html",
            status=400 if error else 200,
            me=v,
            channels=rows,
            types=CHANNEL_TYPES,
            form=form or {"type": "openai", "priority": "0", "weight": "1"},
            editing=editing,
            error=error,
            saved=saved,
            tested=tested,
            live=deps.live is not None,
        )

    @router.get("/staff/channels")
    async def channels(request: Request) -> Response:
        v = await staff_viewer(web, request)
        name = request.query_params.get("edit", "")
        if name and v.role == "admin":
            found = [c for c in await deps.service(v.actor).list_channels() if c["name"] == name]
            if not found:
                raise NotFound("channel")
            return await page(request, v, form=channel_form(found[0]), editing=name)
        return await page(request, v)

    async def save(request: Request, name: str | None) -> Response:
        v = await admin_viewer(web, request)
        form = await web.form(request)
        create = name is None
        target = (form.get("name", "").strip() if create else name) or ""
        try:
            if not target:
                raise InvalidRequest("give the channel a name", param="name")
            await deps.service(v.actor).upsert_channel(
                target,
                create=create,
                type=form.get("type", "").strip(),
                base_url=form.get("base_url", "").strip(),
                api_key=text(form, "api_key"),  # empty: keep the credentials already set
                models=form.get("models", ""),
                groups_=form.get("groups", ""),
                priority=whole(form, "priority", "the priority", blank=0),
                weight=whole(form, "weight", "the weight", blank=1),
                model_map=form.get("model_map", ""),
                reason=form.get("reason", "").strip(),
                connect_timeout=seconds(form, "connect_timeout", "the connect timeout"),
                first_byte_timeout=seconds(form, "first_byte_timeout", "the first-byte timeout"),
                idle_timeout=seconds(form, "idle_timeout", "the idle timeout"),
            )
        except TollwayError as exc:
            if isinstance(exc, NotFound) and not create:
                raise
            kept = {k: val for k, val in form.items() if k != "api_key"}  # never echo a secret
            return await page(request, v, form=kept, editing=name or "", error=str(exc))
        deps.changed()
        return await page(request, v, saved=target)

    @router.post("/staff/channels")
    async def create_channel(request: Request) -> Response:
        return await save(request, None)

    @router.post("/staff/channels/{name}")
    async def update_channel(request: Request, name: str) -> Response:
        return await save(request, name)

    @router.post("/staff/channels/{name}/{action}")
    async def channel_action(request: Request, name: str, action: str) -> Response:
        v = await admin_viewer(web, request)
        if action not in ("enable", "disable", "test"):
            raise NotFound("action")
        form = await web.form(request)
        svc = deps.service(v.actor)
        found = [c for c in await svc.list_channels() if c["name"] == name]
        if not found:
            raise NotFound("channel")
        if action != "test":
            await svc.upsert_channel(
                name, create=False, enabled=action == "enable", reason=form.get("reason", "").strip()
            )
            deps.changed()
            return await page(request, v, saved=name)
        try:
            if deps.live is None:
                raise ServiceUnavailable("no gateway runs in this process, so it cannot make a test call")
            index = whole(form, "credential", "the credential", blank=0) or 0
            result = await deps.live.test(found[0]["id"], index)
        except TollwayError as exc:
            if isinstance(exc, NotFound):
                raise
            return await page(request, v, error=str(exc))
        return await page(request, v, tested=(name, index, result))
