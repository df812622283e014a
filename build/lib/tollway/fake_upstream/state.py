"""Server-side state: recorded requests, counters, ``fail_first`` bookkeeping."""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from aiohttp import web

from tollway.fake_upstream.config import FakeConfig
from tollway.fake_upstream.scenario import Scenario, default_scenario


class FakeState:
    """Everything a fake upstream instance remembers between requests."""

    __slots__ = (
        "_fail_counts",
        "_ids",
        "config",
        "default_scenario",
        "recorded",
        "requests",
        "streams_aborted_by_client",
        "streams_completed",
        "streams_cut",
        "streams_started",
    )

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.default_scenario: Scenario = default_scenario(config)
        self.recorded: deque[dict[str, Any]] = deque(maxlen=max(1, config.record_limit))
        self._fail_counts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.requests = 0
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_aborted_by_client = 0
        self.streams_cut = 0

    def next_id(self) -> int:
        return next(self._ids)

    def record(self, request: web.Request, body: Any) -> None:
        """Count the request and, unless recording is off, remember it."""
        self.requests += 1
        if self.config.record:
            self.recorded.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "headers": dict(request.headers),
                    "body": body,
                }
            )

    def failure_status(self, scenario: Scenario) -> int | None:
        """HTTP status this request must fail with (``fail_first`` first, then ``status``)."""
        ff = scenario.fail_first
        if ff is not None:
            seen = self._fail_counts.get(ff.key, 0)
            self._fail_counts[ff.key] = seen + 1
            if seen < ff.times:
                return ff.status
        status = scenario.status
        if status is not None and status != 200:
            return status
        return None

    def reset(self) -> None:
        self.recorded.clear()
        self._fail_counts.clear()
        self.requests = 0
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_aborted_by_client = 0
        self.streams_cut = 0

    def stats(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "streams_started": self.streams_started,
            "streams_completed": self.streams_completed,
            "streams_aborted_by_client": self.streams_aborted_by_client,
            "streams_cut": self.streams_cut,
        }
