"""Prometheus metrics: what the edit use case, the Model Hub client and the live objects report.

Labels are bounded enums only (outcome, error kind, shard number): never a server, channel or user id,
which would make unbounded series and leak who uses the bot.
"""

from __future__ import annotations

import math
import platform
import re
import time
import tomllib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from enum import Enum
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.domain.pacing import ImagePacer
from services.domain.screening import OUTCOMES as SCREENING_OUTCOMES
from services.domain.screening import STAGES as SCREENING_STAGES

OUTCOMES = (
    "delivered",
    "partial",
    "refused_input",
    "refused_quota",
    "refused_queue",
    "refused_screening",
    "upstream_error",
    "discord_error",
    "cancelled",
)
# `*_created` series double what is scraped and say nothing a process start time does not.
disable_created_metrics()

# What Discord's interaction names (`retouch_interaction_ack_seconds{kind}`): a slash command, a message menu
# (Remix image, Edit region), a button, a select menu, a modal's submission, an autocomplete request.
INTERACTION_KINDS = ("command", "message_menu", "button", "select", "modal", "autocomplete")
UNKNOWN_KIND = "unknown"
# The Model Hub endpoints the client calls (`retouch_upstream_request_duration_seconds{endpoint}`).
UPSTREAM_ENDPOINTS = ("/models", "/images/edits", "/chat/completions")
# Discord's route for answering an interaction; its id tells which one (the token is never read).
_CALLBACK_PATH = re.compile(r"/interactions/(?P<id>[0-9]+)/[^/]+/callback$")
# Interactions received and not answered yet; a bound, since one that is never answered would stay forever.
_PENDING_LIMIT = 10_000
UPSTREAM_ERROR_KINDS = ("rate_limited", "unavailable", "timeout", "bad_request", "content_policy", "auth", "malformed")
# An edit takes seconds to minutes; an acknowledgement must come within Discord's 3 s.
_UPSTREAM_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180)
_WAIT_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_ACK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3)
# A screening check is one chat completion with a small picture: a second or two, its timeout 20 s.
_SCREENING_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30)
APPEAL_OUTCOMES = ("appealed", "approved", "denied", "no_audit_channel")


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


def build_version() -> str:
    """Retouch's version: the installed package's (the image), else pyproject.toml's (a checkout)."""
    try:
        return metadata.version("retouch")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text("utf-8"))["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The bot's metric families in their own registry, and the observer methods that feed them.

    Implements the edit use case's observer (`edit_finished`, `queue_waited`) and the Model Hub client's
    (`upstream_answered`, `upstream_failed`, `upstream_images`); `discord_trace()` watches the bot's answers to
    interactions.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.edits = Counter("retouch_edits", "Edits finished, by outcome", ["outcome"], registry=self.registry)
        self.images_delivered = Counter(
            "retouch_images_delivered", "Edited pictures posted to Discord", registry=self.registry
        )
        self.upstream_duration = Histogram(
            "retouch_upstream_request_duration_seconds",
            "Duration of each HTTP request to the Model Hub (every attempt), by endpoint",
            ["endpoint"],
            buckets=_UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.upstream_images_requested = Counter(
            "retouch_upstream_images_requested",
            "Images asked of the Model Hub by every edit request sent, retries included (each may be billed)",
            registry=self.registry,
        )
        self.upstream_images_returned = Counter(
            "retouch_upstream_images_returned",
            "Images the Model Hub's answers carried (compare with retouch_images_delivered)",
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
            "Time from an interaction's creation to the bot's answer (reply, deferral, modal), by kind",
            ["kind"],
            buckets=_ACK_BUCKETS,
            registry=self.registry,
        )
        self.pacer_available = Gauge(
            "retouch_pacer_images_available",
            "Images the shared pacer could send now (negative: debt being waited out)",
            registry=self.registry,
        )
        self.screenings = Counter(
            "retouch_screenings",
            "Screening checks, by stage (input: the prompt and picture; result) and outcome",
            ["stage", "outcome"],
            registry=self.registry,
        )
        self.screening_duration = Histogram(
            "retouch_screening_duration_seconds",
            "Duration of each screening check, its pacing wait included",
            buckets=_SCREENING_BUCKETS,
            registry=self.registry,
        )
        self.appeals = Counter(
            "retouch_appeals", "Appeals of screening refusals, by outcome", ["outcome"], registry=self.registry
        )
        self.build_info = Gauge(
            "retouch_build_info",
            "Always 1; the labels say what runs",
            ["version", "python", "discord_py"],
            registry=self.registry,
        )
        self.build_info.labels(build_version(), platform.python_version(), _library_version("discord.py")).set(1)
        # process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds, process_open_fds…
        ProcessCollector(registry=self.registry)
        # Every label value exists from the start, so rate() and dashboards see zeros rather than gaps.
        for outcome in OUTCOMES:
            self.edits.labels(outcome)
        for kind in UPSTREAM_ERROR_KINDS:
            self.upstream_errors.labels(kind)
        for stage in SCREENING_STAGES:
            for screening_outcome in SCREENING_OUTCOMES:
                self.screenings.labels(stage, screening_outcome)
        for appeal in APPEAL_OUTCOMES:
            self.appeals.labels(appeal)
        for endpoint in UPSTREAM_ENDPOINTS:
            self.upstream_duration.labels(endpoint)
        for kind in INTERACTION_KINDS:
            self.interaction_ack.labels(kind)
        self._pending: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []

    # -------------------------------------------------------------- the edit use case's observer

    def edit_finished(self, outcome: Enum, delivered: int) -> None:
        self.edits.labels(str(outcome.value)).inc()
        if delivered:
            self.images_delivered.inc(delivered)

    def queue_waited(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)

    # -------------------------------------------------------------- interactions and their answers

    def interaction_received(self, interaction_id: int, kind: str, created_at: float) -> None:
        """An interaction arrived: `kind` (one of INTERACTION_KINDS), `created_at` Discord's time (epoch seconds)."""
        self._pending[interaction_id] = (kind if kind in INTERACTION_KINDS else UNKNOWN_KIND, created_at)
        while len(self._pending) > _PENDING_LIMIT:
            self._pending.popitem(last=False)

    def interaction_answered(self, interaction_id: int) -> None:
        """Discord accepted the answer to an interaction: observe how long after its creation."""
        pending = self._pending.pop(interaction_id, None)
        if pending is not None:
            kind, created_at = pending
            self.interaction_ack.labels(kind).observe(max(time.time() - created_at, 0.0))

    def discord_trace(self) -> aiohttp.TraceConfig:
        """For the bot's HTTP session (discord.py's `http_trace`): every interaction answer Discord accepts.

        Every answer (a reply, a deferral, a modal, an update of a message, autocomplete choices) is one POST
        to the interaction's callback route, whichever cog or library layer sends it, so this one place sees
        them all and no cog can forget to count.
        """

        async def on_request_end(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            if params.method != "POST" or params.response.status >= 300:
                return
            match = _CALLBACK_PATH.search(params.url.path)
            if match is not None:
                self.interaction_answered(int(match["id"]))

        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(on_request_end)
        return trace

    # -------------------------------------------------------------- screening and appeals

    def screened(self, stage: str, outcome: str, seconds: float) -> None:
        self.screenings.labels(stage, outcome).inc()
        self.screening_duration.observe(seconds)

    def appeal(self, outcome: str) -> None:
        self.appeals.labels(outcome).inc()

    # -------------------------------------------------------------- the Model Hub client's observer

    def upstream_answered(self, endpoint: str, seconds: float) -> None:
        self.upstream_duration.labels(endpoint).observe(seconds)

    def upstream_failed(self, kind: str) -> None:
        self.upstream_errors.labels(kind).inc()

    def upstream_images(self, requested: int, returned: int) -> None:
        self.upstream_images_requested.inc(requested)
        self.upstream_images_returned.inc(returned)

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
