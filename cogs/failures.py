"""How a member is told that something failed: one function for the tree, the cogs, modals and buttons.

Expected refusals carry their words (`Text`); anything else is logged in full and apologised for.
Always ephemeral: a refusal is the member's own business.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from cogs.replies import send_ephemeral
from services import words
from services.validation import InvalidInput
from services.words import Text

log = logging.getLogger(__name__)

_REPORTED = "retouch.failure_reported"  # in `interaction.extras`: the tree's handler runs after the cog's
_DELIVERED = "retouch.delivered"  # in `interaction.extras`: (pictures posted and charged, pictures asked for)


class RetouchError(app_commands.AppCommandError):
    """A refusal or failure the member should read as it is."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


class InputRefused(RetouchError):
    """Bad input, caught before anything was spent; `field` names the option at fault."""

    def __init__(self, field: str, text: Text) -> None:
        super().__init__(text)
        self.field = field


def refused(error: InvalidInput) -> InputRefused:
    """The services' refusal as the command error discord.py routes to the error handlers."""
    return InputRefused(error.field, error.text)


def render(interaction: discord.Interaction, text: Text) -> str:
    """`text` in the member's language."""
    return text.render(interaction.locale.value)


async def tell(interaction: discord.Interaction, text: Text) -> None:
    """Ephemeral words for the member: a reply, the deferred (ephemeral) response filled in, or a followup."""
    await send_ephemeral(interaction, render(interaction, text))


def note_delivered(interaction: discord.Interaction, delivered: int, requested: int) -> None:
    """Pictures of this interaction's edit are out (and charged): a later failure must say so, not "nothing"."""
    interaction.extras[_DELIVERED] = (delivered, requested)


async def report_failure(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what failed, once per interaction; log anything unexpected in full."""
    if interaction.extras.get(_REPORTED):
        return
    interaction.extras[_REPORTED] = True
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, RetouchError | InvalidInput):
        await tell(interaction, error.text)
        return
    if interaction.command is not None:
        log.error("Command %s failed unexpectedly", interaction.command.qualified_name, exc_info=error)
    else:
        custom_id = interaction.data.get("custom_id", "?") if interaction.data else "?"
        log.error("Component or modal %s failed unexpectedly", custom_id, exc_info=error)
    delivered = interaction.extras.get(_DELIVERED)
    if delivered and delivered[0]:
        # Pictures are out and charged: the apology must not say that nothing was.
        await tell(interaction, Text(words.FAILED_AFTER_DELIVERY, delivered=delivered[0], requested=delivered[1]))
        return
    await tell(interaction, Text(words.APOLOGY))
