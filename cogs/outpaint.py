"""Zoom out and Pan under every result: the picture on a larger canvas, the model painting what lies beyond it.

The buttons are the second row of cogs/buttons.py's; this extension answers them with a modal (the prompt,
prefilled with the result's, Zoom out's factor, the count), and the edit runner does the rest under
Remix's rules (cogs/runner.py `grow`); the canvas, the picture sent and its mask are
services/imaging/outpaint.py's.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import discord

from cogs.base import RetouchCog
from cogs.buttons import Action, ResultAction
from cogs.failures import report_failure
from cogs.reply import InteractionReply
from cogs.runner import runner_of
from services.domain.region_pictures import PictureRef
from services.imaging.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT
from services.imaging.outpaint import DEFAULT_ZOOM, DIRECTIONS, ZOOM_FACTORS, Direction, Growth
from services.text import words
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

# Open modals live in this process only; a member who waits longer simply clicks the button again.
MODAL_TIMEOUT = 15 * 60
_TITLES: dict[Direction | None, str] = {
    None: words.ZOOM_MODAL_TITLE,
    "left": words.PAN_LEFT_TITLE,
    "right": words.PAN_RIGHT_TITLE,
    "up": words.PAN_UP_TITLE,
    "down": words.PAN_DOWN_TITLE,
}


class GrowModal(discord.ui.Modal):
    """The prompt (prefilled from the result), Zoom out's factor (1.5× or 2×), and the count."""

    def __init__(self, ref: PictureRef, growth: Growth, prompt: str | None, locale: str | None) -> None:
        super().__init__(title=Text(_TITLES[growth.direction]).render(locale), timeout=MODAL_TIMEOUT)
        self.ref, self.growth = ref, growth

        def label(text: str, help: Text, component: discord.ui.Item[GrowModal]) -> None:
            self.add_item(
                discord.ui.Label(text=Text(text).render(locale), description=help.render(locale), component=component)
            )

        self.prompt: discord.ui.TextInput[GrowModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, min_length=1, max_length=MAX_PROMPT, default=prompt
        )
        label(words.REMIX_PROMPT_LABEL, Text(words.GROW_PROMPT_HELP), self.prompt)
        self.factor: discord.ui.Select[GrowModal] | None = None
        if growth.direction is None:
            options = [
                discord.SelectOption(
                    label=Text(words.ZOOM_FACTOR_OPTION, factor=factor).render(locale),
                    value=str(factor),
                    default=factor == DEFAULT_ZOOM,
                )
                for factor in ZOOM_FACTORS
            ]
            self.factor = discord.ui.Select(options=options, required=True, min_values=1, max_values=1)
            label(words.ZOOM_FACTOR_LABEL, Text(words.ZOOM_FACTOR_HELP), self.factor)
        self.count: discord.ui.TextInput[GrowModal] = discord.ui.TextInput(
            default=str(MIN_COUNT), min_length=1, max_length=len(str(MAX_COUNT))
        )
        label(words.REMIX_COUNT_LABEL, Text(words.REMIX_COUNT_HELP, min=MIN_COUNT, max=MAX_COUNT), self.count)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        growth = self.growth
        if self.factor is not None and self.factor.values:
            # One of the select's own options: Discord sends only values it offered.
            growth = Growth.zoom(float(self.factor.values[0]))
        await runner_of(interaction).grow(
            InteractionReply(interaction), self.ref, growth, self.prompt.value, self.count.value
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_failure(interaction, error)


class OutpaintCog(RetouchCog):
    """Extending a result beyond its edges."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        # Each button opens the modal with its growth; the action names are the directions' own.
        self.actions: dict[Action, ResultAction] = {"zoom": functools.partial(self.open_modal, growth=Growth.zoom())}
        for direction in DIRECTIONS:
            self.actions[direction] = functools.partial(self.open_modal, growth=Growth.pan(direction))

    async def cog_load(self) -> None:
        self.bot.result_actions.register(self.actions)

    async def cog_unload(self) -> None:
        self.bot.result_actions.unregister(self.actions)

    async def open_modal(self, interaction: discord.Interaction, job_id: int, growth: Growth) -> None:
        """Zoom out or a Pan button: the modal on the clicked result's picture, if it may be built on and can grow."""
        clicked = {a.id for a in interaction.message.attachments} if interaction.message else set()
        target = await self.bot.runner.grow_target_of_job(InteractionReply(interaction), job_id, clicked, growth)
        prompt = target.parent.prompt if target.parent else None
        await interaction.response.send_modal(GrowModal(target.ref, growth, prompt, interaction.locale.value))


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(OutpaintCog(bot))
