"""Posting an edit's pictures, packed to Discord's limits, through the member's reply (cogs/reply.py).

`ResultPoster` is the `deliver` callback the edit use case calls; it reports every message's pictures
back (`Delivery.posted`), which is what the member is charged for. The pictures are packed for the limit
of the way they go: a followup's (the interaction's) while the token lives, the bot's own in a channel;
a picture too large for any message is re-encoded, and the member is told what was changed. Where Discord
takes only a few followups (a user install alone: 5), the pictures share those messages, re-encoded smaller
as needed to fit together.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from dataclasses import dataclass, field

import discord
from PIL import Image

from cogs.base import picture_of
from cogs.buttons import result_view
from cogs.reply import Reply
from services.domain.editing import Delivery, DeliveryFailed, SentEdit
from services.imaging.images import decoding, extension_for, flatten
from services.imaging.limits import MAX_FILES_PER_MESSAGE, MAX_MESSAGE_CONTENT
from services.text import words
from services.text.words import Text

log = logging.getLogger(__name__)

# Re-encoding ladder for a result too large for one message: keep full resolution at high
# quality first, then trade quality, and only then resolution.
_JPEG_QUALITIES = (92, 85, 75, 65)
_DOWNSCALED_QUALITY = 80
_MAX_DOWNSCALE_STEP = 0.85
_MIN_REENCODE_SIDE = 16
_MiB = 1024 * 1024


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def quoted_prompt(prompt: str, room: int) -> str:
    """The prompt on one line, markdown escaped, within `room` characters."""
    return shorten(discord.utils.escape_markdown(shorten(" ".join(prompt.split()), room)), room)


def caption(reply: Reply, sent: SentEdit, part: Text | str = "", credit: Text | None = None) -> str:
    """The words above the pictures: prompt, requester and model, always inside Discord's limit."""
    values = {
        "mention": reply.member.mention,
        "model": sent.model,
        "width": sent.size[0],
        "height": sent.size[1],
        "part": part,
        "credit": Text("\n{credit}", credit=credit) if credit else "",
    }
    locale = reply.guild_locale
    room = MAX_MESSAGE_CONTENT - len(Text(words.CAPTION, prompt="", **values).render(locale)) - 4
    return Text(words.CAPTION, prompt=quoted_prompt(sent.prompt, room), **values).render(locale)


@dataclass
class ResultPoster:
    """Posts the pictures publicly, split or re-encoded to fit the upload limit; remembers what it posted.

    Between messages it asks whether the job was deleted meanwhile, and whether the way to the member
    changed (the token died), which packs the rest again for the new limit.
    """

    reply: Reply
    credit: Text | None = None
    notes: list[Text] = field(default_factory=list)
    messages: list[discord.Message] = field(default_factory=list)
    first_picture: bytes | None = None
    delivered: int = 0  # pictures posted and charged so far
    requested: int = 0

    async def __call__(self, delivery: Delivery) -> None:
        reply = self.reply
        extension = extension_for(delivery.sent.output_format)
        files = [
            OutputFile(f"retouch-{delivery.job_id}-{n}.{extension}", data)
            for n, data in enumerate(delivery.pictures, start=1)
        ]
        self.first_picture = delivery.pictures[0] if delivery.pictures else None
        self.requested = delivery.sent.count
        limit = reply.upload_limit()
        batches = await self._pack(files, limit, reply.posts_left())
        done = 0
        while batches:
            if reply.upload_limit() != limit:
                # The token died between messages: the rest is packed again for the bot's own limit.
                limit = reply.upload_limit()
                batches = await self._pack([f for batch in batches for f in batch], limit, reply.posts_left())
            total = done + len(batches)
            part = Text(words.CAPTION_PART, number=done + 1, total=total) if total > 1 else ""
            content = caption(reply, delivery.sent, part, self.credit)
            deletable = not reply.private and reply.server_id is not None
            view = result_view(delivery.job_id, reply.guild_locale, deletable=deletable)
            try:
                message = await reply.post(content, _files(batches[0]), view)
            except discord.HTTPException as exc:
                log.warning("Discord refused a delivery (HTTP %s, code %s)", exc.status, exc.code)
                raise DeliveryFailed(
                    Text(
                        words.DISCORD_REFUSED,
                        status=exc.status,
                        delivered=delivery.delivered,
                        requested=delivery.sent.count,
                    )
                ) from exc
            if message is None:
                continue  # the token died on the way: packed again for the channel, and sent there
            batches.pop(0)
            done += 1
            # Checked after each message, so that one Delete may have seen it (recorded) or not (taken back).
            if await self._withdrawn(delivery, message):
                return
            self.messages.append(message)
            try:
                await delivery.posted(
                    [
                        picture_of(a, channel_id=reply.channel_id, message_id=message.id, author_id=reply.member.id)
                        for a in message.attachments
                    ]
                )
            finally:
                self.delivered = delivery.delivered

    async def _pack(self, files: list[OutputFile], limit: int, messages: int | None) -> list[list[OutputFile]]:
        plan = await plan_delivery(files, size_limit=limit, max_messages=messages)
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

    def summary(self, delivered: int, seconds: float) -> Text:
        """What the member reads in the ephemeral response once the pictures are out."""
        return words.joined([Text(words.DONE, count=delivered, seconds=round(seconds)), *self.notes], " ")


class SharedBytesIO(io.BytesIO):
    """A picture's bytes as the file discord.py uploads, never copied.

    aiohttp's `BytesIOPayload` calls `getbuffer()` for the size; a plain `BytesIO` first copies the bytes it
    shares on that call: a whole picture on the event loop, held twice while it uploads. Here the buffer is
    the bytes themselves, read-only; the upload then reads them 64 KiB at a time.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._data = data

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)


def _files(batch: list[OutputFile]) -> list[discord.File]:
    return [discord.File(SharedBytesIO(f.data), filename=f.filename) for f in batch]


# --- packing: Discord's per-message limits ------------------------------------------------------


@dataclass
class OutputFile:
    """One picture to upload; `reencoded` is True when plan_delivery had to shrink it."""

    filename: str
    data: bytes
    reencoded: bool = False


@dataclass
class DeliveryPlan:
    """Messages to send, in order, and plain-words notes for the member about what was changed."""

    batches: list[list[OutputFile]]
    reencoded_count: int
    notes: list[Text]


def _human_size(size: int) -> str:
    if size >= _MiB:
        return f"{size / _MiB:.1f}".removesuffix(".0") + " MiB"
    return f"{size / 1024:.0f} KiB"


def _jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _shrink_to_fit(file: OutputFile, budget: int) -> tuple[OutputFile, bool]:
    """Re-encode `file` as JPEG until it is at most `budget` bytes; also says if it was downscaled.

    Raises ValueError if even a tiny version does not fit (only with an absurdly small budget).
    """
    with Image.open(io.BytesIO(file.data)) as original:
        image = flatten(original)
    filename = os.path.splitext(file.filename)[0] + ".jpg"
    encoded = b""
    for quality in _JPEG_QUALITIES:
        encoded = _jpeg_bytes(image, quality)
        if len(encoded) <= budget:
            return OutputFile(filename, encoded, reencoded=True), False
    scaled = image
    while min(scaled.size) > _MIN_REENCODE_SIDE:
        # JPEG size grows roughly with pixel count, so aim straight at the budget, with a margin,
        # but never shrink by less than a step so that this always makes progress.
        factor = min(_MAX_DOWNSCALE_STEP, math.sqrt(budget / len(encoded)) * 0.95)
        size = (max(1, int(scaled.width * factor)), max(1, int(scaled.height * factor)))
        scaled = image.resize(size, Image.Resampling.LANCZOS)
        encoded = _jpeg_bytes(scaled, _DOWNSCALED_QUALITY)
        if len(encoded) <= budget:
            log.debug(
                "re-encoded %s from %dx%d to %dx%d",
                file.filename,
                image.width,
                image.height,
                scaled.width,
                scaled.height,
            )
            return OutputFile(filename, encoded, reencoded=True), True
    raise ValueError(f"{file.filename} cannot be made to fit in {budget} bytes")


def _fitted(files: list[OutputFile], budget: int) -> tuple[list[OutputFile], int]:
    """`files`, each re-encoded that is larger than `budget`; and how many of them were downscaled."""
    fitted: list[OutputFile] = []
    downscaled = 0
    for file in files:
        if len(file.data) > budget:
            file, was_downscaled = _shrink_to_fit(file, budget)
            downscaled += was_downscaled
        fitted.append(file)
    return fitted, downscaled


def _shares(sizes: list[int], budget: int) -> int:
    """The most bytes any one of pictures of `sizes` may keep for all to fit in `budget` together: the smaller ones
    keep their size, the larger ones share what is left equally."""
    left = budget
    for index, size in enumerate(sorted(sizes)):
        share = left // (len(sizes) - index)
        if size > share:
            return share
        left -= size
    return budget


def _squeezed(files: list[OutputFile], budget: int, messages: int) -> tuple[list[list[OutputFile]], int]:
    """`files` in `messages` messages, in order and as evenly as their number allows, each message's pictures
    re-encoded to fit `budget` together; and how many were downscaled."""
    count = min(messages, len(files))
    batches: list[list[OutputFile]] = []
    downscaled = 0
    start = 0
    for number in range(count):
        end = start + len(files) // count + (number < len(files) % count)
        group = files[start:end]
        batch, scaled = _fitted(group, _shares([len(f.data) for f in group], budget))
        batches.append(batch)
        downscaled += scaled
        start = end
    return batches, downscaled


def _plan_delivery(files: list[OutputFile], size_limit: int, max_files: int, max_messages: int | None) -> DeliveryPlan:
    # The limit applies to the whole multipart request; keep room for part headers and the
    # message's JSON payload so that an exactly-full batch is not refused with a 413.
    budget = size_limit - (size_limit // 100 + 4096)
    if budget <= 0 or max_files < 1 or (max_messages is not None and max_messages * max_files < len(files)):
        raise ValueError(f"cannot deliver with size_limit={size_limit}, max_files={max_files}, {max_messages=}")

    fitted, downscaled = _fitted(files, budget)

    # Next-fit in order: pictures keep their order across messages, which members rely on
    # ("the third one") and which Reroll/Remix buttons refer to.
    batches: list[list[OutputFile]] = []
    batch_bytes = 0
    split_for_size = split_for_count = False
    for file in fitted:
        if batches and len(batches[-1]) < max_files and batch_bytes + len(file.data) <= budget:
            batches[-1].append(file)
            batch_bytes += len(file.data)
            continue
        if batches:
            if len(batches[-1]) >= max_files:
                split_for_count = True
            else:
                split_for_size = True
        batches.append([file])
        batch_bytes = len(file.data)

    if max_messages is not None and len(batches) > max_messages:
        # Fewer messages than the pictures need alone: they share them, from the originals (never re-encoded twice).
        batches, downscaled = _squeezed(files, budget, max_messages)
        fitted = [file for batch in batches for file in batch]
        split_for_size, split_for_count = True, False

    reencoded = sum(file.reencoded for file in fitted)
    limit_text = _human_size(size_limit)
    notes: list[Text] = []
    if reencoded:
        scaled = Text("")
        if downscaled:
            scaled = Text(words.DOWNSCALED_ONE) if reencoded == 1 else Text(words.DOWNSCALED_SOME, count=downscaled)
        notes.append(Text(words.REENCODED, count=reencoded, limit=limit_text, downscaled=scaled))
    if len(batches) > 1:
        if split_for_size and split_for_count:
            reason = Text(words.SPLIT_FOR_BOTH, files=max_files, limit=limit_text)
        elif split_for_size:
            reason = Text(words.SPLIT_FOR_SIZE, limit=limit_text)
        else:
            reason = Text(words.SPLIT_FOR_COUNT, files=max_files)
        notes.append(Text(words.SPLIT, count=len(batches), reason=reason))
    return DeliveryPlan(batches=batches, reencoded_count=reencoded, notes=notes)


async def plan_delivery(
    files: list[OutputFile],
    *,
    size_limit: int,
    max_files: int = MAX_FILES_PER_MESSAGE,
    max_messages: int | None = None,
) -> DeliveryPlan:
    """Pack `files` into messages Discord accepts, in their original order.

    Each message gets at most `max_files` files whose combined size stays under `size_limit`
    minus headroom (1% + 4 KiB) for the multipart overhead. A file too large for a message on
    its own is re-encoded as JPEG (quality first, then resolution) and renamed to `.jpg`; the
    input list and its OutputFile objects are not modified. No batch is empty (no files, no
    batches). At most `max_messages` batches (None: as many as needed): pictures that need more share
    them evenly, the larger ones of a message re-encoded to fit it together. Raises ValueError if the
    limits leave no room at all.
    """
    return await decoding(_plan_delivery, list(files), size_limit, max_files, max_messages)
