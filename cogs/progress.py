"""The ephemeral progress line of an edit: the use case says where it stands, this renders it."""

from __future__ import annotations

import logging
import time

import discord

from cogs.failures import render
from cogs.tokens import token_refused, token_usable
from services import words
from services.editing import EditStatus
from services.words import Text

log = logging.getLogger(__name__)


def describe(status: EditStatus) -> Text:
    """Checking, waiting in line (place and expected wait), or editing, with the time so far."""
    elapsed = round(status.elapsed)
    if status.stage == "checking":
        return Text(words.PROGRESS_CHECKING)
    if status.stage == "waiting":
        place = (
            Text(words.PROGRESS_NEXT)
            if status.position == 0
            else Text(words.PROGRESS_POSITION, position=status.position, waiting=status.waiting)
        )
        # A float is shown with the locale's decimal separator; tenths only while they matter.
        wait = round(status.expected_wait, 1) if status.expected_wait < 10 else round(status.expected_wait)
        return Text(words.PROGRESS_IN_LINE, place=place, wait=wait, elapsed=elapsed)
    if status.count == 1:
        return Text(words.PROGRESS_EDITING_ONE, elapsed=elapsed)
    return Text(words.PROGRESS_EDITING_MANY, count=status.count, elapsed=elapsed)


class ProgressDisplay:
    """Edits the deferred ephemeral response with each status the use case reports, while its token lives.

    It stops for good at Discord's first 401/404 for the token, and before the token's 15 minutes run out.
    """

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    async def __call__(self, status: EditStatus) -> None:
        interaction = self._interaction
        if not token_usable(interaction):
            return
        try:
            await interaction.edit_original_response(content=render(interaction, describe(status)))
        except discord.HTTPException as exc:
            # Progress is a courtesy: a failed edit must not stop the job itself.
            if token_refused(interaction, exc):
                log.info(
                    "Discord refused the token of interaction %s (HTTP %s); no more progress",
                    interaction.id,
                    exc.status,
                )
            else:
                log.debug("Could not show progress: %s", exc)
