"""Ephemeral words of any length: one message when they fit, several pages, or a text file when long.

Every ephemeral reply that can grow with a server's data (settings, blocklists, quota rules, refusals
naming channels) goes through `send_ephemeral`, so none of them passes Discord's 2,000 characters.
"""

from __future__ import annotations

import io
import logging

import discord
from discord.utils import MISSING

from cogs.tokens import token_refused, token_usable
from services import words
from services.limits import MAX_MESSAGE_CONTENT
from services.words import Text

log = logging.getLogger(__name__)

MAX_PAGES = 4  # more pages than this and the whole text goes in an attached file instead
TEXT_FILENAME = "retouch.txt"
_BREAKS = ("\n", ", ", " ")  # where a page may end, best first


def paginate(content: str, limit: int = MAX_MESSAGE_CONTENT) -> list[str]:
    """`content` in pages of at most `limit` characters, broken at a line, a list separator or a space."""
    pages: list[str] = []
    while len(content) > limit:
        cut = next((at + len(b) for b in _BREAKS if (at := content.rfind(b, 1, limit - len(b) + 1)) > 0), limit)
        pages.append(content[:cut].rstrip())
        content = content[cut:].lstrip("\n")
    return [*pages, content] if content or not pages else pages


async def send_ephemeral(
    interaction: discord.Interaction,
    content: str,
    *,
    allowed_mentions: discord.AllowedMentions = MISSING,
) -> None:
    """Reply (or fill in the ephemeral deferral, or follow up) with `content`, however long it is."""
    pages = paginate(content)
    file: discord.File | None = None
    if len(pages) > MAX_PAGES:
        note = Text(words.LONG_TEXT_ATTACHED, filename=TEXT_FILENAME).render(interaction.locale.value)
        pages = [paginate(content, MAX_MESSAGE_CONTENT - len(note) - 2)[0] + "\n\n" + note]
        file = discord.File(io.BytesIO(content.encode()), filename=TEXT_FILENAME)
    attached: list[discord.File] = [file] if file is not None else MISSING
    response = interaction.response
    if response.is_done() and not token_usable(interaction):
        log.warning("Could not tell interaction %s anything more: its token is dead", interaction.id)
        return
    try:
        first, rest = pages[0], pages[1:]
        if not response.is_done():
            await response.send_message(first, ephemeral=True, allowed_mentions=allowed_mentions, files=attached)
        elif response.type is discord.InteractionResponseType.deferred_channel_message:
            # Every deferral that thinks is ephemeral here; a component's silent deferral is not, and
            # editing its original response would overwrite the message the button is on.
            await interaction.edit_original_response(
                content=first, attachments=[file] if file else [], view=None, allowed_mentions=allowed_mentions
            )
        else:
            await interaction.followup.send(first, ephemeral=True, allowed_mentions=allowed_mentions, files=attached)
        for page in rest:
            await interaction.followup.send(page, ephemeral=True, allowed_mentions=allowed_mentions)
    except discord.HTTPException as exc:
        token_refused(interaction, exc)
        log.warning("Could not send an ephemeral reply (HTTP %s): %s", exc.status, content[:200])
