"""The browser painter's backend: what its routes (services/painter_web.py) ask of the bot.

A painter link stands for a member, a channel and a picture, with no interaction behind it. The edit runs
through the region cog's own path (Remix's rules, the one check, the queue, the quota, the credit) with a
stand-in for the interaction whose token counts as long dead: the results go to the channel as messages
mentioning the member (`ResultPoster`'s channel path), and the page is told what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import discord

from cogs.failures import RetouchError, render
from cogs.regions import PictureRef, RegionCog, RegionTarget
from services import words
from services.limits import MAX_COUNT, MIN_COUNT
from services.painter_tokens import PainterClaim
from services.painter_web import LINK_UNAVAILABLE, PainterAnswer, PainterDefaults, PainterUnavailableError
from services.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

# How long the page waits for the edit before it says "in line" (the result is posted in the channel anyway).
PAINTER_WAIT_SECONDS = 20.0


class _Answered:
    """A response that can carry nothing more: the request came by a link, not by an interaction."""

    def is_done(self) -> bool:
        return True

    async def defer(self, **kwargs: Any) -> None:
        return None


class LinkRequest:
    """What the edit path reads of an interaction, for a member who submitted on a painter link.

    There is no interaction token: it counts as long dead, so nothing is said ephemerally and the results are
    posted in the channel, mentioning the member.
    """

    def __init__(
        self,
        bot: RetouchBot,
        guild: discord.Guild,
        channel: discord.abc.GuildChannel | discord.Thread,
        member: discord.Member,
    ) -> None:
        now = discord.utils.utcnow()
        self.client = bot
        self.id = discord.utils.time_snowflake(now)
        self.created_at = now - timedelta(days=1)
        self.guild, self.guild_id = guild, guild.id
        self.channel, self.channel_id = channel, channel.id
        self.user = member
        self.locale = self.guild_locale = guild.preferred_locale
        self.permissions = channel.permissions_for(member)
        self.app_permissions = channel.permissions_for(guild.me)
        self.filesize_limit = guild.filesize_limit
        self.extras: dict[str, Any] = {}
        self.response = _Answered()
        self.message = None
        self.command = None
        self.data = None

    def as_interaction(self) -> discord.Interaction:
        return cast(discord.Interaction, self)


class BotPainter:
    """`PainterBackend` for the bot: the picture through the region cog, its defaults, and the edit."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self._running: set[asyncio.Task[None]] = set()

    async def fetch_picture(self, claim: PainterClaim) -> bytes:
        regions, target = await self._target(claim)
        try:
            return await regions.picture_bytes(target)
        except RetouchError as exc:
            raise PainterUnavailableError(exc.text) from None

    async def defaults(self, claim: PainterClaim) -> PainterDefaults:
        _, target = await self._target(claim)
        settings = await self.bot.settings.get(claim.guild_id) if claim.guild_id is not None else None
        max_count = min(MAX_COUNT, settings.max_count) if settings is not None else MAX_COUNT
        return PainterDefaults(target.parent.prompt if target.parent else "", MIN_COUNT, max_count)

    async def submit(self, claim: PainterClaim, mask_png: bytes, prompt: str, count: int) -> PainterAnswer:
        try:
            request, regions, ref = await self._request(claim), self._regions(), _ref_of(claim)
        except RetouchError as exc:
            return PainterAnswer("refused", exc.text)
        except PainterUnavailableError as exc:
            return PainterAnswer("refused", exc.message)
        editing = regions.edit_region(request.as_interaction(), ref, prompt, str(count), mask_png)
        task: asyncio.Task[None] = asyncio.create_task(editing)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            done, _ = await asyncio.wait({task}, timeout=PAINTER_WAIT_SECONDS)
        finally:
            if not task.done():  # the page stopped waiting (the time is up, or the browser went away)
                task.add_done_callback(lambda finished: self._told_late(request, finished))
        if not done:
            return PainterAnswer("queued", Text(words.PAINTER_QUEUED))
        try:
            task.result()
        except RetouchError as exc:
            return PainterAnswer("refused", exc.text)
        return PainterAnswer("posted", Text(words.PAINTER_POSTED))

    def _told_late(self, request: LinkRequest, task: asyncio.Task[None]) -> None:
        """An edit the page no longer waits for failed: the member is told in the channel."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        if not isinstance(error, RetouchError):
            log.error("A painter edit failed unexpectedly", exc_info=error)
            return
        content = f"{request.user.mention} {render(request.as_interaction(), error.text)}"
        channel = request.channel
        if isinstance(channel, discord.abc.Messageable):
            sending = asyncio.create_task(self._send(channel, content, request.user))
            self._running.add(sending)
            sending.add_done_callback(self._running.discard)

    @staticmethod
    async def _send(channel: discord.abc.Messageable, content: str, member: discord.Member) -> None:
        with contextlib.suppress(discord.HTTPException):
            await channel.send(content, allowed_mentions=discord.AllowedMentions(users=[member]))

    def _regions(self) -> RegionCog:
        # By name: the extension's module is loaded afresh, so its class is not the one imported here.
        cog = cast("RegionCog | None", self.bot.get_cog("RegionCog"))
        if cog is None:
            raise PainterUnavailableError(Text(words.REMIX_UNAVAILABLE))
        return cog

    async def _target(self, claim: PainterClaim) -> tuple[RegionCog, RegionTarget]:
        regions = self._regions()
        try:
            target = await regions.target_of(_ref_of(claim), claim.channel_id)
        except RetouchError as exc:
            raise PainterUnavailableError(exc.text) from None
        if not claim.is_for_picture(target.picture.url):
            raise PainterUnavailableError(Text(LINK_UNAVAILABLE))
        return regions, target

    async def _request(self, claim: PainterClaim) -> LinkRequest:
        """The member, the server and the channel of the link, as they are now."""
        guild = self.bot.get_guild(claim.guild_id) if claim.guild_id is not None else None
        channel = guild.get_channel_or_thread(claim.channel_id) if guild is not None else None
        if guild is None or channel is None or isinstance(channel, discord.CategoryChannel | discord.ForumChannel):
            raise RetouchError(Text(LINK_UNAVAILABLE))
        member = guild.get_member(claim.member_id)
        if member is None:
            try:
                member = await guild.fetch_member(claim.member_id)
            except discord.NotFound:
                raise RetouchError(Text(words.PAINTER_NOT_MEMBER)) from None
        return LinkRequest(self.bot, guild, channel, member)


def _ref_of(claim: PainterClaim) -> PictureRef:
    if claim.job_id is not None:
        return PictureRef("j", claim.job_id, claim.attachment_id or 0)
    if claim.message_id is not None:
        return PictureRef("m", claim.message_id, claim.attachment_id or 0)
    raise PainterUnavailableError(Text(LINK_UNAVAILABLE))
