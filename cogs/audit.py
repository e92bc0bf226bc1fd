"""The audit-log post: who edited what, with small previews and a link; it never fails the edit itself."""

from __future__ import annotations

import io
import logging

import discord

from cogs.base import jump_url
from cogs.delivery import NO_PINGS, ResultPoster, quoted_prompt
from services import words
from services.editing import EditOrder
from services.images import make_thumbnail
from services.words import Text

log = logging.getLogger(__name__)

PROMPT_ROOM = 1500  # of the audit message's 2000 characters


async def post_audit(
    interaction: discord.Interaction, channel_id: int, order: EditOrder, poster: ResultPoster, delivered: int
) -> None:
    """Tell the audit-log channel about one delivered edit."""
    channel = interaction.client.get_channel(channel_id)
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("Audit channel %s of guild %s is not a text channel I can see", channel_id, interaction.guild_id)
        return
    previews = [("input", order.image.data)]
    if order.mask is not None:
        previews.append(("mask", order.mask.data))
    if poster.first_picture is not None:
        previews.append(("result", poster.first_picture))
    files = [discord.File(io.BytesIO(await make_thumbnail(data)), filename=f"{name}.png") for name, data in previews]
    link = (
        jump_url(interaction.guild_id, interaction.channel_id, poster.messages[0].id)
        if poster.messages
        else Text(words.AUDIT_NOT_POSTED)
    )
    text = Text(
        words.AUDIT_ENTRY,
        mention=interaction.user.mention,
        channel_id=interaction.channel_id,
        model=order.model,
        width=order.size[0],
        height=order.size[1],
        delivered=delivered,
        requested=order.count,
        link=link,
        prompt=quoted_prompt(order.prompt, PROMPT_ROOM),
    )
    locale = interaction.guild_locale.value if interaction.guild_locale else None
    try:
        await channel.send(content=text.render(locale), files=files, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        log.warning("Could not write to the audit channel %s (HTTP %s)", channel_id, exc.status)
