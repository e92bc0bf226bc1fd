"""Load scenarios: the real bot (`bot.main()`) in a process of its own (bench.bot_process), logged into
the Discord emulator in another (bench.discord_process), calling the Model Hub emulator in a third
(bench.hub_process). The bench process only drives them: latencies are measured by the Discord
emulator, the bot's lag, CPU and memory by the bot process itself. Every scenario is bounded.

Each scenario function is one run and returns one figure; bench.__main__ repeats them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import requests

from bench.bot_process import bot_child
from bench.control import Child
from bench.discord_process import discord_child, photo_png
from bench.hub_process import hub_child
from bot import DISCORD_CONNECTIONS
from emulators.modelhub import EDIT_MODEL
from services.domain.upstream import HubRequest
from services.outside.modelhub import ModelHubClient
from services.outside.secret import Secret

UNLIMITED: dict[str, Any] = {"upstream_images_per_minute": 10.0**7, "upstream_image_burst": 10**6}
SHOWN_WAIT = re.compile(r"In line: [^·]+ · about ([\d.]+) s to wait · (\d+) s elapsed")
_names = count()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


@dataclass
class Stack:
    """The three processes of one configuration; `restart_bot()` swaps the bot for a new process."""

    folder: Path
    discord: Child
    hub: Child
    bot: Child
    overrides: dict[str, Any] = field(default_factory=dict)
    record_tickets: bool = False
    late: int = 0  # acknowledgements that came after Discord's 3 s window (their edits never ran)

    async def members(self, count: int) -> list[dict]:
        return await self.discord.call("members", count=count, prefix=f"m{next(_names)}-")

    async def edits(self, users: list[dict], image: dict, count: int, side: int, wait: str = "done") -> list[dict]:
        """The edits' results (see bench.discord_process); those acknowledged too late are counted in `late`."""
        results = await self.discord.call("edits", users=users, image=image, count=count, side=side, wait=wait)
        self.late += sum(r["late"] for r in results)
        return [r for r in results if not r["late"]] if wait == "done" else results

    async def warm_up(self) -> None:
        """One small edit: connections, worker threads and modules, not the sizes under test."""
        await self.edits(await self.members(1), await self.discord.call("attach", side=64), 1, 64)
        await self.discord.call("forget")

    async def warm_up_line(self) -> None:
        """Two small edits, the second shown its place in line: what a line costs once (the words' locale data)."""
        await self.hub.call("hold")
        try:
            image, (first, second) = await self.discord.call("attach", side=64), await self.members(2)
            sent = await self.edits([first], image, 1, 64, "ack")
            # The first holds the one upstream slot before the second arrives: edits start in no set order.
            while not (await self.hub.call("stats"))["held"]:
                await asyncio.sleep(0.01)
            sent += await self.edits([second], image, 1, 64, "ack")
            await self.discord.call("said", id=sent[1]["id"], words="In line:")
        finally:
            await self.hub.call("release")
        await self.discord.call("done", ids=[r["id"] for r in sent])
        await self.discord.call("forget")

    async def quiet(self, window: float = 0.1, busy: float = 0.002) -> None:
        """Wait until the bot process spends under `busy` s of processor time in `window` s: its work is done."""
        while True:
            before = (await self.bot.call("stats"))["cpu_s"]
            await asyncio.sleep(window)
            if (await self.bot.call("stats"))["cpu_s"] - before < busy:
                return

    async def restart_bot(self, *, floor: bool = False) -> None:
        """A new bot process in place of the running one (on a new database); `floor`: the bare deferring bot."""
        await self.bot.__aexit__(None, None, None)
        self.bot = _bot(self.folder, self.discord, self.hub, self.overrides, self.record_tickets, floor=floor)
        await self.bot.__aenter__()


def _bot(
    folder: Path, discord: Child, hub: Child, overrides: dict[str, Any], record_tickets: bool, *, floor: bool = False
) -> Child:
    database = f"sqlite:///{folder / f'bench-{time.monotonic_ns()}.db'}"
    return bot_child(discord.hello, hub.hello, database, record_tickets=record_tickets, floor=floor, **overrides)


@contextlib.asynccontextmanager
async def stack(
    folder: Path,
    *,
    images_per_minute: float | None = None,
    burst: int = 20,
    record_tickets: bool = False,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    # Every scenario drives one server, so the whole line of 100 is its fair share.
    overrides = {"upstream_deadline_seconds": 120, "max_queued_per_server": 100, **overrides}
    async with discord_child() as discord, hub_child(images_per_minute=images_per_minute, burst=burst) as hub:
        bench = Stack(
            folder, discord, hub, _bot(folder, discord, hub, overrides, record_tickets), overrides, record_tickets
        )
        await bench.bot.__aenter__()
        try:
            await discord.call("synced")
            await bench.warm_up()
            yield bench
        finally:
            await bench.bot.__aexit__(None, None, None)


# ---------------------------------------------------------------------------------------- scenarios


ACK_BURSTS = 7  # per figure: the median burst's p99, not one burst's


async def _acknowledged_ms(bench: Stack, edits: int, finish: bool) -> list[float]:
    """The acknowledgement times of `edits` edits sent at once (`finish`: their edits waited for too)."""
    image = await bench.discord.call("attach", side=64)
    results = await bench.edits(await bench.members(edits), image, 1, 64, wait="ack")
    if finish:
        await bench.discord.call("done", ids=[r["id"] for r in results])
    await bench.discord.call("forget")
    await bench.quiet()
    return [r["ack_ms"] for r in results]


async def ack_p99_ms(bench: Stack, edits: int, *, finish: bool = True) -> float:
    """Acknowledgement latency as Discord sees it (sent → callback received): a burst of `edits` sent at once, its
    p99; the median of ACK_BURSTS such bursts, each sent to a bot done with the last one (`Stack.quiet`), after a
    first burst that opens the bot's pool of connections to Discord.

    `finish`: wait for the edits to end too (the floor's bot never ends them: it only defers). Without that first
    burst, the measured one opened fifteen connections while the emulator's one loop was busy sending it; their
    accepts waited on that loop (Discord's API is not held up by its gateway), and whether the bot or the emulator
    got ahead moved the figure between ≈ 5 and ≈ 50 ms, for the bare bot too. One burst's p99 is its second
    slowest acknowledgement: a pause of either loop moves it 3-5 times, hence the median of several.
    """
    await _acknowledged_ms(bench, min(edits, DISCORD_CONNECTIONS), finish)
    bursts = [percentile(await _acknowledged_ms(bench, edits, finish), 0.99) for _ in range(ACK_BURSTS)]
    return statistics.median(bursts)


async def ack_floor_p99_ms(bench: Stack, edits: int) -> float:
    """The same acknowledgements answered by a bare discord.py bot that only defers (bench.bot_process --floor).

    It takes the bot's place in the same stack; the next `restart_bot()` brings Retouch back.
    """
    await bench.restart_bot(floor=True)
    return await ack_p99_ms(bench, edits, finish=False)


async def loop_lag_p99_ms(bench: Stack, edits: int, side: int = 2048) -> float:
    """The bot loop's lag (from inside the bot) while `edits` edits of four side×side PNGs are in flight."""
    image = await bench.discord.call("attach", side=side)
    users = await bench.members(edits)
    await bench.bot.call("lag_start")
    await bench.edits(users, image, 4, side)
    samples = await bench.bot.call("lag_stop")
    await bench.discord.call("forget")
    return percentile(samples, 0.99)


async def _floor_once(
    session: aiohttp.ClientSession, bench: Stack, image: dict, side: int, count: int = 4, channel_id: int | None = None
) -> float:
    """The same bytes moved with bare aiohttp + base64: fetch the input, call the hub, post the pictures."""
    discord, hub = bench.discord.hello, bench.hub.hello
    channel_id = channel_id or discord["channel_id"]
    started = time.perf_counter()
    async with session.get(image["url"]) as response:
        await response.read()
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (
        ("model", EDIT_MODEL),
        ("prompt", "floor"),
        ("url", image["url"]),
        ("size", f"{side}x{side}"),
        ("n", str(count)),
        ("output_format", "png"),
    ):
        form.add_field(name, value)
    async with session.post(
        f"{hub['base_url']}/images/edits", data=form, headers={"Authorization": f"Bearer {hub['token']}"}
    ) as response:
        body = await response.read()
    pictures = [base64.b64decode(item["b64_json"]) for item in json.loads(body)["data"]]
    upload = aiohttp.FormData()
    upload.add_field("payload_json", json.dumps({"content": "floor"}), content_type="application/json")
    for n, data in enumerate(pictures):
        upload.add_field(f"files[{n}]", data, filename=f"floor-{n}.png", content_type="image/png")
    async with session.post(
        f"{discord['rest_base']}/channels/{channel_id}/messages",
        data=upload,
        headers={"Authorization": f"Bot {discord['token']}"},
    ) as response:
        assert response.status == 200, response.status
    return time.perf_counter() - started


async def added_time_ratio(bench: Stack, pairs: int, side: int = 1024) -> float:
    """The bot's time per edit (n=4, instant upstream; sent → last word) over the floor for the same bytes."""
    image = await bench.discord.call("attach", side=side)
    [user] = await bench.members(1)
    bot_times, floor_times = [], []
    # A channel per floor edit, as each of the bot's edits uploads through its own interaction's webhook: one
    # channel would meet Discord's limit of 5 messages per 5 s and measure waiting, not work.
    warm_up, *channels = await bench.discord.call("channels", count=pairs + 1)
    async with aiohttp.ClientSession() as session:
        await bench.edits([user], image, 4, side)  # warm-up at this size: the hub's cache, the connections
        await _floor_once(session, bench, image, side, channel_id=warm_up)
        for channel in channels:  # interleaved, so both see the same machine
            [result] = await bench.edits([user], image, 4, side)
            bot_times.append(result["done_s"])
            floor_times.append(await _floor_once(session, bench, image, side, channel_id=channel))
    await bench.discord.call("forget")
    return statistics.median(bot_times) / statistics.median(floor_times)


async def throughput(bench: Stack, edits: int, side: int = 1024) -> tuple[float, float]:
    """(edits per second the bot sustains, the floor's): `edits` edits of side×side (n=1, instant upstream) sent
    at once by as many members, and the same bytes moved by as many bare aiohttp flows at once (`_floor_once`)."""
    image = await bench.discord.call("attach", side=side)
    users = await bench.members(edits)
    # A channel per flow: the bot's uploads go to each interaction's own webhook, whose limit is its own.
    channels = await bench.discord.call("channels", count=edits)
    async with aiohttp.ClientSession() as session:
        await bench.edits(users[:1], image, 1, side)  # warm-up at this size: the hub's cache, the connections
        await _floor_once(session, bench, image, side, count=1)
        started = time.perf_counter()
        done = await bench.edits(users, image, 1, side)
        rate = len(done) / (time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(_floor_once(session, bench, image, side, 1, channel) for channel in channels))
        floor = edits / (time.perf_counter() - started)
    await bench.discord.call("forget")
    return rate, floor


async def rss_growth_ratio(bench: Stack, edits: int, side: int = 1024) -> float:
    """Peak RSS growth of a fresh bot process per in-flight edit (n=4), over the size of its pictures.

    The bot is a new process for each run, warmed up on one small edit; then `edits` edits at once. The peak is
    the kernel's (VmHWM, reset before), the baseline the RSS after a full collection.
    """
    image = await bench.discord.call("attach", side=side)
    users = await bench.members(edits)
    await bench.restart_bot()
    await bench.warm_up()
    baseline = (await bench.bot.call("gc"))["rss"]
    await bench.bot.call("reset_peak")
    results = await bench.edits(users, image, 4, side)
    peak = (await bench.bot.call("stats"))["hwm"]
    await bench.discord.call("forget")
    return (peak - baseline) / len(results) / statistics.mean(r["bytes"] for r in results)


async def _queued(bench: Stack, tickets: int, side: int, *, traced: bool, top: int = 0) -> float:
    """Memory per job in line with `tickets` in line (one upstream slot, held by the hub), in a fresh bot process
    warmed up on one small edit: resident memory (the kernel's), or with `traced` the bytes Python holds
    (tracemalloc, started after the warm-up; `top`: print the lines holding most of them, to stderr)."""
    image = await bench.discord.call("attach", side=side)
    users = await bench.members(tickets)
    # A new process each run: memory freed by an earlier run would be reused and hide the growth.
    await bench.restart_bot()
    await bench.warm_up()
    await bench.warm_up_line()
    before = (await bench.bot.call("gc"))["rss"]
    recorded = await bench.bot.call("recorded")
    if traced:
        await bench.bot.call("trace_start")
    await bench.hub.call("hold")
    try:
        sent = await bench.edits(users, image, 1, 256, wait="ack")
        admitted = sum(not r["late"] for r in sent)
        # Every job in line, its picture read, checked and its copy kept: what it holds now is what waiting costs.
        while (await bench.bot.call("stats"))["in_line"] < admitted or (
            await bench.bot.call("recorded")
        ) - recorded < admitted:
            await asyncio.sleep(0.05)
        if traced:
            traced_memory = await bench.bot.call("trace_stop", top=top)
            held = traced_memory["held"]
            if top:
                print(traced_memory["top"], file=sys.stderr)
        else:
            held = (await bench.bot.call("gc"))["rss"] - before
    finally:
        await bench.hub.call("release")
    await bench.discord.call("done", ids=[r["id"] for r in sent])
    await bench.discord.call("forget")
    return held / admitted


async def queued_bytes_per_ticket(bench: Stack, tickets: int, side: int = 1024) -> float:
    """Resident memory (RSS) per job in line; see `_queued`."""
    return await _queued(bench, tickets, side, traced=False)


async def queued_python_bytes_per_ticket(bench: Stack, tickets: int, side: int = 1024, top: int = 0) -> float:
    """Bytes Python holds per job in line (tracemalloc), whatever the allocator keeps; see `_queued`."""
    return await _queued(bench, tickets, side, traced=True, top=top)


GUILD_CHANNELS, GUILD_ROLES = 10, 5  # a small community server's, as the bot caches it (no member intent)


async def memory_per_1000_guilds(bench: Stack, guilds: int) -> float:
    """Resident memory of a fresh, warmed-up bot process per 1,000 servers it is in, over one in a single server.

    Adds `guilds` servers to the stack's emulator for good: the stack is this scenario's alone.
    """
    await bench.restart_bot()
    await bench.warm_up()
    alone = (await bench.bot.call("gc"))["rss"]
    await bench.discord.call("guilds", count=guilds, channels=GUILD_CHANNELS, roles=GUILD_ROLES)
    await bench.restart_bot()
    while (await bench.bot.call("stats"))["guilds"] <= guilds:  # every server's GUILD_CREATE has arrived
        await asyncio.sleep(0.05)
    await bench.warm_up()
    many = (await bench.bot.call("gc"))["rss"]
    return (many - alone) / guilds * 1000


async def client_cpu_ratio(hub: Child, runs: int, side: int = 512) -> float:
    """CPU time of ModelHubClient for a 10-image call over that of the vendor's requests example.

    Both run in this process, which does nothing else meanwhile; the hub is another process.
    """
    base_url, token = hub.hello["base_url"], hub.hello["token"]
    data_url = "data:image/png;base64," + base64.b64encode(photo_png(side)).decode()
    fields = {"model": EDIT_MODEL, "prompt": "cpu", "url": data_url, "size": f"{side}x{side}", "n": "10"}
    async with aiohttp.ClientSession() as session:
        client = ModelHubClient(session, base_url, Secret(token))
        request = HubRequest(EDIT_MODEL, "cpu", data_url, (side, side), n=10)

        def vendor() -> list[bytes]:
            files = {name: (None, value) for name, value in fields.items()}
            response = requests.post(
                f"{base_url}/images/edits", files=files, headers={"Authorization": f"Bearer {token}"}
            )
            return [base64.b64decode(item["b64_json"]) for item in response.json()["data"]]

        async def cpu(call: Callable[[], Any]) -> float:
            started = time.process_time()
            await call()
            return time.process_time() - started

        await client.edit(request)  # warm-up
        await asyncio.to_thread(vendor)
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(await cpu(lambda: client.edit(request)))
            theirs.append(await cpu(lambda: asyncio.to_thread(vendor)))
    return statistics.median(ours) / statistics.median(theirs)


async def pacing(bench: Stack, edits: int, count: int = 4) -> tuple[int, float]:
    """429s from a hub enforcing the bot's own contract, and the worst error of the wait a member was shown.

    The stack's hub and bot share one contract (images per minute, burst); the stack starts each run
    with a full bucket only after waiting for it to refill.
    """
    image = await bench.discord.call("attach", side=64)
    users = await bench.members(edits)
    before = (await bench.hub.call("stats"))["rate_limited"]
    results = await bench.edits(users, image, count, 64)
    rate_limited = (await bench.hub.call("stats"))["rate_limited"] - before
    waited = await bench.bot.call("tickets")
    errors = []
    for result in results:
        # The first wait a member was shown, as shown: the wait still expected plus the time elapsed.
        shown = next((m for m in map(SHOWN_WAIT.search, result["texts"]) if m is not None), None)
        seconds = waited.get(str(result["user_id"]))
        if shown is not None and seconds:
            errors.append(abs(float(shown[1]) + int(shown[2]) - seconds) / seconds)
    await bench.discord.call("forget")
    return rate_limited, max(errors, default=0.0)
