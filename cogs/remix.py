"""Community remixing: Reroll, Remix and Delete on every result, the "Remix image" message menu, and consent.

The flows and their rules are the edit runner's (cogs/runner.py) and services/domain/remixing.py's; this extension
declares the menu, the modal and `/remixing`, and answers the result buttons it registers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from cogs.base import RetouchCog, everywhere, picture_of
from cogs.buttons import Action, ResultAction
from cogs.failures import render, report_failure
from cogs.reply import InteractionReply
from cogs.runner import runner_of
from services.domain.remixing import RemixTarget
from services.imaging.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT
from services.text import words
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

# Open modals live in this process only; a member who waits longer simply clicks Remix again.
MODAL_TIMEOUT = 15 * 60
MAX_SELECT_OPTIONS = 25
MAX_OPTION_LABEL = 100


class RemixModal(discord.ui.Modal):
    """Prompt (prefilled), which picture when there are several, an optional mask, and the count."""

    def __init__(self, target: RemixTarget, locale: str | None) -> None:
        super().__init__(title=Text(words.REMIX_MODAL_TITLE).render(locale), timeout=MODAL_TIMEOUT)
        self.target = target

        def label(text: str, help: Text, component: discord.ui.Item[RemixModal]) -> None:
            self.add_item(
                discord.ui.Label(text=Text(text).render(locale), description=help.render(locale), component=component)
            )

        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=MAX_PROMPT,
            default=target.parent.prompt if target.parent else None,
        )
        label(words.REMIX_PROMPT_LABEL, Text(words.REMIX_PROMPT_HELP), self.prompt)
        self.picture: discord.ui.Select[RemixModal] | None = None
        if len(target.pictures) > 1:
            options = [
                discord.SelectOption(
                    label=Text(words.REMIX_PICTURE_OPTION, number=n, filename=p.filename).render(locale)[
                        :MAX_OPTION_LABEL
                    ],
                    value=str(n - 1),
                    default=n == 1,
                )
                for n, p in enumerate(target.pictures[:MAX_SELECT_OPTIONS], start=1)
            ]
            self.picture = discord.ui.Select(options=options, min_values=1, max_values=1)
            label(words.REMIX_PICTURE_LABEL, Text(words.REMIX_PICTURE_HELP), self.picture)
        self.mask: discord.ui.FileUpload[RemixModal] = discord.ui.FileUpload(required=False, min_values=0, max_values=1)
        label(words.REMIX_MASK_LABEL, Text(words.REMIX_MASK_HELP), self.mask)
        self.count: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            default=str(MIN_COUNT), min_length=1, max_length=len(str(MAX_COUNT))
        )
        label(words.REMIX_COUNT_LABEL, Text(words.REMIX_COUNT_HELP, min=MIN_COUNT, max=MAX_COUNT), self.count)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        index = int(self.picture.values[0]) if self.picture is not None and self.picture.values else 0
        attached = self.mask.values[0] if self.mask.values else None
        mask = (
            picture_of(attached, channel_id=interaction.channel_id, author_id=interaction.user.id)
            if attached is not None
            else None
        )
        await runner_of(interaction).remix(
            InteractionReply(interaction),
            self.target,
            self.prompt.value,
            self.target.pictures[index],
            mask,
            self.count.value,
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_failure(interaction, error)


class RemixCog(RetouchCog):
    """Building on results and on members' pictures."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=words.MENU_REMIX_IMAGE, callback=self.remix_message)
        everywhere(self.menu)
        self.menu.error(self.cog_app_command_error)
        self.actions: dict[Action, ResultAction] = {
            "reroll": self.reroll,
            "remix": self.open_remix,
            "delete": self.delete,
        }

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        self.bot.result_actions.register(self.actions)

    async def cog_unload(self) -> None:
        self.bot.result_actions.unregister(self.actions)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @everywhere
    @app_commands.command(name="remixing")
    @app_commands.describe(allow=words.OPTION_ALLOW_REMIX)
    async def remixing(self, interaction: discord.Interaction, allow: bool) -> None:
        """Allow or stop other members remixing your pictures and results."""
        await self.bot.jobs.set_remix_opt_out(interaction.user.id, not allow)
        text = Text(words.REMIXING_ALLOWED if allow else words.REMIXING_STOPPED)
        await interaction.response.send_message(render(interaction, text), ephemeral=True)

    async def remix_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Remix a picture in this message."""
        target = await self.bot.runner.remix_target_of_message(InteractionReply(interaction), message)
        await interaction.response.send_modal(RemixModal(target, interaction.locale.value))

    async def open_remix(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Remix button: the modal, on the pictures of this result."""
        target = await self.bot.runner.remix_target_of_job(InteractionReply(interaction), job_id)
        await interaction.response.send_modal(RemixModal(target, interaction.locale.value))

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Reroll button: the same inputs, new pictures, charged to whoever clicked."""
        await self.bot.runner.reroll(InteractionReply(interaction), job_id)

    async def delete(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Delete button: the requester's or a moderator's to press."""
        permissions = interaction.permissions
        moderator = permissions.manage_guild or permissions.manage_messages
        await self.bot.runner.delete(InteractionReply(interaction), job_id, moderator=moderator)


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(RemixCog(bot))
