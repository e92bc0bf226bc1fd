"""The audit-log post: who edited what, with small previews and a link; it never fails the edit itself.

An entry is never lost to Discord's limits: the prompt is sized after markdown escaping (which can
double it), the whole prompt goes in an attached text file when it does not fit, and a refused post is
retried simpler (without previews, then without the quoted prompt) rather than dropped.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import discord

from cogs.base import jump_url
from cogs.delivery import ResultPoster, quoted_prompt
from cogs.reply import NO_PINGS, Reply
from services.domain.editing import SentEdit
from services.imaging.images import make_thumbnail
from services.imaging.kept_inputs import KeptPicture
from services.imaging.limits import MAX_MESSAGE_CONTENT
from services.storage.jobs import InputRole
from services.text import words
from services.text.words import Text

log = logging.getLogger(__name__)

PROMPT_FILENAME = "prompt.txt"


KeptInputs = Callable[[], Awaitable[Mapping[InputRole, KeptPicture]]]
"""Reads the edit's kept copies of its inputs (`JobStore.kept_inputs` of its job), for the previews."""


async def post_audit(
    client: discord.Client,
    reply: Reply,
    channel_id: int,
    sent: SentEdit,
    inputs: KeptInputs,
    poster: ResultPoster,
    delivered: int,
) -> None:
    """Tell the audit-log channel about one delivered edit."""
    try:
        await _post_audit(client, reply, channel_id, _Entry(sent, inputs, poster, delivered))
    except Exception:
        # The pictures are out and charged; the member's edit must not end in an apology for this.
        log.exception("Could not write the audit entry of an edit in guild %s", reply.guild_id)


@dataclass(frozen=True)
class _Entry:
    """What one entry tells: the edit as sent, its kept inputs, what was posted, and how many pictures."""

    sent: SentEdit
    inputs: KeptInputs
    poster: ResultPoster
    delivered: int


async def _post_audit(client: discord.Client, reply: Reply, channel_id: int, entry: _Entry) -> None:
    sent, inputs, poster, delivered = entry.sent, entry.inputs, entry.poster, entry.delivered
    channel = client.get_channel(channel_id)
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("Audit channel %s of guild %s is not a text channel I can see", channel_id, reply.guild_id)
        return
    locale = reply.guild_locale
    link: Text | str = Text(words.AUDIT_NOT_POSTED)
    if reply.private:
        link = Text(words.AUDIT_PRIVATE)  # shown to the member alone: there is no message to link to
    elif poster.messages:
        link = jump_url(reply.guild_id, reply.channel_id, poster.messages[0].id)
    header = Text(
        words.AUDIT_HEADER,
        mention=reply.member.mention,
        channel_id=reply.channel_id,
        model=sent.model,
        width=sent.size[0],
        height=sent.size[1],
        delivered=delivered,
        requested=sent.count,
        link=link,
    ).render(locale)
    whole = f"{header}\n> {quoted_prompt(sent.prompt, MAX_MESSAGE_CONTENT)}"
    prompt_file = len(whole) > MAX_MESSAGE_CONTENT
    if prompt_file:
        note = Text(words.AUDIT_PROMPT_ATTACHED, filename=PROMPT_FILENAME).render(locale)
        room = MAX_MESSAGE_CONTENT - len(header) - len(note) - 4
        whole = f"{header}\n> {quoted_prompt(sent.prompt, room)}\n{note}"
    previews = await _previews(inputs, poster)
    attempts = [(whole, previews), (whole, []), (header, [])]  # each simpler than the one before
    for number, (content, thumbnails) in enumerate(attempts, start=1):
        files = [discord.File(io.BytesIO(data), filename=f"{name}.png") for name, data in thumbnails]
        if prompt_file or content == header:
            files.append(discord.File(io.BytesIO(sent.prompt.encode()), filename=PROMPT_FILENAME))
        try:
            await channel.send(content=content, files=files, allowed_mentions=NO_PINGS, suppress_embeds=True)
            return
        except discord.HTTPException as exc:
            if exc.status in (401, 403, 404) or number == len(attempts):
                log.warning("Could not write to the audit channel %s (HTTP %s)", channel_id, exc.status)
                return
            log.info("The audit channel %s refused an entry (HTTP %s); retrying it simpler", channel_id, exc.status)


async def _previews(inputs: KeptInputs, poster: ResultPoster) -> list[tuple[str, bytes]]:
    """Small previews of the input, the mask and the first result; one that cannot be made is left out."""
    sources: list[tuple[str, bytes]] = []
    try:
        kept = await inputs()
    except Exception:
        # The entry goes out all the same, with the result's preview: the database may be away for a moment.
        log.warning("Could not read the kept inputs for the audit log's previews", exc_info=True)
    else:
        roles: tuple[tuple[str, InputRole], ...] = (("input", "source"), ("mask", "mask"))
        sources += [(name, kept[role].data) for name, role in roles if role in kept]
    if poster.first_picture is not None:
        sources.append(("result", poster.first_picture))
    previews = []
    for name, data in sources:
        try:
            previews.append((name, await make_thumbnail(data)))
        except Exception:
            log.warning("Could not make the %s preview for the audit log", name, exc_info=True)
    return previews
