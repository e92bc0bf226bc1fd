"""Retouch: a Discord bot for AI image editing. `python bot.py [run|sync|check]`; `--sync` as `sync`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import hashlib
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import discord
from discord import app_commands
from discord.ext import commands

from cogs.appeal_buttons import AppealDesk
from cogs.base import message_pictures, refreshed_url
from cogs.buttons import ResultActions, ResultButton
from cogs.failures import report_failure
from cogs.history import PageButton, ShowButton
from cogs.painter import BotPainter
from cogs.reply import ACKNOWLEDGED_FIRST, defer_thinking
from cogs.runner import EditRunner
from cogs.translator import RetouchTranslator
from services.domain.acknowledgements import AcknowledgementsFirst
from services.domain.edit_inputs import PictureDownloader
from services.domain.editing import EditService
from services.domain.job_queue import JobQueue
from services.domain.pacing import REQUEST_BUCKET_NAME, ImagePacer, open_pacer
from services.domain.region_pictures import RegionPictures
from services.domain.rejections import RejectionTracker
from services.domain.remixing import RemixRules
from services.domain.screening import Screening
from services.domain.upstream import ModelHubAuthenticationError, ModelHubError
from services.outside.allocator import return_large_blocks
from services.outside.config import Config, ConfigError, load_config
from services.outside.logs import Scrubber, setup_logging, url_password
from services.outside.metrics import Metrics, pacer_images_available
from services.outside.model_catalog import ModelCatalog
from services.outside.modelhub import ModelHubClient
from services.outside.painter_tokens import PainterTokens
from services.outside.painter_web import add_painter_routes, public_path
from services.outside.screening import ScreeningClient
from services.outside.web import Listener, WebServer, WebServerError
from services.storage.claims import ClaimStore
from services.storage.database import Database, DatabaseInUse, open_database
from services.storage.jobs import JobStore
from services.storage.privacy import PrivacyStore
from services.storage.quota import QuotaStore
from services.storage.screening_cases import CaseStore
from services.storage.settings import SettingsStore
from services.storage.uploads import UploadStore

log = logging.getLogger("retouch")

EXTENSIONS = (
    "cogs.edit",
    "cogs.quota",
    "cogs.settings",
    "cogs.remix",
    "cogs.privacy",
    "cogs.regions",
    "cogs.outpaint",
    "cogs.jobs",
    "cogs.appeals",
)
COMMAND_DIGEST_KEY = "global_command_digest"
# The server DEV_GUILD_ID last synced commands to: its copies are cleared when the commands go global.
DEV_GUILD_KEY = "dev_guild_synced"
# On SIGTERM, edits in flight get this long to finish before they are cancelled and refunded
# (docker stop waits 10 s by default before SIGKILL; `stop_grace_period` can raise both).
SHUTDOWN_GRACE_SECONDS = 8.0
# Until Discord first answers, how long to wait between tries (doubling); discord.py takes over after that.
CONNECT_BACKOFF_SECONDS = (1.0, 60.0)
# A PostgreSQL that refuses connections may be starting (a stack starting together): tries and the first wait
# (doubling, at most ten times the first), about a minute in all before the bot gives up.
DATABASE_TRIES = 10
DATABASE_BACKOFF_SECONDS = 1.0
# What the invite asks for: read and post in channels, with files and embeds (audit log), and read the
# message history (Remix and Reroll fetch the source message). Delete removes the bot's own messages only.
# Connections to Discord's API open at once, for every shard of the process. discord.py sets no limit and opens one
# per request in flight: a burst of 100 interactions left 100 idle connections and their buffers behind (≈ 50 KB
# each). Discord's 50 requests a second need a handful; the answers to 100 interactions at once wait milliseconds.
DISCORD_CONNECTIONS = 16
# Connections open at once to each other host (the Model Hub, Discord's CDN) beyond one for every upstream slot.
SPARE_CONNECTIONS_PER_HOST = 16

INVITE_SCOPES = ("bot", "applications.commands")
# discord.utils.oauth_url has no integration type; Discord's installation link for a user (Application
# resource, "Installation Context"): `/edit` and the members' commands in DMs and servers without the bot.
USER_INSTALL_URL = (
    "https://discord.com/oauth2/authorize?client_id={client_id}&integration_type=1&scope=applications.commands"
)
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    attach_files=True,
    embed_links=True,
    read_message_history=True,
)


class StartupError(Exception):
    """Something the bot needs could not be opened; the message names it and the variable behind it."""


def discord_connector() -> aiohttp.TCPConnector:
    """The pool of connections to Discord's API (DISCORD_CONNECTIONS); made on the running loop."""
    return aiohttp.TCPConnector(limit=DISCORD_CONNECTIONS)


class RetouchTree(app_commands.CommandTree["RetouchBot"]):
    """The last error layer: the one failure report (a no-op when a cog's handler already told the member).

    A command marked ACKNOWLEDGED_FIRST is deferred before discord.py parses its options, and its work waits
    while other interactions are still arriving or being answered (`AcknowledgementsFirst`): in a burst, a
    member's acknowledgement waits for the earlier members' acknowledgements only, as it would with a bot that
    does nothing else.
    """

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        data = interaction.data
        if interaction.type is not discord.InteractionType.application_command or data is None:
            return True  # autocomplete too: it is answered with choices, never deferred
        name = data.get("name")
        command = self.get_command(name) if isinstance(name, str) and data.get("type", 1) == 1 else None
        if command is None or not command.extras.get(ACKNOWLEDGED_FIRST):
            return True
        try:
            await defer_thinking(interaction)
        except discord.HTTPException as exc:
            # Unacknowledged, the interaction can carry no word to the member (40060: another process answered it).
            log.warning("Discord refused to acknowledge /%s (HTTP %s, code %s)", command.name, exc.status, exc.code)
            return False
        await self.client.acknowledgements.wait()
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_failure(interaction, error)


def interaction_kind(interaction: discord.Interaction) -> str:
    """The metrics' name for what the member did (`INTERACTION_KINDS`)."""
    kind = interaction.type
    if kind is discord.InteractionType.application_command:
        chat_input = interaction.data is None or interaction.data.get("type", 1) == 1
        return "command" if chat_input else "message_menu"
    if kind is discord.InteractionType.autocomplete:
        return "autocomplete"
    if kind is discord.InteractionType.modal_submit:
        return "modal"
    if kind is discord.InteractionType.component:
        button = interaction.data is not None and interaction.data.get("component_type") == 2
        return "button" if button else "select"
    return "unknown"


class RetouchBot(commands.AutoShardedBot):
    """The bot, holding the services `main()` opened for it; runs the shards SHARD_COUNT/SHARD_IDS say."""

    def __init__(
        self,
        *,
        config: Config,
        session: aiohttp.ClientSession,
        database: Database,
        hub: ModelHubClient,
        queue: JobQueue,
        metrics: Metrics,
        force_sync: bool = False,
        painter_tokens: PainterTokens | None = None,
        screener: ScreeningClient | None = None,
    ) -> None:
        # A bot without voice needs neither PyNaCl nor davey: discord.py's start-up warnings about them are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),  # no privileged intents: everything runs on interactions
            tree_cls=RetouchTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=config.shard_count,
            # None (all shards) is discord.py's own default, though its stubs say list[int]
            shard_ids=list(config.shard_ids) if config.shard_ids is not None else None,  # type: ignore[arg-type]
            http_trace=metrics.discord_trace(),  # times every answer to an interaction
            connector=discord_connector(),
        )
        self.config = config
        self.session = session
        self.database = database
        self.hub = hub
        self.queue = queue
        self.metrics = metrics
        self.painter_tokens = painter_tokens  # the browser painter's links (the region panel offers them)
        self.models = ModelCatalog(hub, config.edit_models)
        self.quota = QuotaStore(
            database,
            config.default_quota,
            personal_rule=config.personal_quota,
            personal_budget=config.personal_budget,
        )
        self.settings = SettingsStore(database)
        self.jobs = JobStore(database)
        self.claims = ClaimStore(database)
        self.privacy = PrivacyStore(
            database, retention_days=config.retention_days, forget_guild_after_days=config.forget_guild_after_days
        )
        self.rejections = RejectionTracker()
        self.cases = CaseStore(database)
        downloader = PictureDownloader(session, config.max_input_bytes)
        self.downloader = downloader  # Show (`/jobs`) downloads a result again
        self.edits = EditService(
            queue=queue,
            quota=self.quota,
            jobs=self.jobs,
            hub=hub,
            downloader=downloader,
            models=self.models,
            max_input_bytes=config.max_input_bytes,
            rejections=self.rejections,
            observer=metrics,
            progress_interval=config.progress_interval_seconds,
            screening=Screening(screener, metrics) if screener is not None else None,
            cases=self.cases,
        )
        # Shared by the extensions, the result buttons and the painter: built here, once, and never looked up
        # by name (an extension's module is loaded afresh, so nothing imports one).
        self.remixing = RemixRules(
            settings=self.settings,
            jobs=self.jobs,
            claims=self.claims,
            owner=database.instance_id,
            refresh=partial(refreshed_url, self.http),
        )
        self.region_pictures = RegionPictures(
            rules=self.remixing,
            downloader=downloader,
            look_up=partial(message_pictures, self),
            uploads=UploadStore(database),
        )
        self.acknowledgements = AcknowledgementsFirst()
        self._servers_frozen = False  # their caches go out of the collector once, at the first ready
        self.runner = EditRunner(
            client=self,
            edits=self.edits,
            jobs=self.jobs,
            settings=self.settings,
            remixing=self.remixing,
            regions=self.region_pictures,
            default_model=config.default_model,
            no_channel_deadline=config.no_channel_deadline_seconds,
            acknowledgements=self.acknowledgements,
        )
        self.result_actions = ResultActions()  # the extensions register what each result button does
        self.appeal_desk: AppealDesk | None = None  # the appeals extension, while it is loaded
        self.painter = BotPainter(
            self, self.runner, self.region_pictures, self.settings, wait_seconds=config.painter_wait_seconds
        )
        self._force_sync = force_sync

    async def setup_hook(self) -> None:
        # On PostgreSQL the periodic sweep (cogs/edit.py) returns them, once a process has been gone for its grace:
        # one found without its lock at this very moment may only be reconnecting (the server just restarted).
        if self.database.dialect == "sqlite":
            returned = await self.quota.release_orphaned()
            if returned:
                log.info("Returned %d reservation(s) left behind by an earlier process", returned)
        # The buttons under results from any earlier run come back to this process.
        self.add_dynamic_items(ResultButton, PageButton, ShowButton)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.tree.set_translator(RetouchTranslator())
        await self.sync_commands()
        # What is alive now (modules, the command tree, the extensions) lives as long as the process. Frozen out of the
        # collector, it is no longer walked by every full collection, whose pause (50-60 ms here, then about 10) holds
        # up every interaction arriving meanwhile. Collected first, before any interaction, so no garbage is kept.
        gc.collect()
        gc.freeze()

    async def sync_commands(self, *, force: bool = False) -> None:
        """Sync to DEV_GUILD_ID when set; globally only when the command set changed or when forced."""
        dev_guild = self.config.dev_guild_id
        await self._clear_stale_dev_guild(keep=dev_guild)
        if dev_guild is not None:
            if force or self._force_sync:
                log.warning("DEV_GUILD_ID is set: the commands go to that server only; unset it to sync globally")
            guild = discord.Object(dev_guild)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.Forbidden as exc:
                # 403 Missing Access: the bot is not in that server, or was invited without the scope.
                raise ConfigError(
                    f"DEV_GUILD_ID: Discord refused to sync the commands to server {dev_guild} "
                    f"(HTTP {exc.status}: {exc.text}); invite the bot there with the applications.commands "
                    "scope (see `python bot.py check`), or unset DEV_GUILD_ID."
                ) from None
            await self.database.set_meta(DEV_GUILD_KEY, str(dev_guild))
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

    async def _clear_stale_dev_guild(self, *, keep: int | None) -> None:
        """Remove the copies an earlier DEV_GUILD_ID left in its server, or every command would show twice there."""
        stale = await self.database.get_meta(DEV_GUILD_KEY)
        if not stale or int(stale) == keep:
            return
        guild = discord.Object(int(stale))
        self.tree.clear_commands(guild=guild)
        try:
            await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:  # the bot left that server: nothing of it shows there any more
            log.warning("Could not clear the commands of the former development server %s (HTTP %d)", stale, exc.status)
        else:
            log.info("Cleared the commands of the former development server %s", stale)
        await self.database.set_meta(DEV_GUILD_KEY, "")

    async def close(self) -> None:
        """Stop taking edits, let those in flight finish (or cancel and refund them), then disconnect."""
        if not self.is_closed():
            self.queue.close()
            if self.queue.in_line:
                log.info("Shutting down: waiting for %d edit(s) in flight", self.queue.in_line)
            await self.queue.drain(SHUTDOWN_GRACE_SECONDS)
        await super().close()

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Dispatched as the interaction arrives; its answer is timed when Discord accepts it (discord_trace).
        self.acknowledgements.arrived(interaction.response.is_done)
        created = interaction.created_at.timestamp()
        self.metrics.interaction_received(interaction.id, interaction_kind(interaction), created)

    async def on_ready(self) -> None:
        log.info("Logged in as %s (%s) in %d server(s)", self.user, self.user and self.user.id, len(self.guilds))
        if not self._servers_frozen:
            gc.freeze()  # the servers' caches, as the start-up heap in setup_hook; no collection: one would pause
            self._servers_frozen = True


def readiness_checks(bot: RetouchBot, database: Database) -> dict[str, Callable[[], Awaitable[str | None]]]:
    """What /readyz asks: every shard this process owns is connected, the database answers, the IONOS token works."""

    async def gateway() -> str | None:
        if not bot.is_ready():
            return "not connected to Discord yet"
        owned = bot.shard_ids or range(bot.shard_count or 1)
        down = [shard for shard in owned if (info := bot.get_shard(shard)) is None or info.is_closed()]
        return f"shard(s) {', '.join(map(str, down))} not connected" if down else None

    async def database_answers() -> str | None:
        await database.fetch_value("SELECT 1")
        return None

    async def model_hub() -> str | None:
        return "IONOS_API_TOKEN was refused by the Model Hub" if bot.models.token_refused else None

    return {"gateway": gateway, "database": database_answers, "model_hub": model_hub}


def watch(metrics: Metrics, bot: RetouchBot, queue: JobQueue, pacer: ImagePacer) -> None:
    """Point the gauges that read live state at the objects holding it."""
    metrics.watch_queue(lambda: len(queue.order()))
    metrics.watch_pacer(lambda: pacer_images_available(pacer))
    metrics.watch_gateway(lambda: bot.latencies)


def unreachable(exc: Exception) -> str:
    """Why a connection failed, in a few words (no traceback: this is the operator's network, not a bug)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno == errno.ECONNREFUSED:
            return "connection refused"
        return os.strerror(exc.os_error.errno).lower() if exc.os_error.errno else "connection failed"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return type(exc).__name__


async def wait_for_discord(session: aiohttp.ClientSession, bot: RetouchBot) -> None:
    """Until Discord's API answers at all: one line per failed try, doubling the wait up to a cap."""
    url = f"{discord.http.Route.BASE}/gateway"
    delay, cap = CONNECT_BACKOFF_SECONDS
    while not bot.is_closed():
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)):
                return  # any answer will do: the token is checked by the login that follows
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "Cannot reach Discord at %s (%s); retrying in %.0f s", urlsplit(url).netloc, unreachable(exc), delay
            )
        for _ in range(int(delay / 0.25)):  # in short steps, so a signal during the wait ends it promptly
            if bot.is_closed():
                return
            await asyncio.sleep(0.25)
        delay = min(cap, delay * 2)


def database_place(url: str) -> str:
    """Where DATABASE_URL points, without its password: `PostgreSQL at host:port` or `the SQLite file path`."""
    if url.startswith("sqlite:///"):
        return f"the SQLite file {url.removeprefix('sqlite:///')}"
    parts = urlsplit(url)
    return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}"


def database_failure(exc: BaseException) -> str:
    """A driver's failure in a few words (no traceback: it is the operator's set-up, not a bug)."""
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Database]:
    """Open the database, waiting for a PostgreSQL that is still starting; a StartupError naming DATABASE_URL."""
    delay = DATABASE_BACKOFF_SECONDS
    for attempt in range(1, DATABASE_TRIES + 1):
        try:
            database = await open_database(url, sole=True)
            log.info("Database: %s", database_place(url))
            break
        except DatabaseInUse as exc:
            raise StartupError(str(exc)) from None
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
            if url.startswith("sqlite:///") or attempt == DATABASE_TRIES:
                raise StartupError(
                    f"DATABASE_URL: cannot open {database_place(url)} ({database_failure(exc)})"
                ) from None
            log.warning(
                "Cannot connect to %s (%s); retrying in %.0f s (try %d of %d)",
                database_place(url),
                database_failure(exc),
                delay,
                attempt,
                DATABASE_TRIES,
            )
            await asyncio.sleep(delay)
            delay = min(10 * DATABASE_BACKOFF_SECONDS, delay * 2)
        except (sqlite3.Error, asyncpg.PostgresError) as exc:  # refused for good: password, database name, file
            raise StartupError(f"DATABASE_URL: cannot open {database_place(url)} ({database_failure(exc)})") from None
    try:
        yield database
    finally:
        await database.close()


async def main(
    config: Config, *, force_sync: bool = False, on_started: Callable[[RetouchBot], None] | None = None
) -> None:
    """Open the services, run the bot until it is closed or signalled, then close in a fixed order."""
    return_large_blocks()  # before any picture is allocated: freed pictures must not stay resident
    metrics = Metrics()
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, limit_per_host=config.max_concurrent_edits + SPARE_CONNECTIONS_PER_HOST
            )
        ) as session,
        open_store(config.database_url) as database,
    ):
        pacer = open_pacer(database, config.upstream_images_per_minute, config.upstream_image_burst)
        hub = ModelHubClient(
            session,
            config.model_hub_url,
            config.ionos_api_token,
            deadline=config.upstream_deadline_seconds,
            backoff_base=config.upstream_backoff_seconds,
            pacer=pacer,
            observer=metrics,
        )
        queue = JobQueue(config.max_concurrent_edits, pacer, max_per_guild=config.max_queued_per_server)
        # Screening checks spend the contract's request rate (a request is one "image" of that bucket), not its images.
        requests = open_pacer(
            database,
            config.upstream_requests_per_second * 60,
            config.upstream_request_burst,
            name=REQUEST_BUCKET_NAME,
        )
        screener = ScreeningClient(
            session,
            config.model_hub_url,
            config.ionos_api_token,
            config.screening_model,
            timeout=config.screening_timeout_seconds,
            pacer=requests,
            observer=metrics,
        )
        painter_tokens = await PainterTokens.open(database, config.painter_secret)
        async with RetouchBot(
            config=config,
            session=session,
            database=database,
            hub=hub,
            queue=queue,
            metrics=metrics,
            force_sync=force_sync,
            painter_tokens=painter_tokens,
            screener=screener,
        ) as bot:
            watch(metrics, bot, queue, pacer)
            checking = asyncio.create_task(bot.models.warm())
            web = WebServer(metrics, readiness_checks(bot, database))
            painter = Listener("Browser painter (/paint)", "PAINTER_PORT")
            add_painter_routes(painter.app, painter_tokens, bot.painter, mount=public_path(config.public_url))
            try:
                if config.http_port:
                    await web.start(config.http_host, config.http_port)
                if config.public_url:
                    await painter.start(config.painter_host or config.http_host, config.painter_port)
                if on_started is not None:
                    on_started(bot)
                await wait_for_discord(session, bot)
                if not bot.is_closed():
                    await bot.start(config.discord_token.reveal())
            finally:
                await painter.close()
                checking.cancel()
                await web.close()
    # Closed in reverse order of opening: the HTTP endpoint, the bot (gateway, pending work), the database,
    # the HTTP session.


def close_on_signals(bot: RetouchBot) -> None:
    """SIGTERM (docker stop) and SIGINT close the bot, so `main()` unwinds in order and exits 0."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.create_task(bot.close()))


class CheckReport:
    """`python bot.py check`: one line per check; `failed` when any did not pass."""

    def __init__(self) -> None:
        self.failed = False

    def passed(self, what: str, detail: str) -> None:
        print(f"ok    {what}: {detail}")

    def fail(self, what: str, detail: str) -> None:
        self.failed = True
        print(f"FAIL  {what}: {detail}")


async def check_database(config: Config, report: CheckReport, scrub: Scrubber) -> None:
    try:
        async with open_database(config.database_url) as database:
            version = await database.schema_version()
    except Exception as exc:  # any driver's failure is an operator's to read, minus the password
        report.fail("database", f"could not open DATABASE_URL: {scrub(f'{type(exc).__name__}: {exc}')}")
    else:
        report.passed("database", f"{database.dialect} opened and migrated (schema version {version})")


async def check_discord(config: Config, session: aiohttp.ClientSession, report: CheckReport) -> None:
    url = f"{discord.http.Route.BASE}/users/@me"
    headers = {"Authorization": f"Bot {config.discord_token.reveal()}"}
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as response:
            status, body = response.status, await response.json(content_type=None) if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        report.fail("Discord", f"cannot reach {urlsplit(url).netloc} ({unreachable(exc)}); check the network")
        return
    if status in (401, 403):
        report.fail("Discord", f"DISCORD_TOKEN was refused (HTTP {status}); set it to the bot token")
        return
    if status != 200 or not isinstance(body, dict) or "id" not in body:
        report.fail("Discord", f"GET /users/@me answered HTTP {status}; try again later")
        return
    report.passed("Discord", f"DISCORD_TOKEN logs in as {body.get('username')} ({body['id']})")
    invite = discord.utils.oauth_url(body["id"], permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)
    print(f"      invite: {invite}")
    # A user install ("integration_type=1") takes the commands scope only: Retouch then answers through interactions.
    print(f"      user install: {USER_INSTALL_URL.format(client_id=body['id'])}")
    if config.dev_guild_id is not None:
        await check_dev_guild(config.dev_guild_id, body["id"], session, headers, report)


async def check_dev_guild(
    guild_id: int, application_id: str, session: aiohttp.ClientSession, headers: dict[str, str], report: CheckReport
) -> None:
    """Whether `run` could sync the commands to DEV_GUILD_ID: reading them there needs what writing them needs."""
    url = f"{discord.http.Route.BASE}/applications/{application_id}/guilds/{guild_id}/commands"
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.fail("DEV_GUILD_ID", f"cannot reach {urlsplit(url).netloc} ({unreachable(exc)}); check the network")
        return
    if status == 200:
        report.passed("DEV_GUILD_ID", f"the commands can be synced to server {guild_id}")
    elif status in (403, 404):
        report.fail(
            "DEV_GUILD_ID",
            f"Discord refused the commands of server {guild_id} (HTTP {status}): the bot is not in it or lacks the "
            "applications.commands scope; invite it there with the URL above, or unset DEV_GUILD_ID",
        )
    else:
        report.fail("DEV_GUILD_ID", f"GET the commands of server {guild_id} answered HTTP {status}; try again later")


async def check_model_hub(config: Config, session: aiohttp.ClientSession, report: CheckReport) -> None:
    hub = ModelHubClient(session, config.model_hub_url, config.ionos_api_token, deadline=30, max_attempts=2)
    try:
        listed = set(await hub.list_models())
    except ModelHubAuthenticationError:
        report.fail("Model Hub", "IONOS_API_TOKEN was refused; set it to an AI Model Hub token")
        return
    except ModelHubError as exc:
        report.fail("Model Hub", f"MODEL_HUB_URL ({config.model_hub_url}) did not list models: {exc}")
        return
    report.passed("Model Hub", f"IONOS_API_TOKEN lists {len(listed)} models at {config.model_hub_url}")
    if config.default_model not in listed:
        report.fail("models", f"DEFAULT_MODEL {config.default_model} is not listed by the Model Hub")
    missing = [model for model in config.edit_models if model not in listed]
    if missing:
        report.fail("models", f"EDIT_MODELS names models the Model Hub does not list: {', '.join(missing)}")
    if config.default_model in listed and not missing:
        report.passed("models", f"DEFAULT_MODEL and EDIT_MODELS ({', '.join(config.edit_models)}) are listed")


async def check(config: Config) -> bool:
    """Every check, in order; True when all passed."""
    report = CheckReport()
    report.passed("configuration", "every variable read and valid")
    await check_database(config, report, Scrubber(secret_values(config)))
    async with aiohttp.ClientSession() as session:
        await check_discord(config, session, report)
        await check_model_hub(config, session, report)
    return not report.failed


def secret_values(config: Config) -> Iterator[str]:
    """Every secret the configuration holds, to be scrubbed from every log line."""
    yield config.discord_token.reveal()
    yield config.ionos_api_token.reveal()
    if password := url_password(config.database_url):
        yield password
    if config.painter_secret is not None:
        yield config.painter_secret.reveal()
    if config.database_password is not None:
        yield config.database_password.reveal()


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=("run", "sync", "check"),
        default="run",
        help="run the bot (default); run it and sync the slash commands globally now; or check the configuration",
    )
    parser.add_argument("--sync", action="store_true", help="the same as the sync command")
    args = parser.parse_args()
    try:
        config = load_config()
    except ConfigError as exc:
        prefix = "FAIL  configuration: " if args.command == "check" else "Configuration error: "
        for message in exc.messages:
            print(prefix + message, file=sys.stderr)
        return 2
    if args.command == "check":
        # Libraries' INFO lines would interleave with the report: only their warnings show.
        setup_logging(level="WARNING", log_format=config.log_format, secrets=secret_values(config))
        return 0 if asyncio.run(check(config)) else 1
    setup_logging(
        level=config.log_level, log_format=config.log_format, secrets=secret_values(config), levels=config.log_levels
    )
    # From here on every failure is one log line, through the scrubbing formatter (text or JSON).
    try:
        asyncio.run(main(config, force_sync=args.sync or args.command == "sync", on_started=close_on_signals))
    except discord.LoginFailure:
        log.error("Configuration error: DISCORD_TOKEN was refused by Discord; check the bot token.")
        return 2
    except ConfigError as exc:
        log.error("Configuration error: %s", exc)
        return 2
    except WebServerError as exc:
        log.error("Configuration error: %s", exc)
        return 2
    except StartupError as exc:
        log.error("Start-up error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
