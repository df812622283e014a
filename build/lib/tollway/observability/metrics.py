"""Prometheus metrics, one registry per app (no module-level collectors, so two apps in one
process — tests — never share or collide).

Money counters are exported in nano-credits as integers-in-floats: Prometheus stores float64,
exact up to 2**53 nano (about 9 million credits) per series, which is far beyond any scrape
interval's increment; the ledger, not this, is the record of money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tollway_requests",
            "Calls answered by the data plane",
            ["surface", "model", "group", "status"],
            registry=r,
        )
        self.errors = Counter(
            "tollway_errors", "Errors by kind (error code)", ["surface", "code"], registry=r
        )
        self.latency = Histogram(
            "tollway_request_seconds",
            "Time from request to the last byte",
            ["surface", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "tollway_time_to_first_token_seconds",
            "Time from request to the first upstream byte",
            ["surface"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "tollway_tokens", "Tokens billed by category", ["model", "group", "category"], registry=r
        )
        self.credits = Counter(
            "tollway_deducted_nano_credits",
            "Nano-credits deducted from customers",
            ["model", "group"],
            registry=r,
        )
        self.channel_state = Gauge(
            "tollway_channel_state",
            "1 for the state a channel credential is in",
            ["channel", "state"],
            registry=r,
        )
        self.channel_transitions = Counter(
            "tollway_channel_transitions", "Circuit-breaker transitions", ["channel", "to"], registry=r
        )
        self.upstream_attempts = Counter(
            "tollway_upstream_attempts", "Upstream attempts by outcome", ["channel", "outcome"], registry=r
        )

    def watch(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Export a value read at scrape time (holds in flight, settlement queue depth...)."""
        self.registry.register(_Reading(name, help_text, read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Reading(Collector):
    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._name = name
        self._help = help_text
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._help, value=float(self._read()))

    def describe(self) -> list[Metric]:
        return []
