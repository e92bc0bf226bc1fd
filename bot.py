"""Retouch: a Discord bot for AI image editing. `python bot.py` runs it; `--sync` re-syncs commands."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import signal
import sys
from collections.abc import Callable

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from cogs.failures import report_failure
from cogs.translator import RetouchTranslator
from services.config import Config, ConfigError, load_config
from services.database import Database, open_database
from services.editing import EditObserver, EditService
from services.job_queue import JobQueue
from services.jobs import JobStore
from services.model_catalog import ModelCatalog
from services.modelhub import ModelHubClient
from services.pacing import open_pacer
from services.quota import QuotaStore
from services.settings import SettingsStore

log = logging.getLogger("retouch")

EXTENSIONS = ("cogs.edit", "cogs.quota", "cogs.settings", "cogs.remix", "cogs.privacy")
COMMAND_DIGEST_KEY = "global_command_digest"
# On SIGTERM, edits in flight get this long to finish before they are cancelled and refunded
# (docker stop waits 10 s by default before SIGKILL; `stop_grace_period` can raise both).
SHUTDOWN_GRACE_SECONDS = 8.0


class RetouchTree(app_commands.CommandTree):
    """The last error layer: the one failure report (a no-op when a cog's handler already told the member)."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_failure(interaction, error)


class RetouchBot(commands.Bot):
    """The bot, holding the services `main()` opened for it."""

    def __init__(
        self,
        *,
        config: Config,
        session: aiohttp.ClientSession,
        database: Database,
        hub: ModelHubClient,
        queue: JobQueue,
        force_sync: bool = False,
        edit_observer: EditObserver | None = None,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),  # no privileged intents: everything runs on interactions
            tree_cls=RetouchTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.config = config
        self.session = session
        self.database = database
        self.hub = hub
        self.queue = queue
        self.models = ModelCatalog(hub, config.edit_models)
        self.quota = QuotaStore(database, config.default_quota)
        self.settings = SettingsStore(database)
        self.jobs = JobStore(database)
        self.edits = EditService(
            queue=queue,
            quota=self.quota,
            jobs=self.jobs,
            hub=hub,
            session=session,
            max_input_bytes=config.max_input_bytes,
            observer=edit_observer,
        )
        self._force_sync = force_sync

    async def setup_hook(self) -> None:
        returned = await self.quota.release_orphaned()
        if returned:
            log.info("Returned %d reservation(s) left behind by an earlier process", returned)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.tree.set_translator(RetouchTranslator())
        await self.sync_commands()

    async def sync_commands(self, *, force: bool = False) -> None:
        """Sync to DEV_GUILD_ID when set; globally only when the command set changed or when forced."""
        if self.config.dev_guild_id is not None:
            guild = discord.Object(self.config.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d commands to the development server", len(synced))
            return
        # What Discord is sent, translations included, so that a changed catalog is synced too.
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator) if translator else command.to_dict(self.tree)
            for command in self.tree.get_commands()
        ]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        # Global syncs are rate limited and slow to propagate: skip them when nothing changed.
        if not (force or self._force_sync) and await self.database.get_meta(COMMAND_DIGEST_KEY) == digest:
            log.info("Command set unchanged; no global sync")
            return
        synced = await self.tree.sync()
        await self.database.set_meta(COMMAND_DIGEST_KEY, digest)
        log.info("Synced %d commands globally", len(synced))

    async def close(self) -> None:
        """Stop taking edits, let those in flight finish (or cancel and refund them), then disconnect."""
        if not self.is_closed():
            self.queue.close()
            if self.queue.in_line:
                log.info("Shutting down: waiting for %d edit(s) in flight", self.queue.in_line)
            await self.queue.drain(SHUTDOWN_GRACE_SECONDS)
        await super().close()

    async def on_ready(self) -> None:
        log.info("Logged in as %s (%s) in %d server(s)", self.user, self.user and self.user.id, len(self.guilds))


class SecretFilter(logging.Filter):
    """Defence in depth: no log record leaves with a token in it, whatever a library put there."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "********")
            record.msg, record.args = message, None
        return True


def setup_logging(config: Config) -> None:
    discord.utils.setup_logging(level=getattr(logging, config.log_level, logging.INFO), root=True)
    secret_filter = SecretFilter([config.discord_token.reveal(), config.ionos_api_token.reveal()])
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)


async def main(
    config: Config, *, force_sync: bool = False, on_started: Callable[[RetouchBot], None] | None = None
) -> None:
    """Open the services, run the bot until it is closed or signalled, then close in a fixed order."""
    async with (
        aiohttp.ClientSession() as session,
        open_database(config.database_url) as database,
    ):
        pacer = open_pacer(database, config.upstream_images_per_minute, config.upstream_image_burst)
        hub = ModelHubClient(
            session,
            config.model_hub_url,
            config.ionos_api_token,
            deadline=config.upstream_deadline_seconds,
            backoff_base=config.upstream_backoff_seconds,
            pacer=pacer,
        )
        queue = JobQueue(config.max_concurrent_edits, pacer)
        async with RetouchBot(
            config=config, session=session, database=database, hub=hub, queue=queue, force_sync=force_sync
        ) as bot:
            if on_started is not None:
                on_started(bot)
            await bot.start(config.discord_token.reveal())
    # Closed in reverse order of opening: the bot (gateway, pending work), the database, the HTTP session.


def close_on_signals(bot: RetouchBot) -> None:
    """SIGTERM (docker stop) and SIGINT close the bot, so `main()` unwinds in order and exits 0."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.create_task(bot.close()))


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sync", action="store_true", help="sync the slash commands globally now")
    args = parser.parse_args()
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config)
    try:
        asyncio.run(main(config, force_sync=args.sync, on_started=close_on_signals))
    except discord.LoginFailure:
        print("Configuration error: DISCORD_TOKEN was refused by Discord; check the bot token.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
