"""The Prometheus metrics: the names, labels and values an operator scrapes, as the scrape shows them."""

from __future__ import annotations

import enum
import platform
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import discord
from aiohttp import web
from prometheus_client import generate_latest

from services.outside.metrics import Metrics, build_version


class Outcome(enum.Enum):
    DELIVERED = "delivered"


def retouch_families(scrape: str) -> str:
    """The scrape without the process collector's lines (this process's own figures) and the build info."""
    return "".join(
        line + "\n"
        for line in scrape.splitlines()
        if not line.startswith(("process_", "# HELP process_", "# TYPE process_")) and "retouch_build_info" not in line
    )


async def test_a_scrape_shows_every_family_with_its_help_buckets_labels_and_the_observed_values():
    metrics = Metrics()
    metrics.edit_finished(Outcome.DELIVERED, 3)
    metrics.edit_finished(Outcome.DELIVERED, 0)  # an edit that delivered nothing adds no image
    metrics.queue_waited(0.3)
    # Answered "before" it was created (a clock ahead): observed as 0, never negative.
    metrics.interaction_received(1, "button", time.time() + 3600)
    metrics.interaction_answered(1)
    metrics.interaction_answered(2)  # never received (or forgotten): nothing observed
    metrics.upstream_answered("/images/edits", 7)
    metrics.upstream_failed("timeout")
    metrics.upstream_images(4, 3)
    metrics.screened("input", "refused", 0.5)
    metrics.appeal("approved")
    metrics.watch_queue(lambda: 4)

    async def available() -> float:
        return -1.5

    metrics.watch_pacer(available)
    # A shard without a heartbeat yet (nan, inf) has no series rather than a meaningless value.
    metrics.watch_gateway(lambda: [(0, 0.125), (1, float("nan")), (2, float("inf"))])
    await metrics.refresh()
    scrape = generate_latest(metrics.registry).decode()
    assert retouch_families(scrape) == SCRAPE
    build = (
        f'retouch_build_info{{discord_py="{discord.__version__}",python="{platform.python_version()}",'
        f'version="{build_version()}"}} 1.0'
    )
    assert build in scrape.splitlines()
    assert "process_open_fds" in scrape


SCRAPE = """\
# HELP retouch_edits_total Edits finished, by outcome
# TYPE retouch_edits_total counter
retouch_edits_total{outcome="delivered"} 2.0
retouch_edits_total{outcome="partial"} 0.0
retouch_edits_total{outcome="refused_input"} 0.0
retouch_edits_total{outcome="refused_quota"} 0.0
retouch_edits_total{outcome="refused_queue"} 0.0
retouch_edits_total{outcome="refused_screening"} 0.0
retouch_edits_total{outcome="upstream_error"} 0.0
retouch_edits_total{outcome="discord_error"} 0.0
retouch_edits_total{outcome="cancelled"} 0.0
# HELP retouch_images_delivered_total Edited pictures posted to Discord
# TYPE retouch_images_delivered_total counter
retouch_images_delivered_total 3.0
# HELP retouch_upstream_request_duration_seconds Duration of each HTTP request to the Model Hub (every attempt), by endpoint
# TYPE retouch_upstream_request_duration_seconds histogram
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="0.25"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="0.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="1.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="2.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="5.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="10.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="20.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="30.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="60.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="120.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="180.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/models",le="+Inf"} 0.0
retouch_upstream_request_duration_seconds_count{endpoint="/models"} 0.0
retouch_upstream_request_duration_seconds_sum{endpoint="/models"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="0.25"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="0.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="1.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="2.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="5.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="10.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="20.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="30.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="60.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="120.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="180.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/images/edits",le="+Inf"} 1.0
retouch_upstream_request_duration_seconds_count{endpoint="/images/edits"} 1.0
retouch_upstream_request_duration_seconds_sum{endpoint="/images/edits"} 7.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="0.25"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="0.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="1.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="2.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="5.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="10.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="20.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="30.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="60.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="120.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="180.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{endpoint="/chat/completions",le="+Inf"} 0.0
retouch_upstream_request_duration_seconds_count{endpoint="/chat/completions"} 0.0
retouch_upstream_request_duration_seconds_sum{endpoint="/chat/completions"} 0.0
# HELP retouch_upstream_images_requested_total Images asked of the Model Hub by every edit request sent, retries included (each may be billed)
# TYPE retouch_upstream_images_requested_total counter
retouch_upstream_images_requested_total 4.0
# HELP retouch_upstream_images_returned_total Images the Model Hub's answers carried (compare with retouch_images_delivered)
# TYPE retouch_upstream_images_returned_total counter
retouch_upstream_images_returned_total 3.0
# HELP retouch_upstream_errors_total Failed Model Hub requests, by kind
# TYPE retouch_upstream_errors_total counter
retouch_upstream_errors_total{kind="rate_limited"} 0.0
retouch_upstream_errors_total{kind="unavailable"} 0.0
retouch_upstream_errors_total{kind="timeout"} 1.0
retouch_upstream_errors_total{kind="bad_request"} 0.0
retouch_upstream_errors_total{kind="content_policy"} 0.0
retouch_upstream_errors_total{kind="auth"} 0.0
retouch_upstream_errors_total{kind="malformed"} 0.0
# HELP retouch_queue_waiting Edits waiting for their turn
# TYPE retouch_queue_waiting gauge
retouch_queue_waiting 4.0
# HELP retouch_queue_wait_seconds Time from admission to the turn
# TYPE retouch_queue_wait_seconds histogram
retouch_queue_wait_seconds_bucket{le="0.1"} 0.0
retouch_queue_wait_seconds_bucket{le="0.5"} 1.0
retouch_queue_wait_seconds_bucket{le="1.0"} 1.0
retouch_queue_wait_seconds_bucket{le="2.5"} 1.0
retouch_queue_wait_seconds_bucket{le="5.0"} 1.0
retouch_queue_wait_seconds_bucket{le="10.0"} 1.0
retouch_queue_wait_seconds_bucket{le="30.0"} 1.0
retouch_queue_wait_seconds_bucket{le="60.0"} 1.0
retouch_queue_wait_seconds_bucket{le="120.0"} 1.0
retouch_queue_wait_seconds_bucket{le="300.0"} 1.0
retouch_queue_wait_seconds_bucket{le="600.0"} 1.0
retouch_queue_wait_seconds_bucket{le="+Inf"} 1.0
retouch_queue_wait_seconds_count 1.0
retouch_queue_wait_seconds_sum 0.3
# HELP retouch_interaction_ack_seconds Time from an interaction's creation to the bot's answer (reply, deferral, modal), by kind
# TYPE retouch_interaction_ack_seconds histogram
retouch_interaction_ack_seconds_bucket{kind="command",le="0.05"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="0.1"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="0.25"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="0.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="1.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="1.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="2.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="2.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="3.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="command",le="+Inf"} 0.0
retouch_interaction_ack_seconds_count{kind="command"} 0.0
retouch_interaction_ack_seconds_sum{kind="command"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="0.05"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="0.1"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="0.25"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="0.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="1.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="1.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="2.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="2.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="3.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="message_menu",le="+Inf"} 0.0
retouch_interaction_ack_seconds_count{kind="message_menu"} 0.0
retouch_interaction_ack_seconds_sum{kind="message_menu"} 0.0
retouch_interaction_ack_seconds_bucket{kind="button",le="0.05"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="0.1"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="0.25"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="0.5"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="1.0"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="1.5"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="2.0"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="2.5"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="3.0"} 1.0
retouch_interaction_ack_seconds_bucket{kind="button",le="+Inf"} 1.0
retouch_interaction_ack_seconds_count{kind="button"} 1.0
retouch_interaction_ack_seconds_sum{kind="button"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="0.05"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="0.1"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="0.25"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="0.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="1.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="1.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="2.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="2.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="3.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="select",le="+Inf"} 0.0
retouch_interaction_ack_seconds_count{kind="select"} 0.0
retouch_interaction_ack_seconds_sum{kind="select"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="0.05"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="0.1"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="0.25"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="0.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="1.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="1.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="2.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="2.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="3.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="modal",le="+Inf"} 0.0
retouch_interaction_ack_seconds_count{kind="modal"} 0.0
retouch_interaction_ack_seconds_sum{kind="modal"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="0.05"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="0.1"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="0.25"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="0.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="1.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="1.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="2.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="2.5"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="3.0"} 0.0
retouch_interaction_ack_seconds_bucket{kind="autocomplete",le="+Inf"} 0.0
retouch_interaction_ack_seconds_count{kind="autocomplete"} 0.0
retouch_interaction_ack_seconds_sum{kind="autocomplete"} 0.0
# HELP retouch_pacer_images_available Images the shared pacer could send now (negative: debt being waited out)
# TYPE retouch_pacer_images_available gauge
retouch_pacer_images_available -1.5
# HELP retouch_screenings_total Screening checks, by stage (input: the prompt and picture; result) and outcome
# TYPE retouch_screenings_total counter
retouch_screenings_total{outcome="allowed",stage="input"} 0.0
retouch_screenings_total{outcome="refused",stage="input"} 1.0
retouch_screenings_total{outcome="failed_open",stage="input"} 0.0
retouch_screenings_total{outcome="failed_closed",stage="input"} 0.0
retouch_screenings_total{outcome="allowed",stage="result"} 0.0
retouch_screenings_total{outcome="refused",stage="result"} 0.0
retouch_screenings_total{outcome="failed_open",stage="result"} 0.0
retouch_screenings_total{outcome="failed_closed",stage="result"} 0.0
# HELP retouch_screening_duration_seconds Duration of each screening check, its pacing wait included
# TYPE retouch_screening_duration_seconds histogram
retouch_screening_duration_seconds_bucket{le="0.1"} 0.0
retouch_screening_duration_seconds_bucket{le="0.25"} 0.0
retouch_screening_duration_seconds_bucket{le="0.5"} 1.0
retouch_screening_duration_seconds_bucket{le="1.0"} 1.0
retouch_screening_duration_seconds_bucket{le="2.0"} 1.0
retouch_screening_duration_seconds_bucket{le="3.0"} 1.0
retouch_screening_duration_seconds_bucket{le="5.0"} 1.0
retouch_screening_duration_seconds_bucket{le="10.0"} 1.0
retouch_screening_duration_seconds_bucket{le="20.0"} 1.0
retouch_screening_duration_seconds_bucket{le="30.0"} 1.0
retouch_screening_duration_seconds_bucket{le="+Inf"} 1.0
retouch_screening_duration_seconds_count 1.0
retouch_screening_duration_seconds_sum 0.5
# HELP retouch_appeals_total Appeals of screening refusals, by outcome
# TYPE retouch_appeals_total counter
retouch_appeals_total{outcome="appealed"} 0.0
retouch_appeals_total{outcome="approved"} 1.0
retouch_appeals_total{outcome="denied"} 0.0
retouch_appeals_total{outcome="no_audit_channel"} 0.0
# HELP retouch_gateway_latency_seconds Heartbeat round trip of each gateway shard
# TYPE retouch_gateway_latency_seconds gauge
retouch_gateway_latency_seconds{shard="0"} 0.125
"""  # noqa: E501 (the scrape's own HELP lines)


@asynccontextmanager
async def discord_stand_in() -> AsyncIterator[str]:
    """A server on 127.0.0.1 that answers every request with the status its `status` query asks (204 by default);
    yields its base URL."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=int(request.query.get("status", "204")))

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/api/v10"
    finally:
        await runner.cleanup()


def button_acks(metrics: Metrics) -> list[str]:
    """The scrape's lines of the acknowledgement histogram for buttons."""
    return [
        line
        for line in generate_latest(metrics.registry).decode().splitlines()
        if line.startswith("retouch_interaction_ack_seconds") and 'kind="button"' in line
    ]


def acks_observed(count: int) -> list[str]:
    """Those lines once `count` button interactions were answered, each observed at 0 s (created "later")."""
    buckets = ("0.05", "0.1", "0.25", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "+Inf")
    return [
        *(f'retouch_interaction_ack_seconds_bucket{{kind="button",le="{le}"}} {count}.0' for le in buckets),
        f'retouch_interaction_ack_seconds_count{{kind="button"}} {count}.0',
        'retouch_interaction_ack_seconds_sum{kind="button"} 0.0',
    ]


async def test_the_discord_trace_counts_an_answer_when_its_callback_post_is_accepted() -> None:
    metrics = Metrics()
    for interaction_id in range(101, 110):
        # Created an hour "after" now (a clock ahead): each answer is observed as 0 s, so the scrape is exact.
        metrics.interaction_received(interaction_id, "button", time.time() + 3600)
    async with discord_stand_in() as api, aiohttp.ClientSession(trace_configs=[metrics.discord_trace()]) as session:

        async def request(method: str, path: str, status: int = 204) -> None:
            async with session.request(method, f"{api}{path}", params={"status": str(status)}) as response:
                assert response.status == status

        await request("POST", "/interactions/101/token/callback")
        assert button_acks(metrics) == acks_observed(1)
        await request("POST", "/interactions/102/token/callback", 299)  # the last status that is a success
        assert button_acks(metrics) == acks_observed(2)
        # Refused or not a success: the interaction is still waiting for its answer.
        await request("POST", "/interactions/103/token/callback", 300)
        await request("POST", "/interactions/104/token/callback", 400)
        # Not an answer: a read of the route, a longer route, another route, another interaction's callback.
        await request("GET", "/interactions/105/token/callback", 200)
        await request("POST", "/interactions/106/token/callback/more")
        await request("POST", "/channels/107/messages", 200)
        await request("POST", "/interactions/999/token/callback")
        assert button_acks(metrics) == acks_observed(2)
        # Each of them is answered once its own callback is accepted.
        for interaction_id in range(103, 108):
            await request("POST", f"/interactions/{interaction_id}/token/callback")
        assert button_acks(metrics) == acks_observed(7)
        await request("POST", "/interactions/101/token/callback")  # answered already: not observed twice
        assert button_acks(metrics) == acks_observed(7)
