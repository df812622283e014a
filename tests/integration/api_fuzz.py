"""Schemathesis over ``/api/openapi.json``, sent to the running app in process.

Schemathesis generates the cases (Hypothesis, positive and negative data) and judges the
answers; the requests go through the test's own ``httpx2`` client on the app's ASGI boundary,
on the event loop the app was started on (its database pool lives there). Hypothesis runs in
a worker thread and hands each request to that loop.

A check failure is recorded, not raised, so one run counts every operation, request and
finding; the test asserts the list of findings is empty. Shrinking is off (the first failing
case is kept as it was sent) and generation is derandomised, so CI sends the same requests on
every run; ``scripts/fuzz`` runs more examples with a random seed.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("TOLLWAY_FUZZ_EXAMPLES", "5"))
RANDOM = os.environ.get("TOLLWAY_FUZZ_RANDOM", "") == "1"
CHECKS = [
    st_checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

Send = Callable[[str, str, dict[str, str], bytes], httpx2.Response]


@dataclass(frozen=True)
class Finding:
    operation: str
    status: int
    check: str
    detail: str
    request: str

    def __str__(self) -> str:
        return f"{self.operation} -> {self.status} [{self.check}] {self.detail}\n    {self.request}"


@dataclass
class FuzzReport:
    operations: set[str] = field(default_factory=set)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    not_generated: list[str] = field(default_factory=list)  # operation/mode pairs with no case

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{len(self.operations)} operations, {self.requests} requests ({codes}), "
            f"{len(self.findings)} findings"
        )

    def distinct(self) -> list[Finding]:
        """One finding per operation, status and check (the first case kept)."""
        seen: dict[tuple[str, int, str], Finding] = {}
        for f in self.findings:
            seen.setdefault((f.operation, f.status, f.check), f)
        return list(seen.values())


def loop_sender(client: httpx2.AsyncClient, loop: asyncio.AbstractEventLoop) -> Send:
    """A blocking send (for Hypothesis's thread) that runs on the app's loop."""

    def send(method: str, url: str, headers: dict[str, str], body: bytes) -> httpx2.Response:
        coro = client.request(method, url, headers=headers, content=body)
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    return send


def prepared(case: Any, base_url: str, auth: dict[str, str]) -> requests.PreparedRequest:
    """The case as bytes on the wire (schemathesis's own serialisation), with our credentials."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    kwargs.pop("auth", None)
    kwargs.pop("cookies", None)
    headers = {k: v for k, v in (kwargs.pop("headers", None) or {}).items() if k.lower() != "authorization"}
    headers.update(auth)
    allowed = {"method", "url", "params", "json", "data", "files"}
    return requests.Request(headers=headers, **{k: v for k, v in kwargs.items() if k in allowed}).prepare()


def failure_name(failure: Failure) -> str:
    return type(failure).__name__


def fuzz(
    doc: dict[str, Any],
    send: Send,
    auth: dict[str, str],
    *,
    base_url: str,
    skip: Callable[[str], bool] = lambda label: False,
    examples: int = EXAMPLES,
    known: dict[str, str] | None = None,
) -> FuzzReport:
    """Every operation of ``doc`` (but those ``skip`` names), positive and negative data; and
    where every path parameter has a ``known`` value (real ids), positive data once more with
    those, so that bodies and queries are fuzzed against resources that exist."""
    schema = schemathesis.openapi.from_dict(doc)
    report = FuzzReport()
    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]
        if skip(op.label):
            continue
        report.operations.add(op.label)
        for mode in MODES:
            _fuzz_operation(op, mode, send, auth, base_url, examples, report)
        names = re.findall(r"{(\w+)}", op.path)
        if known and names and all(n in known for n in names):
            fixed = {n: known[n] for n in names}
            _fuzz_operation(op, GenerationMode.POSITIVE, send, auth, base_url, examples, report, fixed)
    return report


def _fuzz_operation(
    op: Any,
    mode: GenerationMode,
    send: Send,
    auth: dict[str, str],
    base_url: str,
    examples: int,
    report: FuzzReport,
    path_parameters: dict[str, str] | None = None,
) -> None:
    sent = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        nonlocal sent
        try:
            req = prepared(case, base_url, auth)
        except Exception:  # a negative case the wire cannot carry (e.g. a header with a newline)
            return
        body = req.body if isinstance(req.body, bytes) else (req.body or "").encode()
        line = f"{req.method} {req.url} {body[:300]!r}"
        try:
            response = send(req.method or "GET", req.url or "", dict(req.headers), body)
        except Exception as exc:  # the app raised through the ASGI boundary: worse than a 500
            report.requests += 1
            report.findings.append(Finding(op.label, 0, "transport", repr(exc)[:300], line))
            return
        sent += 1
        report.requests += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                report.findings.append(
                    Finding(
                        op.label,
                        response.status_code,
                        failure_name(failure),
                        failure.title + ": " + failure.message[:300],
                        line,
                    )
                )

    try:
        run()
    except Exception as exc:  # e.g. no negative data is possible for an operation without input
        report.not_generated.append(f"{op.label} ({mode.value}): {type(exc).__name__}")
    if sent == 0 and mode is GenerationMode.POSITIVE:
        report.not_generated.append(f"{op.label} ({mode.value}): nothing sent")
