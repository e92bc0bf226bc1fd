"""`/edit`: a member's picture, a prompt and optionally a mask, edited by the Model Hub.

The command reads its options and hands them to the edit runner (cogs/runner.py), which every entry point
shares. The cog also runs the sweeps that return reservations no live edit can settle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import tasks

from cogs.base import RetouchCog, everywhere, picture_of
from cogs.reply import ACKNOWLEDGED_FIRST, InteractionReply
from cogs.translator import described
from services.domain.validation import TypedEdit
from services.imaging.limits import MAX_COUNT, MAX_PROMPT, MAX_SIDE, MIN_COUNT, MIN_SIDE, OUTPUT_FORMATS, SIDE_MULTIPLE
from services.text import words

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

STALE_SWEEP_MINUTES = 5
# How soon the reservations of another process that died come back (PostgreSQL notices the death at once).
ORPHAN_SWEEP_SECONDS = 5
# A process found without its liveness lock for this long is taken for dead (released on the third sweep that
# finds it so): a live one whose connection dropped (a PostgreSQL restart) takes its lock back well within it.
ORPHAN_GRACE_SECONDS = 9


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
            await self.bot.quota.release_orphaned(ORPHAN_GRACE_SECONDS)
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

    @everywhere
    @app_commands.command(name="edit", extras={ACKNOWLEDGED_FIRST: True})
    @app_commands.describe(
        image=words.OPTION_IMAGE,
        prompt=described(words.OPTION_PROMPT, max=MAX_PROMPT),
        mask=words.OPTION_MASK,
        size=described(words.OPTION_SIZE, multiple=SIDE_MULTIPLE, min=MIN_SIDE, max=MAX_SIDE),
        count=described(words.OPTION_COUNT, min=MIN_COUNT, max=MAX_COUNT),
        format=words.OPTION_FORMAT,
        model=words.OPTION_MODEL,
        private=words.OPTION_PRIVATE,
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
        private: bool = False,
    ) -> None:
        """Edit a picture with an AI model: describe the change, optionally attach a mask."""
        assert interaction.channel_id is not None
        channel_id, user_id = interaction.channel_id, interaction.user.id
        form = TypedEdit(
            channel_id=channel_id,
            prompt=prompt,
            image=picture_of(image, channel_id=channel_id, author_id=user_id),
            mask=picture_of(mask, channel_id=channel_id, author_id=user_id) if mask is not None else None,
            size=size,
            count=count,
            output_format=format,
            model=model or self.bot.config.default_model,
        )
        await self.bot.runner.edit(InteractionReply(interaction), form, private=private)

    @edit.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        models = await self.bot.models.available()
        return [app_commands.Choice(name=m, value=m) for m in models if current.lower() in m.lower()][:25]


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(EditCog(bot))
