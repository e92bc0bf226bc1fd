"""The operator's HTTP endpoint, sharding and start-up without a network: the real bot over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
from collections.abc import AsyncIterator

import aiohttp
import discord.gateway
import discord.http
import pytest
import yarl
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import bot as bot_module
from emulators.discord import DiscordEmulator, shard_of
from emulators.modelhub import Fault, ModelHubEmulator
from services.domain.editing import EditObserver
from services.domain.pacing import open_pacer
from services.outside.metrics import OUTCOMES, UPSTREAM_ERROR_KINDS, Metrics, pacer_images_available
from services.outside.web import WebServer, WebServerError
from services.storage.database import open_database
from tests.harness import make_config, running_bot
from tests.helpers import Clock, until
from tests.images import png_bytes
from tests.ports import free_port
from tests.stack import loopback_stack

# The families issue 10 names, with the type each must have.
FAMILIES = {
    "retouch_edits": "counter",
    "retouch_images_delivered": "counter",
    "retouch_upstream_request_duration_seconds": "histogram",
    "retouch_upstream_errors": "counter",
    "retouch_queue_waiting": "gauge",
    "retouch_queue_wait_seconds": "histogram",
    "retouch_interaction_ack_seconds": "histogram",
    "retouch_pacer_images_available": "gauge",
    "retouch_gateway_latency_seconds": "gauge",
}


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def scrape(port: int) -> dict[str, dict]:
    """family name → {"type", "samples": {(sample name, sorted labels): value}}, parsed by prometheus-client."""
    status, text = await get(port, "/metrics")
    assert status == 200
    return {
        family.name: {
            "type": family.type,
            "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples},
        }
        for family in text_string_to_metric_families(text)
    }


def sample(families: dict[str, dict], family: str, name: str, **labels: str) -> float:
    return families[family]["samples"][(name, tuple(sorted(labels.items())))]


async def test_metrics_export_every_family_and_move_with_upstream_calls(tmp_path):
    port = free_port()
    async with loopback_stack(tmp_path, http_port=port) as stack:
        before = await scrape(port)
        assert {name: before[name]["type"] for name in FAMILIES} == FAMILIES
        for outcome in OUTCOMES:
            assert sample(before, "retouch_edits", "retouch_edits_total", outcome=outcome) == 0
        for kind in UPSTREAM_ERROR_KINDS:
            assert sample(before, "retouch_upstream_errors", "retouch_upstream_errors_total", kind=kind) == 0
        assert sample(before, "retouch_queue_waiting", "retouch_queue_waiting") == 0
        assert sample(before, "retouch_pacer_images_available", "retouch_pacer_images_available") == 20  # the burst
        [(key, latency)] = before["retouch_gateway_latency_seconds"]["samples"].items()
        # A connected shard reports the heartbeat's measured round trip (never the unmeasured infinity).
        assert key == ("retouch_gateway_latency_seconds", (("shard", "0"),)) and 0 < latency < math.inf

        stack.hub.inject(Fault(status=503, body={"detail": "maintenance"}))
        image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
        record = await stack.discord.slash("edit", {"image": image, "prompt": "make it blue"})
        await record.wait_for(lambda r: any("Done" in text for text in r.texts()), timeout=20)

        after = await scrape(port)
        duration = "retouch_upstream_request_duration_seconds"
        # The model list (asked once, for the model check), the 503 and the retry that answered.
        assert sample(after, duration, f"{duration}_count") == 3
        assert sample(after, "retouch_upstream_errors", "retouch_upstream_errors_total", kind="unavailable") == 1
        assert sample(after, "retouch_upstream_errors", "retouch_upstream_errors_total", kind="timeout") == 0
        assert sample(after, "retouch_pacer_images_available", "retouch_pacer_images_available") < 20
        # The edit itself, as the use case and the cog report it: delivered, one picture, acknowledged once.
        assert sample(after, "retouch_edits", "retouch_edits_total", outcome="delivered") == 1
        assert sample(after, "retouch_edits", "retouch_edits_total", outcome="upstream_error") == 0
        assert sample(after, "retouch_images_delivered", "retouch_images_delivered_total") == 1
        assert sample(after, "retouch_interaction_ack_seconds", "retouch_interaction_ack_seconds_count") == 1
        assert sample(after, "retouch_queue_wait_seconds", "retouch_queue_wait_seconds_count") == 1

        refused = await stack.discord.slash("edit", {"image": image, "prompt": "x", "size": "abc"})
        await refused.wait_response()

        async def counted() -> bool:
            return sample(await scrape(port), "retouch_edits", "retouch_edits_total", outcome="refused_input") == 1

        await until(counted, 10, "the refusal to be counted")
        again = await scrape(port)
        labels = {
            key for family in again.values() for _, sample_labels in family["samples"] for key, _ in sample_labels
        }
        # Never a server, channel or user id; `stage` is a screening check's (input or result).
        assert labels <= {"outcome", "kind", "shard", "stage", "le"}


def test_gateway_latency_is_one_series_per_shard_with_a_heartbeat():
    metrics = Metrics()
    metrics.watch_gateway(lambda: [(0, 0.125), (1, float("inf")), (3, 0.5)])
    text = generate_latest(metrics.registry).decode()
    assert 'retouch_gateway_latency_seconds{shard="0"} 0.125' in text
    assert 'retouch_gateway_latency_seconds{shard="3"} 0.5' in text
    assert 'shard="1"' not in text


async def test_healthz_answers_while_readyz_waits_for_discord_then_turns_ready(tmp_path):
    """Start-up with Discord unreachable: one line per try, no traceback, and the bot connects once it is up."""
    port, discord_port = free_port(), free_port()
    async with DiscordEmulator() as emulator, ModelHubEmulator() as hub:
        config = make_config(emulator, hub, f"sqlite:///{tmp_path / 'r.db'}", http_port=port)
        saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"http://127.0.0.1:{discord_port}/api/v10"  # nothing listens there yet
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emulator.gateway_url)
        records: list = []
        handler = _Records(records)
        bot_module.log.addHandler(handler)
        try:
            started: asyncio.Future = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(bot_module.main(config, on_started=started.set_result))
            bot = await asyncio.wait_for(started, 10)
            await until(lambda: any("Cannot reach Discord" in r.getMessage() for r in records), 10, "the warning")
            [line] = [r for r in records if "Cannot reach Discord" in r.getMessage()]
            assert (
                line.getMessage()
                == f"Cannot reach Discord at 127.0.0.1:{discord_port} (connection refused); retrying in 1 s"
            )
            assert line.exc_info is None
            assert await get(port, "/healthz") == (200, '{"status": "ok"}')
            status, body = await get(port, "/readyz")
            assert (status, body) == (
                503,
                '{"status": "not ready", "reasons": {"gateway": "not connected to Discord yet"}}',
            )

            async with _forward(discord_port, emulator.rest_base):  # Discord comes up
                await until(bot.is_ready, 20, "the bot to be ready")
                assert await get(port, "/readyz") == (200, '{"status": "ready"}')
                assert bot.get_guild(emulator.guild_id) is not None
        finally:
            if started.done():
                await started.result().close()
            await asyncio.wait_for(task, 10)
            bot_module.log.removeHandler(handler)
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
    assert not any(r.exc_info for r in records)
    # The endpoint goes with the process.
    with contextlib.suppress(aiohttp.ClientConnectorError):
        await get(port, "/healthz")
        raise AssertionError("the HTTP endpoint outlived main()")


async def test_two_shards_in_one_process_both_identify_and_readiness_covers_both(tmp_path):
    port = free_port()
    async with DiscordEmulator() as emulator, ModelHubEmulator() as hub:
        config = make_config(emulator, hub, f"sqlite:///{tmp_path / 'r.db'}", http_port=port, shard_count=2)
        with emulator.patch_discord():
            async with running_bot(config, emulator) as bot:
                await until(bot.is_ready, 20, "the bot to be ready")
                assert emulator.identify_count == 2
                assert sorted(bot.shards) == [0, 1]
                assert await get(port, "/readyz") == (200, '{"status": "ready"}')
                # A shard that drops is no longer ready.
                await bot.shards[1].disconnect()
                status, body = await get(port, "/readyz")
                assert (status, body) == (
                    503,
                    '{"status": "not ready", "reasons": {"gateway": "shard(s) 1 not connected"}}',
                )


async def test_shard_ids_limit_the_process_to_its_own_shards(tmp_path):
    async with DiscordEmulator() as emulator, ModelHubEmulator() as hub:
        owned = shard_of(emulator.guild_id, 2)
        # Snowflakes grow with time, so a few more guilds are enough to land one on the other shard.
        other = next(g for g in (emulator.add_guild() for _ in range(64)) if shard_of(g.id, 2) != owned)
        config = make_config(emulator, hub, f"sqlite:///{tmp_path / 'r.db'}", shard_count=2, shard_ids=(owned,))
        with emulator.patch_discord():
            async with running_bot(config, emulator) as bot:
                assert emulator.identify_count == 1
                assert list(bot.shards) == [owned] and bot.shard_count == 2
                # Discord sends a shard only its own guilds: the other shard's process serves that one.
                assert bot.get_guild(other.id) is None


class _Records(logging.Handler):
    """Keeps the records themselves, to see whether a traceback came with them."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def _forward(port: int, target_base: str) -> AsyncIterator[None]:
    """A TCP forwarder on `port` to the emulator: the emulator picks its own port, the bot was told this one."""
    target = yarl.URL(target_base)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(target.host, target.port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(connected, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_pacer_gauge_reads_the_bucket_without_spending_on_both_backends(database_url):
    async with open_database(database_url) as database:
        clock = Clock()
        pacer = open_pacer(database, images_per_minute=6, burst=20, clock=clock)
        metrics = Metrics()
        metrics.watch_pacer(lambda: pacer_images_available(pacer))
        await metrics.refresh()
        await metrics.refresh()  # reading twice spends nothing
        assert metrics.pacer_available._value.get() == 20
        await pacer.reserve(25)  # five images of debt
        await metrics.refresh()
        assert metrics.pacer_available._value.get() == -5
        clock.now += 2
        await metrics.refresh()
        assert metrics.pacer_available._value.get() == pytest.approx(-4.8)  # refilled by 0.1 image a second


class Outcome(enum.StrEnum):
    """The shape of the edit use case's outcome enum (services/domain/editing.py)."""

    DELIVERED = "delivered"
    PARTIAL = "partial"
    REFUSED_QUOTA = "refused_quota"


def test_the_edit_observer_counts_outcomes_images_and_waits():
    metrics = Metrics()
    observer: EditObserver = metrics
    observer.edit_finished(Outcome.DELIVERED, delivered=4)
    observer.edit_finished(Outcome.PARTIAL, delivered=1)
    observer.edit_finished(Outcome.REFUSED_QUOTA, delivered=0)
    observer.edit_finished(Outcome.DELIVERED, delivered=2)
    observer.queue_waited(0.7)
    observer.interaction_acknowledged(0.2)
    observer.interaction_acknowledged(2.9)
    families = {
        (s.name, tuple(s.labels.items())): s.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
    }
    assert families[("retouch_edits_total", (("outcome", "delivered"),))] == 2
    assert families[("retouch_edits_total", (("outcome", "partial"),))] == 1
    assert families[("retouch_edits_total", (("outcome", "refused_quota"),))] == 1
    assert families[("retouch_edits_total", (("outcome", "cancelled"),))] == 0
    assert families[("retouch_images_delivered_total", ())] == 7
    assert families[("retouch_queue_wait_seconds_count", ())] == 1
    assert families[("retouch_queue_wait_seconds_bucket", (("le", "1.0"),))] == 1
    assert families[("retouch_queue_wait_seconds_bucket", (("le", "0.5"),))] == 0
    assert families[("retouch_interaction_ack_seconds_count", ())] == 2
    assert families[("retouch_interaction_ack_seconds_bucket", (("le", "2.5"),))] == 1


async def test_the_server_answers_health_readiness_and_metrics_until_it_is_closed():
    metrics = Metrics()
    metrics.watch_queue(lambda: 3)

    async def fine() -> str | None:
        return None

    server = WebServer(metrics, {"database": fine})
    await server.start("127.0.0.1", 0)  # any free port; the server says which
    port = server.port
    assert port
    try:
        async with aiohttp.ClientSession() as session:
            for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert (response.status, response.content_type, await response.json()) == (
                        200,
                        "application/json",
                        body,
                    )
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
                text = await response.text()
        assert "retouch_queue_waiting 3.0" in text.splitlines()  # refreshed for the scrape
        with pytest.raises(WebServerError) as caught:
            await WebServer(Metrics(), {}).start("127.0.0.1", port)
        assert str(caught.value) == (
            f"HTTP_PORT: cannot listen on 127.0.0.1:{port} (address already in use); "
            "choose another port, or 0 for none."
        )
    finally:
        await server.close()
    await server.close()  # a second close does nothing
    with pytest.raises(aiohttp.ClientConnectorError):
        await get(port, "/healthz")


async def test_readyz_names_each_failing_check_and_survives_a_broken_or_hanging_one(monkeypatch):
    async def fine() -> str | None:
        return None

    async def broken() -> str | None:
        raise ConnectionResetError("database went away")

    async def hanging() -> str | None:
        await asyncio.sleep(3600)
        return None

    monkeypatch.setattr("services.outside.web.CHECK_TIMEOUT_SECONDS", 0.2)
    port = free_port()
    server = WebServer(Metrics(), {"gateway": fine, "database": broken, "cache": hanging})
    await server.start("127.0.0.1", port)
    try:
        status, body = await get(port, "/readyz")
        assert (status, json.loads(body)) == (
            503,
            {
                "status": "not ready",
                "reasons": {"database": "failed (ConnectionResetError)", "cache": "no answer within 0.2 s"},
            },
        )
        with pytest.raises(WebServerError, match=rf"cannot listen on 127.0.0.1:{port} "):
            await WebServer(Metrics(), {}).start("127.0.0.1", port)
    finally:
        await server.close()


async def test_queue_waiting_gauge_counts_edits_waiting_for_a_slot(tmp_path):
    port = free_port()
    async with loopback_stack(tmp_path, http_port=port, max_concurrent_edits=1) as stack:
        stack.hub.inject(Fault(delay=2.0))  # the first edit holds the only slot for a while
        records = []
        for name in ("first.png", "second.png"):
            image = stack.discord.add_attachment(png_bytes(64, 64), name, "image/png", width=64, height=64)
            records.append(await stack.discord.slash("edit", {"image": image, "prompt": "make it blue"}))

        async def waiting() -> float:
            return sample(await scrape(port), "retouch_queue_waiting", "retouch_queue_waiting")

        async def one_waiting() -> bool:
            return await waiting() == 1

        await until(one_waiting, 10, "the second edit to wait for the slot")
        for record in records:
            await record.wait_for(lambda r: any("Done" in text for text in r.texts()), timeout=20)
        assert await waiting() == 0
