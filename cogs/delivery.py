"""Posting an edit's pictures: a followup while the interaction token lives, a channel message after.

`ResultPoster` is the `deliver` callback the edit use case calls; it reports every message's pictures
back (`Delivery.posted`), which is what the member is charged for.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import discord

from cogs.base import picture_of
from cogs.buttons import result_view
from services import words
from services.editing import Delivery, DeliveryFailed, EditOrder
from services.images import OutputFile, extension_for, plan_delivery
from services.limits import INTERACTION_TOKEN_SECONDS, MAX_MESSAGE_CONTENT
from services.words import Text

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
# Past this age of the interaction, results go out as channel messages (the margin covers the upload itself).
TOKEN_SAFE_SECONDS = INTERACTION_TOKEN_SECONDS - 60


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def quoted_prompt(prompt: str, room: int) -> str:
    """The prompt on one line, markdown escaped, within `room` characters."""
    return shorten(discord.utils.escape_markdown(shorten(" ".join(prompt.split()), room)), room)


def caption(
    interaction: discord.Interaction, order: EditOrder, part: Text | str = "", credit: Text | None = None
) -> str:
    """The words above the pictures: prompt, requester and model, always inside Discord's limit."""
    locale = interaction.guild_locale.value if interaction.guild_locale else None
    values = {
        "mention": interaction.user.mention,
        "model": order.model,
        "width": order.size[0],
        "height": order.size[1],
        "part": part,
        "credit": Text("\n{credit}", credit=credit) if credit else "",
    }
    room = MAX_MESSAGE_CONTENT - len(Text(words.CAPTION, prompt="", **values).render(locale)) - 4
    return Text(words.CAPTION, prompt=quoted_prompt(order.prompt, room), **values).render(locale)


@dataclass
class ResultPoster:
    """Posts the pictures publicly, split or re-encoded to fit the upload limit; remembers what it posted."""

    interaction: discord.Interaction
    credit: Text | None = None
    notes: list[Text] = field(default_factory=list)
    messages: list[discord.Message] = field(default_factory=list)
    first_picture: bytes | None = None
    by_channel: bool = False  # the interaction token expired: results went out as channel messages

    async def __call__(self, delivery: Delivery) -> None:
        interaction = self.interaction
        extension = extension_for(delivery.order.output_format)
        files = [
            OutputFile(f"retouch-{interaction.id}-{n}.{extension}", data)
            for n, data in enumerate(delivery.pictures, start=1)
        ]
        self.first_picture = delivery.pictures[0] if delivery.pictures else None
        plan = await plan_delivery(files, size_limit=interaction.filesize_limit)
        self.notes = plan.notes
        locale = interaction.guild_locale.value if interaction.guild_locale else None
        for number, batch in enumerate(plan.batches, start=1):
            part = Text(words.CAPTION_PART, number=number, total=len(plan.batches)) if len(plan.batches) > 1 else ""
            content = caption(interaction, delivery.order, part, self.credit)
            try:
                message = await self._post(batch, view=result_view(delivery.job_id, locale), content=content)
            except discord.HTTPException as exc:
                log.warning("Discord refused a delivery (HTTP %s, code %s)", exc.status, exc.code)
                raise DeliveryFailed(
                    Text(
                        words.DISCORD_REFUSED,
                        status=exc.status,
                        delivered=delivery.delivered,
                        requested=delivery.order.count,
                    )
                ) from exc
            self.messages.append(message)
            await delivery.posted(
                [
                    picture_of(
                        a, channel_id=interaction.channel_id, message_id=message.id, author_id=interaction.user.id
                    )
                    for a in message.attachments
                ]
            )

    async def _post(self, batch: list[OutputFile], *, view: discord.ui.View, content: str) -> discord.Message:
        """One result message: a followup while the token lives, else a channel message pinging the requester."""
        interaction = self.interaction

        def files() -> list[discord.File]:
            return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in batch]

        age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
        if not self.by_channel and age < TOKEN_SAFE_SECONDS:
            try:
                return await interaction.followup.send(
                    content=content, files=files(), view=view, allowed_mentions=NO_PINGS, wait=True
                )
            except discord.HTTPException as exc:
                if exc.status != 401:  # 401: Discord says the token expired (its clock, not ours)
                    raise
        self.by_channel = True
        channel = interaction.channel
        permissions = interaction.app_permissions
        if not isinstance(channel, discord.abc.Messageable) or not (
            permissions.send_messages and permissions.attach_files
        ):
            log.warning(
                "Edit for user %s outlived its interaction token and I may not post in channel %s; "
                "cancelled, and the quota for undelivered pictures returned",
                interaction.user.id,
                interaction.channel_id,
            )
            raise DeliveryFailed(Text(words.TOKEN_EXPIRED_NO_CHANNEL))
        log.info(
            "Edit for user %s outlived its interaction token; posting to channel %s instead",
            interaction.user.id,
            interaction.channel_id,
        )
        return await channel.send(
            content=content,
            files=files(),
            view=view,
            allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
        )

    def summary(self, delivered: int, seconds: float) -> Text:
        """What the member reads in the ephemeral response once the pictures are out."""
        template = words.DONE_ONE if delivered == 1 else words.DONE_MANY
        return words.joined([Text(template, count=delivered, seconds=round(seconds)), *self.notes], " ")
