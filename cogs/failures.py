"""How a member is told that something failed: one function for the tree, the cogs, modals and components.

A `Refusal` (services/text/refusal.py) carries its words, whether raised as it is or wrapped by discord.py in a
`CommandInvokeError`; a database that cannot be reached (restarting, failing over, the network down) is named
as such; anything else is logged in full and apologised for. Always ephemeral: a refusal is the member's own
business.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from cogs.reply import send_ephemeral
from services.storage.database import DatabaseUnavailable, unreachable
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)

_REPORTED = "retouch.failure_reported"  # in `interaction.extras`: the tree's handler runs after the cog's


def render(interaction: discord.Interaction, text: Text) -> str:
    """`text` in the member's language."""
    return text.render(interaction.locale.value)


async def report_failure(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what failed, once per interaction; log anything unexpected in full."""
    if interaction.extras.get(_REPORTED):
        return
    interaction.extras[_REPORTED] = True
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, Refusal):
        await send_ephemeral(interaction, render(interaction, error.text))
        return
    if isinstance(error, DatabaseUnavailable) or unreachable(error):
        # Nothing was reserved or charged: every step that charges waits for the database instead.
        log.warning("The database is unreachable; told the member to try again (%r)", error)
        await send_ephemeral(interaction, render(interaction, Text(words.DATABASE_AWAY)))
        return
    if interaction.command is not None:
        log.error("Command %s failed unexpectedly", interaction.command.qualified_name, exc_info=error)
    else:
        custom_id = interaction.data.get("custom_id", "?") if interaction.data else "?"
        log.error("Component or modal %s failed unexpectedly", custom_id, exc_info=error)
    await send_ephemeral(interaction, render(interaction, Text(words.APOLOGY)))
