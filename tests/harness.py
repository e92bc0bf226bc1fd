"""Running the real bot against the loopback emulators: the configuration that points it at them,
and its own lifecycle (``bot.main()``) until it is logged in and has synced.  Used by tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import bot as bot_module
from emulators.discord import DiscordEmulator
from emulators.modelhub import ModelHubEmulator
from services.outside.config import Config
from services.outside.secret import Secret
from services.storage.quota import parse_quota
from tests.helpers import until


def make_config(discord: DiscordEmulator, hub: ModelHubEmulator, database_url: str, **overrides: Any) -> Config:
    """A bot configuration for the two emulators (fast upstream backoff and progress, a generous default quota)."""
    config = Config(
        discord_token=Secret(discord.token),
        ionos_api_token=Secret(hub.token),
        model_hub_url=hub.base_url,
        database_url=database_url,
        dev_guild_id=discord.guild_id,
        http_port=0,  # tests that want the endpoint pick a free port
        default_quota=parse_quota("1000/day"),
        upstream_deadline_seconds=20,
        upstream_backoff_seconds=0.05,
        progress_interval_seconds=0.2,  # a test sees the progress line within a fraction of a second
    )
    return dataclasses.replace(config, **overrides)


@contextlib.asynccontextmanager
async def running_bot(
    config: Config, discord: DiscordEmulator, *, owns_guild: bool = True
) -> AsyncIterator[bot_module.RetouchBot]:
    """Run `bot.main()` (the product's own lifecycle) until the block ends.

    `owns_guild` False: a process whose shards do not include the test guild's; it is waited for until ready.
    """
    started: asyncio.Future[bot_module.RetouchBot] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(bot_module.main(config, on_started=started.set_result))
    try:
        bot = await asyncio.wait_for(asyncio.shield(started), 10)
        # This bot's own GUILD_CREATE, not an earlier process's: interactions need the live connection.
        if not owns_guild:
            await until(bot.is_ready, 10, "the bot's shards")
        else:
            await until(lambda: bot.get_guild(discord.guild_id) is not None, 10, "the bot's own GUILD_CREATE")
        await until(lambda: "edit" in discord.commands, 10, "the command sync")
        yield bot
    finally:
        if started.done():
            await started.result().close()
        await asyncio.wait_for(task, 10)
