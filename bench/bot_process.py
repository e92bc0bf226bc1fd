"""The real bot (`bot.main()`) in a process of its own, pointed at the emulators, reporting on itself.

`python -m bench.bot_process CONFIG_JSON` where CONFIG_JSON holds the emulators' hellos (`discord`,
`hub`), `database_url` and `overrides` (Config fields). It prints `{"pid"}` once the bot is logged in
and has its guild, then answers (see bench.control):

* `stats` — `{"cpu_s"` (user + system time of the whole process, threads included), `"rss"`, `"hwm"`
  (peak RSS since the last `reset_peak`), `"in_line"`, `"guilds"` (servers cached)};
* `recorded` — how many jobs have their inputs read, checked and kept (then they hold no picture);
* `gc` — a full collection, then `stats`;
* `reset_peak` — the kernel's peak-RSS mark back to the current RSS (`/proc/self/clear_refs`);
* `lag_start` / `lag_stop` — how late a 5 ms timer on the bot's own loop fires (samples in ms);
* `tickets` — `{user_id: seconds waited in line}` of every admitted job (recorded with `--record-tickets`);
* `profile_start` / `profile_stop {top}` — cProfile of the loop's thread, answered as the `top`
  functions by cumulative and by own time;
* `trace_start` / `trace_stop {top}` — `{"held"}`: the bytes Python allocated since `trace_start` and still
  holds, exactly (`tracemalloc`, after a full collection), whatever the allocator keeps or returns to the
  kernel; `"top"`: the `top` source lines holding the most of them.

`--floor` runs the acknowledgement's floor instead of Retouch: a bare `discord.Client` logged into the same
emulator that defers every interaction (ephemeral, thinking, as Retouch does) and does nothing else. It
answers `stats` and `gc` only.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord.asset
import discord.gateway
import discord.http
import yarl

import bot as bot_module
from bench.control import Child, say, serve
from services.domain.job_queue import Ticket
from services.outside.config import Config
from tests.harness import make_config

_PAGE = os.sysconf("SC_PAGE_SIZE")


def bot_child(
    discord: dict, hub: dict, database_url: str, *, record_tickets: bool = False, floor: bool = False, **overrides: Any
) -> Child:
    config = {"discord": discord, "hub": hub, "database_url": database_url, "overrides": overrides}
    flags = [*(["--record-tickets"] if record_tickets else []), *(["--floor"] if floor else [])]
    return Child("bench.bot_process", json.dumps(config), *flags)


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


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
            self.samples.append((time.perf_counter() - started - self.interval) * 1000)

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.create_task(self._run())

    def stop(self) -> list[float]:
        assert self._task is not None
        self._task.cancel()
        return self.samples


class Profiler:
    """cProfile of the event loop's thread: what holds the loop (worker threads are not included)."""

    def __init__(self) -> None:
        self._profile = cProfile.Profile()

    def start(self) -> None:
        self._profile = cProfile.Profile()
        self._profile.enable()

    def stop(self, top: int) -> dict[str, str]:
        self._profile.disable()
        shown = {}
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(self._profile, stream=out).sort_stats(order).print_stats(top)
            shown[order] = out.getvalue()
        return shown


def _point_at(emulator: dict) -> None:
    """discord.py's REST, gateway and CDN addresses: the emulator's."""
    discord.http.Route.BASE = emulator["rest_base"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emulator["gateway_url"])
    discord.asset.Asset.BASE = emulator["cdn_base"]


async def _stats(in_line: int = 0, guilds: int = 0) -> dict[str, Any]:
    times = os.times()
    return {
        "cpu_s": times.user + times.system,
        "rss": _status("VmRSS"),
        "hwm": _status("VmHWM"),
        "in_line": in_line,
        "guilds": guilds,
    }


async def _collected() -> dict[str, Any]:
    gc.collect()
    return await _stats()


async def _floor(emulator: dict) -> None:
    """The acknowledgement's floor: parse the interaction (discord.py) and defer it, nothing else."""
    _point_at(emulator)
    # The bot's intents and its pool of connections to Discord: the floor is discord.py's own work, not a pool's.
    client = discord.Client(intents=discord.Intents.default(), connector=bot_module.discord_connector())

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)

    await client.login(emulator["token"])
    connected = asyncio.create_task(client.connect())
    while client.get_guild(emulator["guild_id"]) is None:
        await asyncio.sleep(0.02)
    say({"pid": os.getpid()})
    await serve({"stats": _stats, "gc": _collected})
    await client.close()
    await asyncio.wait_for(connected, 30)


async def _run(config_json: str, record_tickets: bool) -> None:
    spec = json.loads(config_json)
    emulator = spec["discord"]
    _point_at(emulator)
    config = make_config(
        SimpleNamespace(token=emulator["token"], guild_id=emulator["guild_id"]),  # type: ignore[arg-type]
        SimpleNamespace(token=spec["hub"]["token"], base_url=spec["hub"]["base_url"]),  # type: ignore[arg-type]
        spec["database_url"],
        # The member's progress line as often as in production: the bench measures the bot's real work.
        progress_interval_seconds=Config.progress_interval_seconds,
        **spec["overrides"],
    )
    started: asyncio.Future[bot_module.RetouchBot] = asyncio.get_running_loop().create_future()
    main = asyncio.create_task(bot_module.main(config, on_started=started.set_result))
    bot = await asyncio.wait_for(asyncio.shield(started), 30)
    tickets: list[Ticket] = []
    if record_tickets:
        admit = bot.queue.admit

        def recording_admit(guild_id: int, user_id: int, images: int) -> Ticket:
            tickets.append(admit(guild_id, user_id, images))
            return tickets[-1]

        bot.queue.admit = recording_admit  # type: ignore[method-assign]
    while bot.get_guild(emulator["guild_id"]) is None:
        await asyncio.sleep(0.02)
    lag, profiler = LagMonitor(), Profiler()

    async def stats() -> dict[str, Any]:
        return await _stats(bot.queue.in_line, len(bot.guilds))

    async def recorded() -> int:
        # A job's inputs are kept once they are read and checked: from then on it holds no picture.
        return int(await bot.database.fetch_value("SELECT COUNT(DISTINCT job_id) FROM job_inputs"))

    async def collect() -> dict[str, Any]:
        gc.collect()
        return await stats()

    async def reset_peak() -> None:
        await asyncio.to_thread(Path("/proc/self/clear_refs").write_text, "5")

    async def lag_start() -> None:
        lag.start()

    async def lag_stop() -> list[float]:
        return lag.stop()

    async def waited() -> dict[str, float | None]:
        return {str(ticket.user_id): ticket.waited for ticket in tickets}

    async def profile_start() -> None:
        profiler.start()

    async def profile_stop(top: int = 25) -> dict[str, str]:
        return profiler.stop(top)

    async def trace_start() -> None:
        gc.collect()
        tracemalloc.start()

    async def trace_stop(top: int = 0) -> dict[str, Any]:
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        lines = tracemalloc.take_snapshot().statistics("lineno")[:top] if top else []
        tracemalloc.stop()
        return {"held": held, "top": "\n".join(map(str, lines))}

    say({"pid": os.getpid()})
    await serve(
        {
            "stats": stats,
            "recorded": recorded,
            "gc": collect,
            "reset_peak": reset_peak,
            "lag_start": lag_start,
            "lag_stop": lag_stop,
            "tickets": waited,
            "profile_start": profile_start,
            "profile_stop": profile_stop,
            "trace_start": trace_start,
            "trace_stop": trace_stop,
        }
    )
    await bot.close()
    await asyncio.wait_for(main, 30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("config_json")
    parser.add_argument("--record-tickets", action="store_true")
    parser.add_argument("--floor", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if arguments.floor:
        asyncio.run(_floor(json.loads(arguments.config_json)["discord"]))
    else:
        asyncio.run(_run(arguments.config_json, arguments.record_tickets))
