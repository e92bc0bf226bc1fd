"""Prometheus metrics: what the edit use case, the Model Hub client and the live objects report.

Labels are bounded enums only (outcome, error kind, shard number): never a server, channel or user id,
which would make unbounded series and leak who uses the bot.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Iterator
from enum import Enum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.domain.pacing import ImagePacer

OUTCOMES = (
    "delivered",
    "partial",
    "refused_input",
    "refused_quota",
    "refused_queue",
    "upstream_error",
    "discord_error",
    "cancelled",
)
# `*_created` series double what is scraped and say nothing a process start time does not.
disable_created_metrics()

UPSTREAM_ERROR_KINDS = ("rate_limited", "unavailable", "timeout", "bad_request", "content_policy", "auth", "malformed")
# An edit takes seconds to minutes; an acknowledgement must come within Discord's 3 s.
_UPSTREAM_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180)
_WAIT_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_ACK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3)


class _GatewayLatency(Collector):
    """`retouch_gateway_latency_seconds{shard}`, read from the client at each scrape."""

    def __init__(self, latencies: Callable[[], Iterable[tuple[int, float]]]) -> None:
        self._latencies = latencies

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "retouch_gateway_latency_seconds", "Heartbeat round trip of each gateway shard", labels=["shard"]
        )
        for shard, latency in self._latencies():
            if math.isfinite(latency):  # nan/inf: the shard has no heartbeat yet
                family.add_metric([str(shard)], latency)
        yield family


class Metrics:
    """The bot's metric families in their own registry, and the observer methods that feed them.

    Implements the edit use case's observer (`edit_finished`, `queue_waited`, `interaction_acknowledged`)
    and the Model Hub client's (`upstream_answered`, `upstream_failed`).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.edits = Counter("retouch_edits", "Edits finished, by outcome", ["outcome"], registry=self.registry)
        self.images_delivered = Counter(
            "retouch_images_delivered", "Edited pictures posted to Discord", registry=self.registry
        )
        self.upstream_duration = Histogram(
            "retouch_upstream_request_duration_seconds",
            "Duration of each HTTP request to the Model Hub (every attempt)",
            buckets=_UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "retouch_upstream_errors", "Failed Model Hub requests, by kind", ["kind"], registry=self.registry
        )
        self.queue_waiting = Gauge("retouch_queue_waiting", "Edits waiting for their turn", registry=self.registry)
        self.queue_wait = Histogram(
            "retouch_queue_wait_seconds",
            "Time from admission to the turn",
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.interaction_ack = Histogram(
            "retouch_interaction_ack_seconds",
            "Time from an interaction's creation to its acknowledgement",
            buckets=_ACK_BUCKETS,
            registry=self.registry,
        )
        self.pacer_available = Gauge(
            "retouch_pacer_images_available",
            "Images the shared pacer could send now (negative: debt being waited out)",
            registry=self.registry,
        )
        # Every label value exists from the start, so rate() and dashboards see zeros rather than gaps.
        for outcome in OUTCOMES:
            self.edits.labels(outcome)
        for kind in UPSTREAM_ERROR_KINDS:
            self.upstream_errors.labels(kind)
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []

    # -------------------------------------------------------------- the edit use case's observer

    def edit_finished(self, outcome: Enum, delivered: int) -> None:
        self.edits.labels(str(outcome.value)).inc()
        if delivered:
            self.images_delivered.inc(delivered)

    def queue_waited(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)

    def interaction_acknowledged(self, seconds: float) -> None:
        self.interaction_ack.observe(seconds)

    # -------------------------------------------------------------- the Model Hub client's observer

    def upstream_answered(self, seconds: float) -> None:
        self.upstream_duration.observe(seconds)

    def upstream_failed(self, kind: str) -> None:
        self.upstream_errors.labels(kind).inc()

    # -------------------------------------------------------------- live state, read at scrape time

    def watch_queue(self, waiting: Callable[[], int]) -> None:
        self.queue_waiting.set_function(waiting)

    def watch_pacer(self, available: Callable[[], Awaitable[float]]) -> None:
        """The pacer's bucket may live in the database: read it (asynchronously) before each scrape."""

        async def refresh() -> None:
            self.pacer_available.set(await available())

        self._before_scrape.append(refresh)

    def watch_gateway(self, latencies: Callable[[], Iterable[tuple[int, float]]]) -> None:
        self.registry.register(_GatewayLatency(latencies))

    async def refresh(self) -> None:
        """Bring the values that need I/O up to date; the web server calls it before rendering."""
        for refresh in self._before_scrape:
            await refresh()


async def pacer_images_available(pacer: ImagePacer) -> float:
    """The pacer's tokens now (negative: debt), read without spending any."""
    # ImagePacer offers no public reading of its bucket (services/domain/pacing.py is another module's): this
    # refills the stored state to now exactly as `reserve()` does before taking.
    now = pacer._clock()
    state = pacer._fresh(await pacer._store.read(), now)
    return pacer.rule.refill(state, now).tokens
