"""`/edit`: a member's picture, a prompt and optionally a mask, edited by the Model Hub.

Every entry point (this command, Reroll, Remix) goes through `check` (the one validation) and
`run_edit` (the use case in services/editing.py, with this interaction's progress, delivery and audit).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import tasks

from cogs.audit import post_audit
from cogs.base import RetouchCog, acknowledge, check_member_may_post, picture_of, requester_of
from cogs.delivery import ResultPoster
from cogs.failures import InputRefused, RetouchError, refused, render, tell
from cogs.progress import ProgressDisplay
from cogs.translator import described
from services import words
from services.editing import EditOutcome
from services.jobs import Origin
from services.limits import MAX_COUNT, MAX_PROMPT, MAX_SIDE, MIN_COUNT, MIN_SIDE, OUTPUT_FORMATS, SIDE_MULTIPLE
from services.settings import GuildSettings
from services.validation import EditChoice, EditForm, InvalidInput, validate
from services.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

STALE_SWEEP_MINUTES = 5
# How soon the reservations of another process that died come back (PostgreSQL notices the death at once).
ORPHAN_SWEEP_SECONDS = 10


async def check(bot: RetouchBot, form: EditForm, settings: GuildSettings) -> EditChoice:
    """The one validation every entry point calls; its refusal becomes the cogs' command error."""
    try:
        return validate(
            form,
            settings=settings,
            offered_models=await bot.models.available(),
            max_input_bytes=bot.config.max_input_bytes,
        )
    except InvalidInput as exc:
        bot.metrics.edit_finished(EditOutcome.REFUSED_INPUT, 0)
        raise refused(exc) from None


async def run_edit(
    bot: RetouchBot,
    interaction: discord.Interaction,
    choice: EditChoice,
    settings: GuildSettings,
    origin: Origin | None = None,
) -> None:
    """Run the edit for an interaction already deferred ephemerally, and tell the member how it went."""
    progress = ProgressDisplay(interaction)
    poster = ResultPoster(interaction, credit=origin.credit if origin else None)
    try:
        report = await bot.edits.run(
            choice, requester_of(interaction), deliver=poster, origin=origin, progress=progress
        )
    except asyncio.CancelledError:
        # Only a shutdown cancels a job; the use case has already returned the quota.
        await asyncio.shield(tell(interaction, Text(words.STOPPED_BY_RESTART)))
        raise
    if report.outcome not in (EditOutcome.DELIVERED, EditOutcome.PARTIAL):
        assert report.text is not None
        raise InputRefused(report.field, report.text) if report.field else RetouchError(report.text)
    if settings.audit_channel_id is not None and report.order is not None:
        await post_audit(interaction, settings.audit_channel_id, report.order, poster, report.delivered)
    if not poster.by_channel:  # otherwise the token is dead, and the mention in the channel told them
        summary = poster.summary(report.delivered, progress.elapsed())
        await interaction.edit_original_response(content=render(interaction, summary))


class EditCog(RetouchCog):
    """Image editing through the Model Hub."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.release_stale_reservations.start()
        # Only processes sharing PostgreSQL can see each other die; a SQLite file has one process, which
        # returned its previous run's reservations at start-up.
        if self.bot.database.dialect == "postgresql":
            self.release_orphaned_reservations.start()

    async def cog_unload(self) -> None:
        self.release_stale_reservations.cancel()
        self.release_orphaned_reservations.cancel()

    @tasks.loop(seconds=ORPHAN_SWEEP_SECONDS)
    async def release_orphaned_reservations(self) -> None:
        # A process killed mid-edit (SIGKILL, out of memory, a lost node) cannot return what it reserved;
        # the others do, as soon as its liveness lock is gone, instead of members waiting for a restart.
        try:
            await self.bot.quota.release_orphaned()
        except Exception:
            log.exception("Returning a stopped process's reservations failed; the next sweep tries again")

    @tasks.loop(minutes=STALE_SWEEP_MINUTES)
    async def release_stale_reservations(self) -> None:
        # A reservation no live edit can still settle (a task killed mid-way) would hold quota until a
        # restart; any process may return it, since the threshold is past the longest edit.
        try:
            released = await self.bot.quota.release_stale()
            await self.bot.claims.purge_expired()
        except Exception:
            log.exception("Releasing stale reservations failed; the next sweep tries again")
            return
        if released:
            log.warning("Returned %d stale reservation(s)", released)

    @app_commands.command(name="edit")
    @app_commands.guild_only()
    @app_commands.describe(
        image=words.OPTION_IMAGE,
        prompt=described(words.OPTION_PROMPT, max=MAX_PROMPT),
        mask=words.OPTION_MASK,
        size=described(words.OPTION_SIZE, multiple=SIDE_MULTIPLE, min=MIN_SIDE, max=MAX_SIDE),
        count=described(words.OPTION_COUNT, min=MIN_COUNT, max=MAX_COUNT),
        format=words.OPTION_FORMAT,
        model=words.OPTION_MODEL,
    )
    @app_commands.choices(format=[app_commands.Choice(name=f, value=f) for f in OUTPUT_FORMATS])
    async def edit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, MAX_PROMPT],
        mask: discord.Attachment | None = None,
        size: str = "auto",
        count: app_commands.Range[int, MIN_COUNT, MAX_COUNT] = MIN_COUNT,
        format: str = OUTPUT_FORMATS[0],
        model: str | None = None,
    ) -> None:
        """Edit a picture with an AI model: describe the change, optionally attach a mask."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        check_member_may_post(interaction)
        settings = await self.bot.settings.get(interaction.guild_id)
        channel_id, user_id = interaction.channel_id, interaction.user.id
        form = EditForm(
            channel_id=channel_id,
            prompt=prompt,
            image=picture_of(image, channel_id=channel_id, author_id=user_id),
            mask=picture_of(mask, channel_id=channel_id, author_id=user_id) if mask is not None else None,
            size=size,
            count=count,
            output_format=format,
            model=model or self.bot.config.default_model,
        )
        choice = await check(self.bot, form, settings)
        await acknowledge(interaction)
        await run_edit(self.bot, interaction, choice, settings)

    @edit.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        models = await self.bot.models.available()
        return [app_commands.Choice(name=m, value=m) for m in models if current.lower() in m.lower()][:25]


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(EditCog(bot))
