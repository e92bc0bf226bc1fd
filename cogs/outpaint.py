"""Zoom out and Pan under every result: the picture on a larger canvas, the model painting what lies beyond it.

The buttons are the second row of cogs/buttons.py's; this extension answers them, and the region panel's
(cogs/growing.py), with a modal (the prompt, prefilled with the result's, Zoom out's factor, the count); the
edit runner does the rest under Remix's rules (cogs/runner.py `grow`); the canvas, the picture sent and its
mask are services/imaging/outpaint.py's.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import discord

from cogs.base import RetouchCog
from cogs.buttons import Action, ResultAction
from cogs.growing import HOWS, PanelGrowButton, growth_of, open_grow_modal
from cogs.reply import InteractionReply
from services.imaging.outpaint import Growth

if TYPE_CHECKING:
    from bot import RetouchBot


class OutpaintCog(RetouchCog):
    """Extending a result, or a region panel's picture, beyond its edges."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        # Each result button opens the modal with its growth; the actions are named as the panel's buttons.
        self.actions: dict[Action, ResultAction] = {
            how: functools.partial(self.open_modal, growth=growth_of(how)) for how in HOWS
        }

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PanelGrowButton)
        self.bot.result_actions.register(self.actions)

    async def cog_unload(self) -> None:
        self.bot.result_actions.unregister(self.actions)
        self.bot.remove_dynamic_items(PanelGrowButton)

    async def open_modal(self, interaction: discord.Interaction, job_id: int, growth: Growth) -> None:
        """Zoom out or a Pan button: the modal on the clicked result's picture, if it may be built on and can grow."""
        clicked = {a.id for a in interaction.message.attachments} if interaction.message else set()
        target = await self.bot.runner.grow_target_of_job(InteractionReply(interaction), job_id, clicked, growth)
        await open_grow_modal(interaction, target, growth)


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(OutpaintCog(bot))
