"""End-to-end fixtures: a fake upstream and a Tollway server as subprocesses.

``stack`` is shared by every test of a module and parametrised over the back-ends of
``TOLLWAY_TEST_BACKENDS`` (default SQLite and PostgreSQL), so each module's tests run once
against each; tests isolate themselves with their own accounts and keys. Tests that need a
server of their own build it on ``db_url`` (tests/conftest.py) with ``fresh_stack``.
When a test fails, the server's and the fake's logs are attached to its report.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from .stack import Stack, running_stack

# Same back-ends and PostgreSQL server as tests/conftest.py's ``db_url``.
PG_ADMIN_DSN = os.environ.get("TOLLWAY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("TOLLWAY_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _backend_of(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgres"


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway database shared by one module's tests (module-scoped ``db_url``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'tollway.db'}"
        return
    name = f"tollway_e2e_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def stack(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Fake upstream + Tollway server + provisioning, shared by the module's tests."""
    workdir = tmp_path_factory.mktemp("stack")
    with running_stack(_backend_of(module_db_url), module_db_url, workdir) as s:
        yield s


@pytest.fixture
def fresh_stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own, on tests/conftest.py's ``db_url`` (SQLite and PostgreSQL)."""
    with running_stack(_backend_of(db_url), db_url, tmp_path / "stack") as s:
        yield s


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Stack):
                report.sections.append((f"tollway e2e logs ({value.backend})", value.logs()))
    return report


@pytest.fixture(scope="module")
def fstack(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The fault suites' server: short timeouts, JSON logs (see faults_support.SERVER_ENV)."""
    from .faults_support import SERVER_ENV

    workdir = tmp_path_factory.mktemp("faults")
    with running_stack(_backend_of(module_db_url), module_db_url, workdir, SERVER_ENV) as s:
        yield s
