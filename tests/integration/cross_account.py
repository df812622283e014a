"""What the cross-account sweep tries, derived from the app itself rather than hand-listed:
the operations of ``/api/openapi.json`` and the console's route table, each parameter that
names a resource filled with the victim's id, and the role each route demands read from its
FastAPI dependency (``Authenticator.session|staff|admin``).

Only the values are listed here: which id a parameter name stands for, the verbs an
``{action}`` segment takes, and the staff pages support may use (docs/console.md). A route
with a parameter the sweep has no value for fails the sweep, so a new route cannot slip by.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Mount
from sweep_world import CSRF, Owned

from tollway.store.tables import metadata

# Parameters that name configuration rather than anyone's data: tried for the role boundary.
CONFIG_NAMES = {"groups": "g", "models": "gpt-4o", "channels": "oai"}
# Console parameters that are no account's resource: the sign-in step, the language, the
# password-reset token (a secret of its own, tested in test_signin_mail.py).
NOT_A_RESOURCE = frozenset({"step", "lang", "token"})
ACTIONS = {
    "/console/keys/{key_id}/{action}": ("rename", "disable", "enable", "revoke", "delete"),
    "/console/staff/accounts/{account_id}/{action}": ("credit", "voucher", "suspend", "activate"),
    "/console/staff/refunds/{request_id}/{action}": ("approve", "reject"),
    "/console/staff/channels/{name}/{action}": ("enable", "disable", "test"),
}
# Staff pages support may use (docs/console.md, "Roles"); every other staff page that takes an
# id is for admins, and a support session must get 404 there.
SUPPORT_PAGES = frozenset(
    {
        ("GET", "/console/staff/accounts/{account_id}", ""),
        *(
            ("POST", "/console/staff/accounts/{account_id}/{action}", a)
            for a in ACTIONS["/console/staff/accounts/{account_id}/{action}"]
        ),
        ("GET", "/console/staff/orders/{order_number}", ""),
        ("POST", "/console/staff/orders/{order_number}/credit", ""),
        ("POST", "/console/staff/refunds/{request_id}/{action}", "approve"),
        ("POST", "/console/staff/refunds/{request_id}/{action}", "reject"),
    }
)
# A form that satisfies every console handler's reads (the CSRF token matches the cookie).
FORM = {"csrf": CSRF, "reason": "sweep", "amount": "1", "name": "sweep", "days": "1", "code": "X"}
# Tables the app's own background work rewrites while the sweep runs — the node heartbeat and
# the job leases (docs/scaling.md) — none of them anyone's data. Every other table must not
# change at all.
VOLATILE = frozenset({"nodes", "job_leases"})


def resource_values(owned: Owned) -> dict[str, tuple[str, ...]]:
    return {
        "account_id": (owned.account_id,),
        "key_id": (owned.key_id,),
        "trace_id": (owned.trace_id,),
        "order_number": (owned.order_number,),
        "request_id": (owned.open_request_id, owned.refund_request_id),
        "refund_id": (owned.refund_id,),
        "batch_id": (owned.batch_id,),
    }


def values_for(name: str, path: str, owned: Owned) -> tuple[str, ...] | None:
    """The values to try for parameter ``name`` of ``path``; None when the sweep has none."""
    if name in resource_values(owned):
        return resource_values(owned)[name]
    if name == "name":
        collection = path.split("/{name}")[0].rsplit("/", 1)[-1]
        return (CONFIG_NAMES[collection],) if collection in CONFIG_NAMES else None
    if name in ("currency", "code"):
        return ("USD",)
    if name == "action":
        return ACTIONS.get(path)
    return None


@dataclass(frozen=True)
class Target:
    surface: str  # api | console
    method: str
    template: str
    url: str  # path and query, filled
    body: bytes
    content_type: str
    role: str  # who may: session (the owner) | staff | admin | public | owner-page | <console rule>
    action: str = ""

    @property
    def route(self) -> str:
        return f"{self.method} {self.template}"


# --- the API ------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def sample(schema: dict[str, Any], doc: dict[str, Any], ids: dict[str, str], name: str = "") -> Any:
    """A value valid for ``schema`` that an owner's request would carry; id fields get B's ids."""
    schema = _resolve(schema, doc)
    if name in ids:
        return ids[name]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, doc).get("type") != "null"]
            return sample(options[0], doc, ids, name)
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("default") is not None:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        keys = [k for k in props if k in schema.get("required", []) or k in ids]
        return {k: sample(props[k], doc, ids, k) for k in keys}
    if kind == "array":
        return []
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if schema.get("format") == "email":
        return "sweep@example.test"
    if schema.get("format") == "date-time":
        return "2099-01-01T00:00:00Z"
    return "1"


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """``(path, route)`` for every FastAPI route, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            inner = prefix + (getattr(route.include_context, "prefix", "") or "")
            yield from api_routes(route.original_router.routes, inner)


def api_roles(app: Any) -> dict[str, str]:
    """``METHOD /path`` -> the Authenticator dependency it needs (``public`` when none)."""
    out = {}
    for path, route in api_routes(app.routes):
        role = "public"
        stack = list(route.dependant.dependencies)
        while stack:
            dep = stack.pop()
            name = getattr(dep.call, "__name__", "")
            if getattr(dep.call, "__self__", None).__class__.__name__ == "Authenticator":
                role = name
            stack.extend(dep.dependencies)
        for method in route.methods:
            out[f"{method} {path}"] = role
    return out


def api_targets(doc: dict[str, Any], roles: dict[str, str], owned: Owned) -> Iterator[Target | str]:
    """Every operation with a parameter naming a resource, filled with B's ids; a ``str`` is a
    parameter the sweep cannot fill (the caller fails on it)."""
    ids = {k: v[0] for k, v in resource_values(owned).items()}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
            body_schema = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            )
            body_props = set(_resolve(body_schema, doc).get("properties", {})) if body_schema else set()
            takes_id = any(p["name"] in ids for p in params) or bool(body_props & set(ids))
            if not takes_id:
                continue
            choices: list[tuple[str, str, tuple[str, ...]]] = []
            for p in params:
                if p["in"] == "query" and p["name"] not in ids:
                    continue  # filters and limits keep their defaults
                found = values_for(p["name"], path, owned)
                if found is None:
                    yield f"{method.upper()} {path}: no value for {p['name']}"
                    break
                choices.append((p["in"], p["name"], found))
            else:
                body = b""
                if body_schema:
                    body = orjson.dumps(sample(body_schema, doc, ids))
                for combo in itertools.product(*(c[2] for c in choices)):
                    url, query = path, {}
                    for (where, name, _), value in zip(choices, combo, strict=True):
                        if where == "path":
                            url = url.replace("{" + name + "}", value)
                        else:
                            query[name] = value
                    if query:
                        url += "?" + urlencode(query)
                    role = roles[f"{method.upper()} {path}"]
                    yield Target("api", method.upper(), path, url, body, "application/json", role)


# --- the console --------------------------------------------------------------------------------


def console_routes(control_app: Any) -> Iterator[tuple[str, APIRoute]]:
    for mount in control_app.routes:
        if isinstance(mount, Mount) and mount.path == "/console":
            for path, route in api_routes(mount.app.routes):
                yield "/console" + path, route


def console_targets(control_app: Any, owned: Owned) -> Iterator[Target | tuple[str, str]]:
    """Every console route with a parameter naming a resource; ``(route, why)`` for the rest
    that take parameters (reported as not taking anyone's id)."""
    form = urlencode(FORM).encode()
    for template, route in console_routes(control_app):
        names = [p.name for p in route.dependant.path_params]
        if not names:
            continue
        if set(names) <= NOT_A_RESOURCE | {"action"}:
            yield template, f"parameters {names}: no account's resource"
            continue
        for method in sorted(route.methods):
            options = []
            for name in names:
                found = values_for(name, template, owned)
                if found is None:
                    raise AssertionError(f"{method} {template}: the sweep has no value for {name}")
                options.append(found)
            for combo in itertools.product(*options):
                url = template
                action = ""
                for name, value in zip(names, combo, strict=True):
                    url = url.replace("{" + name + "}", value)
                    action = value if name == "action" else action
                if template.startswith("/console/payment/"):
                    role = "public"
                elif template.startswith("/console/staff/"):
                    role = "staff" if (method, template, action) in SUPPORT_PAGES else "admin"
                else:
                    role = "session"  # the signed-in account's own pages
                body = form if method == "POST" else b""
                ctype = "application/x-www-form-urlencoded" if method == "POST" else ""
                yield Target("console", method, template, url, body, ctype, role, action)


def console_query_targets(owned: Owned) -> Iterator[Target]:
    """The console pages that read an id from the query string (their handlers parse it by
    hand, so the route table cannot tell): the usage filters on one's own pages must show
    nothing of B's (``filter``: a 200 is right, B's data in it is a leak); the staff search and
    audit log are staff pages."""
    filters = {"key": owned.key_id, "trace": owned.trace_id}
    for path in ("/console/usage", "/console/usage.csv"):
        for name, value in filters.items():
            yield Target(
                "console", "GET", path + "?" + name, f"{path}?{urlencode({name: value})}", b"", "", "filter"
            )
    yield Target("console", "GET", "/console/?key", f"/console/?{urlencode(filters)}", b"", "", "filter")
    for q in (owned.account_id, owned.email, owned.order_number, owned.trace_id):
        yield Target(
            "console", "GET", "/console/staff?q", f"/console/staff?{urlencode({'q': q})}", b"", "", "staff"
        )
    target = urlencode({"target": f"account:{owned.account_id}"})
    yield Target(
        "console", "GET", "/console/staff/audit?target", f"/console/staff/audit?{target}", b"", "", "staff"
    )


def denied(role: str, who_role: str) -> bool:
    """Whether a principal of ``who_role`` must be refused a route needing ``role`` for another
    account's resource (``token`` is the admin token, ``key`` an API key)."""
    if role in ("session", "filter"):
        return True  # an account's own routes: nobody but the owner
    if role == "staff":
        return who_role in ("customer", "key")
    if role == "admin":
        return who_role in ("customer", "key", "support")
    return False


async def snapshot(engine: AsyncEngine) -> dict[str, frozenset[tuple[object, ...]]]:
    """Every row of every table (as text), but the volatile ones."""
    out: dict[str, frozenset[tuple[object, ...]]] = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in VOLATILE:
                continue
            rows = (await conn.execute(select(table))).all()
            out[table.name] = frozenset(tuple(repr(v) for v in row) for row in rows)
    return out
