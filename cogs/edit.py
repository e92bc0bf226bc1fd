"""`/edit`: a member's picture, a prompt and optionally a mask, edited by the Model Hub."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from cogs.errors import RetouchCog
from cogs.pipeline import (
    MAX_COUNT,
    MAX_PROMPT,
    EditPipeline,
    InputPicture,
    check_channel,
    check_mask_matches,
    check_options,
    check_picture,
)

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)


class EditCog(RetouchCog):
    """Image editing through the Model Hub."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self.pipeline = EditPipeline(bot)

    @app_commands.command(name="edit")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The picture to edit",
        prompt="What should change (up to 1000 characters)",
        mask="Optional mask: transparent (or white) where the picture may change",
        size="auto (keeps the aspect ratio) or WIDTHxHEIGHT, multiples of 16 between 64 and 2048",
        count="How many pictures to make (1–10)",
        format="File format of the results",
        model="The editing model",
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, MAX_PROMPT],
        mask: discord.Attachment | None = None,
        size: str = "auto",
        count: app_commands.Range[int, 1, MAX_COUNT] = 1,
        format: Literal["png", "jpeg", "webp"] = "png",
        model: str | None = None,
    ) -> None:
        """Edit a picture with an AI model: describe the change, optionally attach a mask."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        settings = await self.bot.settings.get(interaction.guild_id)
        check_channel(settings, interaction.channel_id)
        choice = check_options(
            prompt=prompt,
            size=size,
            count=count,
            output_format=format,
            model=model or self.bot.config.default_model,
            offered_models=await self.bot.models.available(),
            settings=settings,
        )
        picture = InputPicture.from_attachment(image)
        check_picture("image", picture, self.bot.config.max_input_bytes)
        mask_picture = InputPicture.from_attachment(mask) if mask is not None else None
        if mask_picture is not None:
            check_picture("mask", mask_picture, self.bot.config.max_input_bytes)
            check_mask_matches(picture, mask_picture)
        # Ephemeral: refusals and progress are the member's own business; the pictures go public.
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.pipeline.run(interaction, choice, picture, mask_picture, settings)

    @edit.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        models = await self.bot.models.available()
        return [app_commands.Choice(name=m, value=m) for m in models if current.lower() in m.lower()][:25]


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(EditCog(bot))
