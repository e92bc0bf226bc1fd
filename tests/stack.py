"""The whole product on loopback: the real bot, logged into the Discord emulator, calling the Model Hub emulator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bot as bot_module
from services.config import Config
from services.quota import parse_quota
from services.secret import Secret
from tests.discord_emulator import DiscordEmulator
from tests.modelhub_emulator import ModelHubEmulator


class LogCollector(logging.Handler):
    """Every log line of a test, formatted with tracebacks, for the secrets scan."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Stack:
    discord: DiscordEmulator
    hub: ModelHubEmulator
    bot: bot_module.RetouchBot
    config: Config
    logs: LogCollector

    def everything_said(self) -> str:
        """All log lines plus every message content the emulator stored: what a secret must never be in."""
        messages = [str(m.get("content") or "") for m in self.discord.messages.values()]
        return "\n".join([*self.logs.lines, *messages])


def make_config(discord: DiscordEmulator, hub: ModelHubEmulator, database_url: str, **overrides: Any) -> Config:
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
    )
    return dataclasses.replace(config, **overrides)


@contextlib.asynccontextmanager
async def running_bot(config: Config, discord: DiscordEmulator) -> AsyncIterator[bot_module.RetouchBot]:
    """Run `bot.main()` (the product's own lifecycle) until the block ends."""
    started: asyncio.Future[bot_module.RetouchBot] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(bot_module.main(config, on_started=started.set_result))
    try:
        bot = await asyncio.wait_for(asyncio.shield(started), 10)
        # This bot's own GUILD_CREATE, not an earlier process's: interactions need the live connection.
        await asyncio.wait_for(_until(lambda: bot.get_guild(discord.guild_id) is not None), 10)
        await asyncio.wait_for(_until(lambda: "edit" in discord.commands), 10)
        yield bot
    finally:
        if started.done():
            await started.result().close()
        await asyncio.wait_for(task, 10)


async def _until(condition, interval: float = 0.02) -> None:
    while not condition():
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def loopback_stack(tmp_path: Path, **overrides: Any) -> AsyncIterator[Stack]:
    logs = LogCollector()
    root = logging.getLogger()
    root.addHandler(logs)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        async with DiscordEmulator() as discord, ModelHubEmulator() as hub:
            config = make_config(discord, hub, f"sqlite:///{tmp_path / 'retouch.db'}", **overrides)
            with discord.patch_discord():
                async with running_bot(config, discord) as bot:
                    yield Stack(discord, hub, bot, config, logs)
    finally:
        root.removeHandler(logs)
        root.setLevel(previous_level)


def assert_nothing_leaked(stack: Stack) -> None:
    """Neither token in any log line or message, and every REST call the bot made is in Discord's spec."""
    said = stack.everything_said()
    assert stack.config.discord_token.reveal() not in said
    assert stack.config.ionos_api_token.reveal() not in said
    assert stack.discord.openapi_violations() == []
