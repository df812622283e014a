"""Staff pages for what is sold: groups (multiplier, models, limits, visibility) and models
with their official prices plus effective-dated operator overrides. Every change goes through
:class:`tollway.services.catalog_admin.CatalogAdmin` (audited, config version bumped) and
nudges the data plane to reload. Support sees both pages without forms."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.console.staff_common import Form, admin_viewer, checked, staff_viewer, text, utc_datetime, whole
from tollway.console.web import Viewer, Web
from tollway.errors import NotFound, TollwayError
from tollway.pricing.book import entry_to_dict
from tollway.store import config_repo
from tollway.store.config_repo import utcnow

Json = dict[str, Any]
LIMITS = (
    ("rpm", "requests per minute"),
    ("tpm", "tokens per minute"),
    ("concurrency", "concurrency per account"),
    ("total_concurrency", "total concurrency"),
)


def group_form(g: Json) -> Form:
    """A group as the edit form's values."""
    out = {
        "name": g["name"],
        "label": g.get("label") or "",
        "multiplier": str(g["multiplier"]),
        "models": ", ".join(g.get("models") or []),
        "visible": "1" if g.get("visible", True) else "",
        "sticky": "1" if g.get("sticky") else "",
    }
    out.update({k: "" if g.get(k) is None else str(g[k]) for k, _ in LIMITS})
    return out


def catalog_routes(router: APIRouter, web: Web) -> None:
    deps = web.deps

    async def groups_page(
        request: Request,
        v: Viewer,
        *,
        form: Form | None = None,
        editing: str = "",
        error: str | None = None,
        saved: str = "",
    ) -> Response:
        groups = await deps.service(v.actor).list_groups()
        return web.render(
            request,
            "staff_groups.html",
            status=400 if error else 200,
            me=v,
            groups=groups,
            form=form or {"multiplier": "1", "visible": "1"},
            editing=editing,
            error=error,
            saved=saved,
        )

    @router.get("/staff/groups")
    async def groups(request: Request) -> Response:
        v = await staff_viewer(web, request)
        name = request.query_params.get("edit", "")
        if name and v.role == "admin":
            found = [g for g in await deps.service(v.actor).list_groups() if g["name"] == name]
            if not found:
                raise NotFound("group")
            return await groups_page(request, v, form=group_form(found[0]), editing=name)
        return await groups_page(request, v)

    async def save_group(request: Request, name: str | None) -> Response:
        v = await admin_viewer(web, request)
        form = await web.form(request)
        create = name is None
        target = (form.get("name", "").strip() if create else name) or ""
        try:
            limits = {k: whole(form, k, label, blank=0) for k, label in LIMITS}
            await deps.service(v.actor).upsert_group(
                target,
                create=create,
                multiplier=form.get("multiplier", "").strip(),  # exact decimal text, never a float
                models=form.get("models", ""),
                label=form.get("label", "").strip(),
                visible=checked(form, "visible"),
                sticky=checked(form, "sticky"),
                reason=form.get("reason", "").strip(),
                **limits,
            )
        except TollwayError as exc:
            if isinstance(exc, NotFound) and not create:
                raise
            return await groups_page(request, v, form=form, editing=name or "", error=str(exc))
        deps.changed()
        return await groups_page(request, v, saved=target)

    @router.post("/staff/groups")
    async def create_group(request: Request) -> Response:
        return await save_group(request, None)

    @router.post("/staff/groups/{name}")
    async def update_group(request: Request, name: str) -> Response:
        return await save_group(request, name)

    # --- models and prices ---------------------------------------------------------------------

    async def models_page(
        request: Request,
        v: Viewer,
        *,
        form: Form | None = None,
        error: str | None = None,
        saved: Json | None = None,
    ) -> Response:
        models = await deps.service(v.actor).list_models()
        now = utcnow()
        async with deps.engine.connect() as conn:
            overrides = await config_repo.list_price_overrides(conn)
        scheduled = [entry_to_dict(e) for e in overrides if e.effective_from > now]
        return web.render(
            request,
            "staff_models.html",
            status=400 if error else 200,
            me=v,
            models=models,
            scheduled=scheduled,
            form=form or {},
            error=error,
            saved=saved,
        )

    @router.get("/staff/models")
    async def models(request: Request) -> Response:
        v = await staff_viewer(web, request)
        return await models_page(request, v, form={"model": request.query_params.get("model", "")})

    @router.post("/staff/models")
    async def set_price(request: Request) -> Response:
        v = await admin_viewer(web, request)
        form = await web.form(request)
        model = form.get("model", "").strip()
        try:
            if not model:
                raise NotFound("model")
            doc = await deps.service(v.actor).set_model_price(
                model,
                input=text(form, "input"),
                output=text(form, "output"),
                cache_write_5m=text(form, "cache_write_5m"),
                cache_write_1h=text(form, "cache_write_1h"),
                cache_read=text(form, "cache_read"),
                per_call=text(form, "per_call"),
                effective_from=utc_datetime(form, "effective_from"),
                reason=form.get("reason", "").strip(),
            )
        except TollwayError as exc:
            msg = "give the model's name" if isinstance(exc, NotFound) else str(exc)
            return await models_page(request, v, form=form, error=msg)
        deps.changed()
        return await models_page(request, v, saved=doc)
