""":class:`DiscordEmulator`: the parts (world, CDN, REST, commands, messages, interaction webhooks,
injection, gateway) composed into one server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import itertools
import secrets
import time
from collections.abc import Iterable, Iterator

from aiohttp import web

from .cdn import Cdn
from .commands import Commands
from .gateway import Gateway
from .interactions import Injection
from .messages import Messages
from .protocol import API_PREFIX, DISCORD_EPOCH_MS, MIB, IntegrationType
from .rest import INVALID_REQUEST_LIMIT, Rest
from .webhooks import Webhooks
from .world import World


class DiscordEmulator(World, Cdn, Rest, Commands, Messages, Webhooks, Injection, Gateway):
    """A Discord (REST + gateway + CDN) on 127.0.0.1 for the real discord.py client.

    Use ``async with DiscordEmulator() as emu:`` and log the bot in inside ``emu.patch_discord()``.
    Default world: one guild (``guild_id``, boost tier 0) with text channels ``channel_id`` and
    ``other_channel_id``, roles @everyone / Moderator (Manage Server) / Member, and users
    ``member``, ``moderator``, ``other_member`` and ``owner`` (the guild owner).  The bot user's id
    is ``application_id``.  :meth:`add_guild` (also a server without the bot), :meth:`add_channel`,
    :meth:`add_role`, :meth:`add_member`, :meth:`set_overwrite`, :meth:`add_dm_channel` (the bot's
    DM) and :meth:`add_private_channel` (a DM or group DM between users) build more.

    ``response_deadline`` is the time (s) the bot has for the initial response;
    ``attachment_size_limit`` the default ``attachment_size_limit`` of injected interactions (the
    bot's own channel messages are limited by the guild's boost tier instead).
    ``privileged_intents`` are the privileged intents enabled for the application (default none).
    ``invalid_request_limit`` the number of 401/403/429 answers in 10 minutes that gets the client
    banned; ``rate_limit`` the ``(requests, seconds)`` of the route buckets whose size nobody measured
    (the measured ones are in ``rest.ROUTE_RATE_LIMITS``; ``global_rate_limit`` is the 50/s of all
    non-interaction requests); ``recommended_shards`` what ``GET /gateway/bot`` recommends;
    ``install_types`` how the application may be installed (new applications: to servers and to
    users; a command's null ``integration_types`` means these).  Times are emulator times: wall
    clock + ``clock_offset`` (see :meth:`advance`).

    Records: ``calls`` (every REST request, in arrival order), ``messages`` (every existing message
    by id, incl. ephemeral ones), ``cdn_hits`` (request paths fetched from the CDN), ``commands`` /
    ``global_sync_count`` / ``guild_sync_count``, ``identify_count`` / ``resume_count`` /
    ``sessions`` and ``ready`` (set once an IDENTIFY got its guilds), ``rate_limited_count``,
    ``invalid_request_count`` and ``banned``.
    """

    def __init__(
        self,
        *,
        token: str = "discord-test-token",
        response_deadline: float = 3.0,
        attachment_size_limit: int = 10 * MIB,
        privileged_intents: int = 0,
        invalid_request_limit: int = INVALID_REQUEST_LIMIT,
        rate_limit: tuple[int, float] = (50, 1.0),
        recommended_shards: int = 1,
        install_types: Iterable[IntegrationType] = (IntegrationType.GUILD_INSTALL, IntegrationType.USER_INSTALL),
    ) -> None:
        self.token = token
        self.install_types = frozenset(IntegrationType(kind) for kind in install_types)
        self.response_deadline = response_deadline
        self.attachment_size_limit = attachment_size_limit
        self.privileged_intents = privileged_intents
        self.clock_offset: float = 0.0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._base = ""
        self._init_world()
        self._init_cdn(secrets.token_bytes(32))
        self._init_rest(
            invalid_request_limit=invalid_request_limit, rate_limit=rate_limit, recommended_shards=recommended_shards
        )
        self._init_commands()
        self._init_messages()
        self._init_webhooks()
        self._init_gateway()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Starts the server on 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_get("/cdn/{tail:.*}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"{host}:{port}"

    async def close(self) -> None:
        """Closes every gateway connection and stops the server."""
        self._closing.set()
        for socket in list(self._sockets):
            await socket.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def rest_base(self) -> str:
        return f"http://{self._base}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._base}/gateway"

    @property
    def cdn_base(self) -> str:
        return f"http://{self._base}/cdn"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Points discord.py's REST base, default gateway and asset CDN at this emulator."""
        import discord.asset
        import discord.gateway
        import discord.http
        import yarl

        saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE)
        discord.http.Route.BASE = self.rest_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        discord.asset.Asset.BASE = self.cdn_base
        try:
            yield
        finally:
            (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE) = (
                saved
            )

    def now(self) -> float:
        """The emulator's notion of the current unix time (wall clock + ``clock_offset``)."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Moves the emulator's clock forward (token lifetimes, URL expiry, the invalid-request window)."""
        self.clock_offset += seconds

    def _snowflake(self) -> int:
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)
