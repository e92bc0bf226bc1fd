"""`/privacy show` and `/privacy forget`, the retention task, and the server leave/join bookkeeping."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from cogs.base import RetouchCog, everywhere
from cogs.failures import render, report_failure
from services.storage.privacy import (
    FORGET_INTERVAL_SECONDS,
    USAGE_WINDOW_SECONDS,
    ForgetTooSoon,
    MemberBusy,
)
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

# A confirmation lives in this process only; a member who waits longer runs /privacy forget again.
CONFIRM_TIMEOUT = 180
RETENTION_INTERVAL_HOURS = 1
# How often tables left marked for a scrub are looked at (one small query); each is still rewritten at most
# once per SCRUB_INTERVAL_SECONDS, so what waits is scrubbed within a minute of that.
SCRUB_CHECK_SECONDS = 60


def _say(interaction: discord.Interaction, template: str, **values: Any) -> str:
    return render(interaction, Text(template, **values))


def _too_soon(exc: ForgetTooSoon) -> Refusal:
    return Refusal(Text(words.PRIVACY_TOO_SOON, last=exc.last, next=exc.next_allowed))


class ForgetConfirmation(discord.ui.View):
    """Forget me / Cancel under the warning; ephemeral, so only the member who asked sees and clicks it."""

    def __init__(self, cog: PrivacyCog, interaction: discord.Interaction) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT)
        self.cog = cog
        self.asked = interaction
        confirm: discord.ui.Button[ForgetConfirmation] = discord.ui.Button(
            label=_say(interaction, words.PRIVACY_FORGET_BUTTON), style=discord.ButtonStyle.danger
        )
        cancel: discord.ui.Button[ForgetConfirmation] = discord.ui.Button(
            label=_say(interaction, words.PRIVACY_CANCEL_BUTTON), style=discord.ButtonStyle.secondary
        )
        confirm.callback = self.confirm  # type: ignore[method-assign]
        cancel.callback = self.cancel  # type: ignore[method-assign]
        self.add_item(confirm)
        self.add_item(cancel)

    async def confirm(self, interaction: discord.Interaction) -> None:
        self.stop()
        # Forgetting may end by rewriting tables (VACUUM FULL on PostgreSQL), which may outlast the 3 s
        # Discord gives an interaction to be answered.
        await interaction.response.defer()
        try:
            await self.cog.store.forget(interaction.user.id)
        except MemberBusy:
            raise Refusal(Text(words.PRIVACY_BUSY)) from None
        except ForgetTooSoon as exc:
            raise _too_soon(exc) from None
        # What this process holds in memory for the region panel and the painter goes too.
        self.cog.bot.region_pictures.forget(interaction.user.id)
        await interaction.edit_original_response(content=_say(interaction, words.PRIVACY_FORGOTTEN), view=None)

    async def cancel(self, interaction: discord.Interaction) -> None:
        self.stop()
        await interaction.response.edit_message(content=_say(interaction, words.PRIVACY_CANCELLED), view=None)

    async def on_timeout(self) -> None:
        # The member may have dismissed the message, or the token died: then nothing is left to update.
        with contextlib.suppress(discord.HTTPException):
            await self.asked.edit_original_response(content=_say(self.asked, words.PRIVACY_EXPIRED), view=None)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        await report_failure(interaction, error)


class PrivacyCog(RetouchCog):
    """What Retouch keeps about a member, and forgetting it; expiring old records on a timer."""

    privacy = everywhere(app_commands.Group(name="privacy", description=words.GROUP_PRIVACY))

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self.store = bot.privacy

    async def cog_load(self) -> None:
        self.retention.start()
        self.scrubbing.start()

    async def cog_unload(self) -> None:
        self.retention.cancel()
        self.scrubbing.cancel()

    @tasks.loop(hours=RETENTION_INTERVAL_HOURS)
    async def retention(self) -> None:
        # An exception would end the loop for good; a failed run is logged and the next hour tries again.
        try:
            await self.store.purge(present_guilds=[guild.id for guild in self.bot.guilds], serves=self._serves)
        except Exception:
            log.exception("The retention run failed")

    def _serves(self, guild_id: int) -> bool:
        """Whether this process runs the shard the server's events go to (discord.py's own rule)."""
        shard_ids = self.bot.shard_ids
        return shard_ids is None or (guild_id >> 22) % (self.bot.shard_count or 1) in shard_ids

    @tasks.loop(seconds=SCRUB_CHECK_SECONDS)
    async def scrubbing(self) -> None:
        # What a forget or a purge deleted while its tables were scrubbed recently, or were in use, waits for this.
        try:
            await self.store.scrub_due()
        except Exception:
            log.exception("The scrub of deleted rows failed")

    @retention.before_loop
    async def _connected(self) -> None:
        # The servers the bot is in must be known, or one it was added back to while offline is deleted.
        await self.bot.wait_until_ready()

    @privacy.command(name="show")
    async def show(self, interaction: discord.Interaction) -> None:
        """See what Retouch keeps about you, for how long, and what it sends to the Model Hub."""
        record = await self.store.record(interaction.user.id)
        consent = words.PRIVACY_CONSENT_REFUSED if record.remix_opt_out else words.PRIVACY_CONSENT_ALLOWED
        text = _say(
            interaction,
            words.PRIVACY_SHOW,
            servers=record.servers,
            edits=record.edits,
            prompts=record.prompts,
            uploads=record.uploads,
            results=record.results,
            images=record.images_in_window,
            usage_rows=record.usage_rows,
            consent=Text(consent),
            retention_days=self.store.retention_days,
            window_days=USAGE_WINDOW_SECONDS // 86_400,
            forget_guild_days=self.store.forget_guild_after_days,
        )
        await interaction.response.send_message(text, ephemeral=True)

    @privacy.command(name="forget")
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete your prompts and picture references in every server (asks to confirm)."""
        try:
            await self.store.forget_allowed(interaction.user.id)
        except ForgetTooSoon as exc:
            raise _too_soon(exc) from None
        record = await self.store.record(interaction.user.id)
        text = _say(
            interaction,
            words.PRIVACY_FORGET_CONFIRM,
            edits=record.edits,
            pictures=record.uploads + record.results,
            window_days=USAGE_WINDOW_SECONDS // 86_400,
            interval=timedelta(seconds=FORGET_INTERVAL_SECONDS),
        )
        await interaction.response.send_message(text, view=ForgetConfirmation(self, interaction), ephemeral=True)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.store.guild_left(guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.store.guild_joined(guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        # Also at start-up, for every server: the bot may have been added back while it was offline.
        await self.store.guild_joined(guild.id)


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(PrivacyCog(bot))
