"""The whole product on loopback: the real bot, logged into the Discord emulator, calling the Model Hub emulator."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bot as bot_module
from emulators.discord import DiscordEmulator
from emulators.modelhub import ModelHubEmulator
from services.outside.config import Config
from tests.harness import make_config, running_bot


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


@contextlib.asynccontextmanager
async def loopback_stack(tmp_path: Path, **overrides: Any) -> AsyncIterator[Stack]:
    logs = LogCollector()
    root = logging.getLogger()
    root.addHandler(logs)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        async with DiscordEmulator() as discord, ModelHubEmulator() as hub:
            database_url = overrides.pop("database_url", f"sqlite:///{tmp_path / 'retouch.db'}")
            config = make_config(discord, hub, database_url, **overrides)
            with discord.patch_discord():
                async with running_bot(config, discord) as bot:
                    yield Stack(discord, hub, bot, config, logs)
    finally:
        root.removeHandler(logs)
        root.setLevel(previous_level)


def assert_nothing_leaked(stack: Stack) -> None:
    """Neither token in any log line or message.  (That every REST call the bot made is one Discord
    takes is checked for every test at the session's end, see tests/discord_payloads.py.)"""
    said = stack.everything_said()
    assert stack.config.discord_token.reveal() not in said
    assert stack.config.ionos_api_token.reveal() not in said
