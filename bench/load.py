"""Load scenarios: the real bot (`bot.main()`), logged into the Discord emulator, calling the Model Hub
emulator in its own process. Everything listens on 127.0.0.1; every scenario is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import io
import json
import os
import re
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import aiohttp
import requests
from PIL import Image

import bot as bot_module
from bench.hub_process import HubProcess
from emulators.discord import DiscordEmulator, InteractionRecord
from emulators.harness import make_config, running_bot
from emulators.modelhub import EDIT_MODEL
from services.job_queue import Ticket
from services.modelhub import EditRequest, ModelHubClient
from services.secret import Secret

UNLIMITED = {"upstream_images_per_minute": 10.0**7, "upstream_image_burst": 10**6}
DONE_TIMEOUT = 120.0
PROGRESS = ("Checking your picture", "In line:", "Editing ", "> ")  # "> ": the caption of a result
T = TypeVar("T")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def photo_png(side: int) -> bytes:
    """A gradient with a little grain: a PNG about as large as a photo's (1.2 MB at 1024x1024), made fast."""
    ramp = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", (ramp, ramp.rotate(90), ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    image = Image.blend(image, Image.effect_noise((side, side), 40).convert("RGB"), 0.08)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class LoopThread:
    """An event loop in a thread of its own: the Discord emulator's work must not count as the bot's lag."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="discord-emulator", daemon=True)

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Bench:
    discord: DiscordEmulator
    emulator: LoopThread
    hub: HubProcess
    bot: bot_module.RetouchBot

    def attach(self, data: bytes, side: int) -> dict:
        return self.discord.add_attachment(data, "photo.png", "image/png", width=side, height=side)

    def members(self, count: int, prefix: str) -> list[dict]:
        return [self.discord.add_member(name=f"{prefix}{n}") for n in range(count)]

    async def edit(self, user: dict, image: dict, *, count: int, side: int) -> InteractionRecord:
        return await self.emulator.run(
            self.discord.slash(
                "edit",
                {"image": image, "prompt": f"bench for {user['id']}", "count": count, "size": f"{side}x{side}"},
                user=user,
            )
        )

    async def acknowledged(self, record: InteractionRecord) -> None:
        await self.emulator.run(record.wait_response())

    async def done(self, record: InteractionRecord) -> None:
        """Wait for the edit's last word; anything but "Done" stops the benchmark."""
        await self.emulator.run(
            record.wait_for(lambda r: any(not t.startswith(PROGRESS) for t in r.texts() if t), timeout=DONE_TIMEOUT)
        )
        final = [t for t in record.texts() if t and not t.startswith(PROGRESS)]
        if not final[-1].startswith("Done"):
            raise RuntimeError(f"an edit did not finish: {final[-1]}")

    def stored_bytes(self) -> int:
        """What the Discord emulator keeps of every upload (it never forgets): not the bot's memory."""
        # list() copies the values in one step, while the emulator's thread may be adding more.
        return sum(len(attachment["data"]) for attachment in list(self.discord._attachments.values()))


@contextlib.asynccontextmanager
async def bench_stack(folder: Path, hub: HubProcess, **overrides: Any) -> AsyncIterator[Bench]:
    with LoopThread() as emulator:
        discord = DiscordEmulator()
        await emulator.run(discord.start())
        try:
            config = make_config(
                discord,
                hub,
                f"sqlite:///{folder / f'bench-{time.monotonic_ns()}.db'}",  # type: ignore[arg-type]
                upstream_deadline_seconds=120,
                **overrides,
            )
            with discord.patch_discord():
                async with running_bot(config, discord) as bot:
                    yield Bench(discord, emulator, hub, bot)
        finally:
            await emulator.run(discord.close())


class LagMonitor:
    """Samples how late the event loop wakes a task that asked to sleep `interval` seconds."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(time.perf_counter() - started - self.interval)

    def __enter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()


# ---------------------------------------------------------------------------------------- scenarios


async def ack_p99_ms(folder: Path, edits: int) -> float:
    """Acknowledgement latency (interaction sent → deferral received) with `edits` edits in flight."""
    async with (
        HubProcess() as hub,
        bench_stack(folder, hub, upstream_images_per_minute=600, upstream_image_burst=20) as bench,
    ):
        image = bench.attach(photo_png(64), 64)

        async def one(user: dict) -> tuple[float, InteractionRecord]:
            started = time.perf_counter()
            record = await bench.edit(user, image, count=1, side=64)
            await bench.acknowledged(record)
            return time.perf_counter() - started, record

        results = await asyncio.gather(*(one(user) for user in bench.members(edits, "ack")))
        await asyncio.gather(*(bench.done(record) for _, record in results))
    return percentile([latency for latency, _ in results], 0.99) * 1000


async def loop_lag_p99_ms(folder: Path, edits: int, side: int = 2048) -> float:
    """Event-loop lag while `edits` edits of four side×side PNGs are in flight."""
    async with HubProcess() as hub, bench_stack(folder, hub, **UNLIMITED) as bench:
        image = bench.attach(photo_png(side), side)
        users = bench.members(edits, "lag")
        with LagMonitor() as lag:
            records = [await bench.edit(user, image, count=4, side=side) for user in users]
            await asyncio.gather(*(bench.done(record) for record in records))
    return percentile(lag.samples, 0.99) * 1000


async def _floor_once(session: aiohttp.ClientSession, bench: Bench, image: dict, side: int) -> float:
    """The same bytes moved with bare aiohttp + base64: fetch the input, call the hub, post the pictures."""
    started = time.perf_counter()
    async with session.get(image["url"]) as response:
        await response.read()
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (
        ("model", EDIT_MODEL),
        ("prompt", "floor"),
        ("url", image["url"]),
        ("size", f"{side}x{side}"),
        ("n", "4"),
        ("output_format", "png"),
    ):
        form.add_field(name, value)
    async with session.post(
        f"{bench.hub.base_url}/images/edits", data=form, headers={"Authorization": f"Bearer {bench.hub.token}"}
    ) as response:
        body = await response.read()
    pictures = [base64.b64decode(item["b64_json"]) for item in json.loads(body)["data"]]
    upload = aiohttp.FormData()
    upload.add_field("payload_json", json.dumps({"content": "floor"}), content_type="application/json")
    for n, data in enumerate(pictures):
        upload.add_field(f"files[{n}]", data, filename=f"floor-{n}.png", content_type="image/png")
    async with session.post(
        f"{bench.discord.rest_base}/channels/{bench.discord.channel_id}/messages",
        data=upload,
        headers={"Authorization": f"Bot {bench.discord.token}"},
    ) as response:
        assert response.status == 200, response.status
    return time.perf_counter() - started


async def added_time_ratio(folder: Path, runs: int, side: int = 1024) -> float:
    """The bot's time per edit (n=4, instant upstream) over the floor of moving the same bytes."""
    async with HubProcess() as hub, bench_stack(folder, hub, **UNLIMITED) as bench, aiohttp.ClientSession() as session:
        image = bench.attach(photo_png(side), side)
        [user] = bench.members(1, "added")
        bot_times, floor_times = [], []
        await bench.done(await bench.edit(user, image, count=4, side=side))  # warm-up: connections, threads
        await _floor_once(session, bench, image, side)
        for _ in range(runs):  # interleaved, so both see the same machine
            started = time.perf_counter()
            await bench.done(await bench.edit(user, image, count=4, side=side))
            bot_times.append(time.perf_counter() - started)
            floor_times.append(await _floor_once(session, bench, image, side))
    return statistics.median(bot_times) / statistics.median(floor_times)


async def rss_growth_ratio(folder: Path, edits: int, side: int = 1024) -> float:
    """Peak RSS growth per in-flight edit (n=4) over the size of its pictures.

    Measured for one edit alone and for `edits` at once (per edit); the larger counts. Memory the
    Discord emulator keeps (every upload) is not the bot's and is subtracted as it grows.
    """
    async with HubProcess() as hub, bench_stack(folder, hub, max_concurrent_edits=edits, **UNLIMITED) as bench:
        image = bench.attach(photo_png(side), side)
        users = bench.members(edits + 1, "rss")
        # Warm-up on a small picture: threads, connections and modules, not the size under test.
        await bench.done(await bench.edit(users[0], bench.attach(photo_png(64), 64), count=1, side=64))

        async def peak_growth(records: list[InteractionRecord]) -> int:
            gc.collect()
            baseline = peak = rss_bytes() - bench.stored_bytes()

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, rss_bytes() - bench.stored_bytes())
                    await asyncio.sleep(0.002)

            sampler = asyncio.create_task(sample())
            await asyncio.gather(*(bench.done(record) for record in records))
            sampler.cancel()
            return peak - baseline

        single = await bench.edit(users[0], image, count=4, side=side)
        alone = await peak_growth([single])
        together = await peak_growth(
            list(await asyncio.gather(*(bench.edit(user, image, count=4, side=side) for user in users[1:])))
        )
        response_size = sum(len(f.data) for followup in single.followups for f in followup["files"])
    return max(alone, together / edits) / response_size


async def client_cpu_ratio(runs: int, side: int = 512) -> float:
    """CPU time of ModelHubClient for a 10-image call over that of the vendor's requests example."""
    data_url = "data:image/png;base64," + base64.b64encode(photo_png(side)).decode()
    fields = {"model": EDIT_MODEL, "prompt": "cpu", "url": data_url, "size": f"{side}x{side}", "n": "10"}
    async with HubProcess() as hub, aiohttp.ClientSession() as session:
        client = ModelHubClient(session, hub.base_url, Secret(hub.token))
        request = EditRequest(EDIT_MODEL, "cpu", data_url, (side, side), n=10)

        def vendor() -> list[bytes]:
            files = {name: (None, value) for name, value in fields.items()}
            header = {"Authorization": f"Bearer {hub.token}"}
            response = requests.post(f"{hub.base_url}/images/edits", files=files, headers=header)
            return [base64.b64decode(item["b64_json"]) for item in response.json()["data"]]

        async def cpu(call: Callable[[], Any]) -> float:
            started = time.process_time()  # the hub is another process: this is the client's CPU alone
            await call()
            return time.process_time() - started

        await client.edit(request)  # warm-up
        await asyncio.to_thread(vendor)
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(await cpu(lambda: client.edit(request)))
            theirs.append(await cpu(lambda: asyncio.to_thread(vendor)))
    return statistics.median(ours) / statistics.median(theirs)


SHOWN_WAIT = re.compile(r"In line: [^·]+ · about ([\d.]+) s to wait · (\d+) s elapsed")


async def pacing(folder: Path, edits: int, count: int = 4) -> tuple[int, float]:
    """429s from an emulator enforcing 600 images/minute (burst 20), and the worst error of the wait shown."""
    async with (
        HubProcess(images_per_minute=600, burst=20) as hub,
        bench_stack(folder, hub, upstream_images_per_minute=600, upstream_image_burst=20) as bench,
    ):
        image = bench.attach(photo_png(64), 64)
        tickets: dict[int, Ticket] = {}
        admit = bench.bot.queue.admit

        def recording_admit(guild_id: int, user_id: int, images: int) -> Ticket:
            tickets[user_id] = admit(guild_id, user_id, images)
            return tickets[user_id]

        bench.bot.queue.admit = recording_admit  # type: ignore[method-assign]
        users = bench.members(edits, "pace")
        records = await asyncio.gather(*(bench.edit(user, image, count=count, side=64) for user in users))
        await asyncio.gather(*(bench.done(record) for record in records))
        rate_limited = (await hub.stats())["rate_limited"]
    errors = []
    for user, record in zip(users, records, strict=False):
        # The first progress line a waiting member saw: the total wait it promised is the wait still
        # expected plus the time already elapsed (both as shown, in whole seconds).
        shown = next((SHOWN_WAIT.search(text) for text in record.texts() if SHOWN_WAIT.search(text)), None)
        waited = tickets[int(user["id"])].waited
        if shown is not None and waited is not None:
            errors.append(abs(float(shown[1]) + int(shown[2]) - waited) / waited)
    return rate_limited, max(errors, default=0.0)
