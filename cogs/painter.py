"""The browser painter's backend: what its routes (services/outside/painter_web.py) ask of the bot.

A painter link stands for a member, a channel and a picture, with no interaction behind it. The edit runs
through the edit runner's region flow (Remix's rules, the one check, the queue, the quota, the credit) with
a `PainterReply`: the results go to the channel as messages mentioning the member, and the page is told
what happened; a refusal the page no longer waits for is told the member in a DM, never in the channel.
"""

from __future__ import annotations

import asyncio
import logging

import discord

from cogs.reply import ChannelReply, member_reply
from cogs.runner import EditRunner
from services.domain.region_pictures import PictureRef, RegionPictures, RegionTarget
from services.imaging.limits import MAX_COUNT, MIN_COUNT
from services.outside.painter_tokens import PainterClaim
from services.outside.painter_web import LINK_UNAVAILABLE, PainterAnswer, PainterDefaults
from services.storage.settings import SettingsStore
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)


# Channels a painter's results can be posted in.
_PostableChannel = discord.TextChannel | discord.VoiceChannel | discord.StageChannel | discord.Thread


class PainterReply(ChannelReply):
    """A painter link's member in its channel: the results are posted there, anything else is told in a DM."""

    async def tell(self, text: Text, view: discord.ui.View | None = None) -> None:
        # A refusal (content policy, quota, screening) is the member's business: never said in the channel.
        channel_id = self.channel_id or 0
        told = Text(words.PAINTER_TOLD, channel=channel_id, reason=text).render(self.locale)
        try:
            await self.member.send(told, view=view or discord.utils.MISSING)
        except discord.HTTPException as exc:
            log.warning(
                "Could not tell user %s in a DM (HTTP %s); nothing is said in public", self.member.id, exc.status
            )


class BotPainter:
    """`PainterBackend` for the bot: the picture, its defaults, and the edit through the runner."""

    def __init__(
        self,
        client: discord.Client,
        runner: EditRunner,
        regions: RegionPictures,
        settings: SettingsStore,
        *,
        wait_seconds: float = 20.0,
    ) -> None:
        self._client = client
        self._wait_seconds = wait_seconds  # how long the page waits for the edit before it says "in line"
        self._runner = runner
        self._regions = regions
        self._settings = settings
        self._running: set[asyncio.Task[None]] = set()

    async def fetch_picture(self, claim: PainterClaim) -> bytes:
        return await self._regions.picture_bytes(await self._target(claim))

    async def defaults(self, claim: PainterClaim) -> PainterDefaults:
        target = await self._target(claim)
        settings = await self._settings.get(claim.guild_id) if claim.guild_id is not None else None
        max_count = min(MAX_COUNT, settings.max_count) if settings is not None else MAX_COUNT
        return PainterDefaults(target.parent.prompt if target.parent else "", MIN_COUNT, max_count)

    async def submit(self, claim: PainterClaim, mask_png: bytes, prompt: str, count: int) -> PainterAnswer:
        try:
            reply, ref = await self._reply(claim), _ref_of(claim)
        except Refusal as refusal:
            return PainterAnswer("refused", refusal.text)
        task = self._keep(asyncio.create_task(self._runner.edit_region(reply, ref, prompt, str(count), mask_png)))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._wait_seconds)
        finally:
            if not task.done():  # the page stopped waiting (the time is up, or the browser went away)
                task.add_done_callback(lambda finished: self._told_late(reply, finished))
        if not done:
            return PainterAnswer("queued", Text(words.PAINTER_QUEUED))
        try:
            task.result()
        except Refusal as refusal:
            return PainterAnswer("refused", refusal.text)
        return PainterAnswer("posted", Text(words.PAINTER_POSTED))

    def _keep(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Hold a task of this painter's until it ends (the loop keeps only weak references)."""
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def _told_late(self, reply: ChannelReply, task: asyncio.Task[None]) -> None:
        """An edit the page no longer waits for failed: the member is told privately."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        if not isinstance(error, Refusal):
            log.error("A painter edit failed unexpectedly", exc_info=error)
            return
        self._keep(asyncio.create_task(reply.tell(error.text)))

    async def _target(self, claim: PainterClaim) -> RegionTarget:
        target = await self._regions.target_of(_ref_of(claim), claim.channel_id)
        if not claim.is_for_picture(target.picture.url):
            raise Refusal(Text(LINK_UNAVAILABLE))
        return target

    async def _reply(self, claim: PainterClaim) -> PainterReply:
        """The member, the server and the channel of the link, as they are now."""
        guild, channel, me = await self._place(claim)
        return await member_reply(
            guild,
            channel,
            claim.member_id,
            me=me,
            locale=guild.preferred_locale.value,
            gone=Text(words.PAINTER_NOT_MEMBER),
            kind=PainterReply,
        )

    async def _place(self, claim: PainterClaim) -> tuple[discord.Guild, _PostableChannel, discord.Member]:
        """The link's server and channel, and the bot there: from this process's cache when its shard has the
        server, else over REST (which needs no shard), so that any process behind PUBLIC_URL serves any link."""
        if claim.guild_id is None:
            raise Refusal(Text(LINK_UNAVAILABLE))
        guild = self._client.get_guild(claim.guild_id)
        if guild is not None:
            channel = guild.get_channel_or_thread(claim.channel_id)
            if isinstance(channel, _PostableChannel) and guild.me is not None:
                return guild, channel, guild.me
            raise Refusal(Text(LINK_UNAVAILABLE))
        user = self._client.user
        try:
            guild = await self._client.fetch_guild(claim.guild_id)
            fetched = await self._client.fetch_channel(claim.channel_id)
            me = await guild.fetch_member(user.id) if user is not None else None
        except (discord.NotFound, discord.Forbidden):
            raise Refusal(Text(LINK_UNAVAILABLE)) from None
        # A thread's permissions come from its parent, which a guild fetched over REST does not hold.
        if not isinstance(fetched, _PostableChannel) or isinstance(fetched, discord.Thread) or me is None:
            raise Refusal(Text(LINK_UNAVAILABLE))
        if fetched.guild.id != guild.id:
            raise Refusal(Text(LINK_UNAVAILABLE))
        fetched.guild = guild  # its roles, which the channel's permissions are computed from
        return guild, fetched, me


def _ref_of(claim: PainterClaim) -> PictureRef:
    if claim.job_id is not None:
        return PictureRef("j", claim.job_id, claim.attachment_id or 0)
    if claim.message_id is not None:
        return PictureRef("m", claim.message_id, claim.attachment_id or 0)
    raise Refusal(Text(LINK_UNAVAILABLE))
