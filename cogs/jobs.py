"""`/jobs`: a member's last edits, newest first, each with **Show** to see its results again, privately."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from cogs.base import RetouchCog, everywhere
from cogs.history import jobs_page
from cogs.reply import NO_PINGS

if TYPE_CHECKING:
    from bot import RetouchBot


class JobsCog(RetouchCog):
    """A member's own history of edits."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    @everywhere
    @app_commands.command(name="jobs")
    async def jobs(self, interaction: discord.Interaction) -> None:
        """See your last edits, newest first, and show their results again."""
        content, view = await jobs_page(self.bot, interaction.locale.value, interaction.user.id, None, 0)
        await interaction.response.send_message(content, view=view, ephemeral=True, allowed_mentions=NO_PINGS)


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(JobsCog(bot))
