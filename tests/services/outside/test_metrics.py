"""The Prometheus metrics: the names, labels and values an operator scrapes, as the scrape shows them."""

from __future__ import annotations

import enum

from prometheus_client import generate_latest

from services.outside.metrics import Metrics


class Outcome(enum.Enum):
    DELIVERED = "delivered"


async def test_a_scrape_shows_every_family_with_its_help_buckets_labels_and_the_observed_values():
    metrics = Metrics()
    metrics.edit_finished(Outcome.DELIVERED, 3)
    metrics.edit_finished(Outcome.DELIVERED, 0)  # an edit that delivered nothing adds no image
    metrics.queue_waited(0.3)
    metrics.interaction_acknowledged(1.2)
    metrics.upstream_answered(7)
    metrics.upstream_failed("timeout")
    metrics.watch_queue(lambda: 4)

    async def available() -> float:
        return -1.5

    metrics.watch_pacer(available)
    # A shard without a heartbeat yet (nan, inf) has no series rather than a meaningless value.
    metrics.watch_gateway(lambda: [(0, 0.125), (1, float("nan")), (2, float("inf"))])
    await metrics.refresh()
    assert generate_latest(metrics.registry).decode() == SCRAPE


SCRAPE = """\
# HELP retouch_edits_total Edits finished, by outcome
# TYPE retouch_edits_total counter
retouch_edits_total{outcome="delivered"} 2.0
retouch_edits_total{outcome="partial"} 0.0
retouch_edits_total{outcome="refused_input"} 0.0
retouch_edits_total{outcome="refused_quota"} 0.0
retouch_edits_total{outcome="refused_queue"} 0.0
retouch_edits_total{outcome="upstream_error"} 0.0
retouch_edits_total{outcome="discord_error"} 0.0
retouch_edits_total{outcome="cancelled"} 0.0
# HELP retouch_images_delivered_total Edited pictures posted to Discord
# TYPE retouch_images_delivered_total counter
retouch_images_delivered_total 3.0
# HELP retouch_upstream_request_duration_seconds Duration of each HTTP request to the Model Hub (every attempt)
# TYPE retouch_upstream_request_duration_seconds histogram
retouch_upstream_request_duration_seconds_bucket{le="0.25"} 0.0
retouch_upstream_request_duration_seconds_bucket{le="0.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{le="1.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{le="2.5"} 0.0
retouch_upstream_request_duration_seconds_bucket{le="5.0"} 0.0
retouch_upstream_request_duration_seconds_bucket{le="10.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{le="20.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{le="30.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{le="60.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{le="120.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{le="180.0"} 1.0
retouch_upstream_request_duration_seconds_bucket{le="+Inf"} 1.0
retouch_upstream_request_duration_seconds_count 1.0
retouch_upstream_request_duration_seconds_sum 7.0
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
# HELP retouch_interaction_ack_seconds Time from an interaction's creation to its acknowledgement
# TYPE retouch_interaction_ack_seconds histogram
retouch_interaction_ack_seconds_bucket{le="0.05"} 0.0
retouch_interaction_ack_seconds_bucket{le="0.1"} 0.0
retouch_interaction_ack_seconds_bucket{le="0.25"} 0.0
retouch_interaction_ack_seconds_bucket{le="0.5"} 0.0
retouch_interaction_ack_seconds_bucket{le="1.0"} 0.0
retouch_interaction_ack_seconds_bucket{le="1.5"} 1.0
retouch_interaction_ack_seconds_bucket{le="2.0"} 1.0
retouch_interaction_ack_seconds_bucket{le="2.5"} 1.0
retouch_interaction_ack_seconds_bucket{le="3.0"} 1.0
retouch_interaction_ack_seconds_bucket{le="+Inf"} 1.0
retouch_interaction_ack_seconds_count 1.0
retouch_interaction_ack_seconds_sum 1.2
# HELP retouch_pacer_images_available Images the shared pacer could send now (negative: debt being waited out)
# TYPE retouch_pacer_images_available gauge
retouch_pacer_images_available -1.5
# HELP retouch_gateway_latency_seconds Heartbeat round trip of each gateway shard
# TYPE retouch_gateway_latency_seconds gauge
retouch_gateway_latency_seconds{shard="0"} 0.125
"""
