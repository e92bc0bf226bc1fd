"""Posting an edit's pictures: a followup while the interaction token lives, a channel message after.

`ResultPoster` is the `deliver` callback the edit use case calls; it reports every message's pictures
back (`Delivery.posted`), which is what the member is charged for.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field

import discord

from cogs.base import picture_of
from cogs.buttons import result_view
from cogs.failures import note_delivered
from cogs.tokens import token_refused, token_usable
from services import words
from services.editing import Delivery, DeliveryFailed, EditOrder
from services.images import OutputFile, extension_for, plan_delivery
from services.limits import DEFAULT_UPLOAD_LIMIT, MAX_MESSAGE_CONTENT, MAX_REQUEST_BYTES
from services.words import Text

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()


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


def bots_own_limit(interaction: discord.Interaction) -> int:
    """What one of the bot's own channel messages may carry: the server's boost tier, and one request's cap.

    Not the interaction's `attachment_size_limit`: that counts the member's Nitro, which the bot has not.
    """
    guild = interaction.guild
    return min(guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT, MAX_REQUEST_BYTES)


@dataclass
class ResultPoster:
    """Posts the pictures publicly, split or re-encoded to fit the upload limit; remembers what it posted.

    Followups while the token lives (the interaction's limit); once it is dead or old, channel messages
    packed for the bot's own limit. Between messages it asks whether the job was deleted meanwhile.
    """

    interaction: discord.Interaction
    credit: Text | None = None
    notes: list[Text] = field(default_factory=list)
    messages: list[discord.Message] = field(default_factory=list)
    first_picture: bytes | None = None
    went_to_channel: bool = False

    @property
    def by_channel(self) -> bool:
        """Results went out as channel messages, or the token is dead: the ephemeral response is out of reach."""
        return self.went_to_channel or not token_usable(self.interaction)

    async def __call__(self, delivery: Delivery) -> None:
        interaction = self.interaction
        extension = extension_for(delivery.order.output_format)
        files = [
            OutputFile(f"retouch-{interaction.id}-{n}.{extension}", data)
            for n, data in enumerate(delivery.pictures, start=1)
        ]
        self.first_picture = delivery.pictures[0] if delivery.pictures else None
        locale = interaction.guild_locale.value if interaction.guild_locale else None
        to_channel = self.by_channel
        batches = await self._plan(files, to_channel)
        done = 0
        while batches:
            if not to_channel and self.by_channel:
                # The token died between messages: the rest is packed again for the bot's own limit.
                to_channel = True
                batches = await self._plan([f for batch in batches for f in batch], to_channel)
            total = done + len(batches)
            part = Text(words.CAPTION_PART, number=done + 1, total=total) if total > 1 else ""
            content = caption(interaction, delivery.order, part, self.credit)
            view = result_view(delivery.job_id, locale)
            try:
                if to_channel:
                    message = await self._to_channel(batches[0], view=view, content=content)
                else:
                    message = await self._followup(batches[0], view=view, content=content)
            except discord.HTTPException as exc:
                if not to_channel and token_refused(interaction, exc):
                    log.info("Discord refused the token of interaction %s; posting to the channel", interaction.id)
                    continue
                log.warning("Discord refused a delivery (HTTP %s, code %s)", exc.status, exc.code)
                raise DeliveryFailed(
                    Text(
                        words.DISCORD_REFUSED,
                        status=exc.status,
                        delivered=delivery.delivered,
                        requested=delivery.order.count,
                    )
                ) from exc
            batches.pop(0)
            done += 1
            # Checked after each message, so that one Delete may have seen it (recorded) or not (taken back).
            if await self._withdrawn(delivery, message):
                return
            self.messages.append(message)
            try:
                await delivery.posted(
                    [
                        picture_of(
                            a, channel_id=interaction.channel_id, message_id=message.id, author_id=interaction.user.id
                        )
                        for a in message.attachments
                    ]
                )
            finally:
                note_delivered(interaction, delivery.delivered, delivery.order.count)

    async def _plan(self, files: list[OutputFile], to_channel: bool) -> list[list[OutputFile]]:
        limit = (
            bots_own_limit(self.interaction) if to_channel else min(self.interaction.filesize_limit, MAX_REQUEST_BYTES)
        )
        plan = await plan_delivery(files, size_limit=limit)
        self.notes = plan.notes
        return plan.batches

    async def _withdrawn(self, delivery: Delivery, posted: discord.Message) -> bool:
        """The job was deleted meanwhile: the message just posted is taken back and nothing more goes out."""
        if not await delivery.withdrawn():
            return False
        log.info("Job %d was deleted during its delivery; %d pictures were posted", delivery.job_id, delivery.delivered)
        with contextlib.suppress(discord.HTTPException):
            await posted.delete()
        if not delivery.delivered:
            raise DeliveryFailed(Text(words.DELIVERY_DELETED_NOTHING))
        self.notes = [Text(words.DELIVERY_STOPPED_DELETED)]
        return True

    @staticmethod
    def _files(batch: list[OutputFile]) -> list[discord.File]:
        return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in batch]

    async def _followup(self, batch: list[OutputFile], *, view: discord.ui.View, content: str) -> discord.Message:
        return await self.interaction.followup.send(
            content=content,
            files=self._files(batch),
            view=view,
            allowed_mentions=NO_PINGS,
            suppress_embeds=True,  # a link in the prompt must not unfurl under the bot's name
            wait=True,
        )

    async def _to_channel(self, batch: list[OutputFile], *, view: discord.ui.View, content: str) -> discord.Message:
        """A channel message pinging the requester, for an edit that outlived its interaction token."""
        interaction = self.interaction
        self.went_to_channel = True
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
            files=self._files(batch),
            view=view,
            allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
            suppress_embeds=True,
        )

    def summary(self, delivered: int, seconds: float) -> Text:
        """What the member reads in the ephemeral response once the pictures are out."""
        template = words.DONE_ONE if delivered == 1 else words.DONE_MANY
        return words.joined([Text(template, count=delivered, seconds=round(seconds)), *self.notes], " ")
