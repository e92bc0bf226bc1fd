"""The edit pipeline every entry point shares (`/edit`, Reroll, Remix): check, reserve, call, deliver, settle.

Not an extension: the cogs import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import discord

from cogs.errors import InputError, RetouchError, UpstreamError, describe_upstream_error, send_error
from services.editing import EditOrder, SourcePicture, run_edit
from services.images import (
    ImageError,
    ImageInfo,
    OutputFile,
    auto_size,
    extension_for,
    inspect_image,
    make_thumbnail,
    parse_size,
    plan_delivery,
    prepare_mask,
)
from services.job_queue import QueueClosed, QueueRefused, Ticket
from services.jobs import NewJob, Origin, PictureRef
from services.modelhub import ModelHubError
from services.quota import QuotaExceeded
from services.settings import GuildSettings, find_blocked

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

MAX_PROMPT = 1000
MAX_COUNT = 10
PROGRESS_INTERVAL = 3.0
# Discord's cap on message content; the prompt is shortened to keep the caption inside it.
MAX_CONTENT = 2000
NO_PINGS = discord.AllowedMentions.none()
# Interaction tokens die 15 minutes after the command; past this age, results go out as channel messages
# (the margin covers the upload itself).
TOKEN_SAFE_SECONDS = 14 * 60


@dataclass(frozen=True)
class InputPicture:
    """A picture to edit as Discord describes it (an attachment of a command or of a message)."""

    url: str
    filename: str
    content_type: str | None
    size: int
    width: int | None
    height: int | None
    attachment_id: int | None = None

    @classmethod
    def from_attachment(cls, attachment: discord.Attachment) -> InputPicture:
        return cls(
            attachment.url,
            attachment.filename,
            attachment.content_type,
            attachment.size,
            attachment.width,
            attachment.height,
            attachment.id,
        )

    def reference(self, channel_id: int | None, message_id: int | None, author_id: int) -> PictureRef:
        """How the job record finds this picture again."""
        return PictureRef(
            self.url,
            self.filename,
            self.content_type,
            self.size,
            self.width,
            self.height,
            self.attachment_id,
            channel_id,
            message_id,
            author_id,
        )


@dataclass(frozen=True)
class EditChoice:
    """Validated options of one edit, before any download."""

    prompt: str
    model: str
    size: tuple[int, int] | None  # None = auto
    count: int
    output_format: str


@dataclass
class Delivery:
    """What reached the channel so far: the pictures counted are what the member is charged for."""

    count: int = 0
    messages: list[discord.Message] = field(default_factory=list)
    job_id: int | None = None  # the job record the posted pictures belong to (and their buttons point at)
    credit: str = ""  # a remix's line naming what it builds on
    by_channel: bool = False  # the interaction token expired: results went out as channel messages


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str:
    # Built by hand: a webhook message does not know its guild, so its own jump_url points at DMs.
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def caption(prompt: str, user: discord.abc.User, model: str, size: tuple[int, int], part: str = "") -> str:
    """The words above the pictures: prompt, requester and model, always inside Discord's limit."""
    tail = f"\nRequested by {user.mention} · `{model}` · {size[0]}x{size[1]}{part}"
    room = MAX_CONTENT - len(tail) - 4
    quoted = discord.utils.escape_markdown(shorten(" ".join(prompt.split()), room))
    return f"> {shorten(quoted, room)}{tail}"


def check_options(
    *,
    prompt: str,
    size: str,
    count: int,
    output_format: str,
    model: str,
    offered_models: tuple[str, ...],
    settings: GuildSettings,
) -> EditChoice:
    """The checks that need no download; each failure names the option and the allowed range."""
    prompt = prompt.strip()
    if not 1 <= len(prompt) <= MAX_PROMPT:
        raise InputError("prompt", f"`prompt` must be 1–{MAX_PROMPT} characters; it has {len(prompt)}.")
    if find_blocked(prompt, settings.blocklist):
        raise InputError("prompt", "`prompt` contains a word or phrase this server does not allow.")
    try:
        parsed_size = parse_size(size)
    except ValueError as exc:
        raise InputError("size", str(exc)) from None
    max_count = min(MAX_COUNT, settings.max_count)
    if not 1 <= count <= max_count:
        raise InputError("count", f"`count` must be between 1 and {max_count}; got {count}.")
    if output_format not in ("png", "jpeg", "webp"):
        raise InputError("format", f"`format` must be png, jpeg or webp; got `{output_format}`.")
    if model not in offered_models:
        offered = ", ".join(f"`{m}`" for m in offered_models) or "none right now"
        raise InputError("model", f"`model` must be one of the editing models offered: {offered}.")
    return EditChoice(prompt, model, parsed_size, count, output_format)


def check_picture(field: str, picture: InputPicture, max_bytes: int) -> None:
    """Type and size from what Discord already told us, so an obvious mistake costs no download."""
    content_type = (picture.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise InputError(
            field,
            f"`{field}` must be a picture (PNG, JPEG, WebP or GIF); "
            f"`{discord.utils.escape_markdown(picture.filename)}` is not one.",
        )
    if picture.size > max_bytes:
        raise InputError(
            field,
            f"`{field}` must be at most {max_bytes / 1048576:.0f} MiB; this one is {picture.size / 1048576:.1f} MiB.",
        )


def check_mask_matches(image: InputPicture, mask: InputPicture) -> None:
    if image.width and mask.width and (image.width, image.height) != (mask.width, mask.height):
        raise InputError(
            "mask",
            f"`mask` must be the same size as `image` ({image.width}x{image.height}); "
            f"it is {mask.width}x{mask.height}.",
        )


def check_channel(settings: GuildSettings, channel_id: int) -> None:
    """Refuses a channel the server has not enabled Retouch in, naming the ones it has."""
    if not settings.channel_allowed(channel_id):
        channels = ", ".join(f"<#{c}>" for c in sorted(settings.allowed_channel_ids))
        raise InputError("channel", f"Retouch is not enabled in this channel; use {channels}.")


def describe_quota_refusal(error: QuotaExceeded) -> str:
    """How many images are left, and when the next one frees up."""
    status = error.status
    if status.blocked_by == "budget" and status.budget is not None:
        budget = status.budget
        when = (
            f" The next one frees up {discord.utils.format_dt(budget.next_free_at, 'R')}."
            if budget.next_free_at
            else ""
        )
        return (
            f"This server's image budget is used up: {budget.remaining} of {budget.rule.limit} images left "
            f"this {budget.rule.period.value}, and you asked for {error.requested}.{when}"
        )
    when = f" The next one frees up {discord.utils.format_dt(status.next_free_at, 'R')}." if status.next_free_at else ""
    return (
        f"You have {status.remaining} of {status.limit} images left this {status.rule.period.value} "
        f"and asked for {error.requested}.{when}"
    )


class Progress:
    """Edits the original response with the elapsed time while slow work runs."""

    def __init__(self, interaction: discord.Interaction, interval: float = PROGRESS_INTERVAL) -> None:
        self._interaction = interaction
        self._interval = interval
        self._started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @contextlib.asynccontextmanager
    async def showing(self, describe: Callable[[float], Awaitable[str]]) -> AsyncIterator[None]:
        task = asyncio.create_task(self._tick(describe))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self, describe: Callable[[float], Awaitable[str]]) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._interaction.edit_original_response(content=await describe(self.elapsed()))
            except discord.HTTPException as exc:
                # Progress is a courtesy: a failed edit must not stop the job itself.
                log.debug("Could not show progress: %s", exc)


class EditPipeline:
    """Runs one edit for an interaction that has already been deferred ephemerally."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    async def run(
        self,
        interaction: discord.Interaction,
        choice: EditChoice,
        image: InputPicture,
        mask: InputPicture | None,
        settings: GuildSettings,
        origin: Origin | None = None,
    ) -> None:
        """Take a place in the queue (a full queue refuses before anything is spent), then run the edit."""
        assert interaction.guild_id is not None
        try:
            ticket = self.bot.queue.admit(interaction.guild_id, interaction.user.id, choice.count)
        except QueueRefused as exc:
            raise InputError(
                "queue",
                f"Retouch is busy: {exc}. Please try again in about "
                f"{max(exc.retry_after, 1):.0f} s; nothing was charged.",
            ) from None
        except QueueClosed as exc:
            raise InputError("queue", f"{exc}; please try again in a minute. Nothing was charged.") from None
        try:
            await self._run_admitted(interaction, choice, image, mask, settings, origin, ticket)
        except asyncio.CancelledError:
            # Only a shutdown cancels a job; the settle in _run_admitted has already returned the quota.
            await asyncio.shield(
                send_error(
                    interaction,
                    "Retouch is restarting and had to stop this edit; only "
                    "pictures already posted were charged. Please try again.",
                )
            )
            raise
        finally:
            self.bot.queue.finish(ticket)

    async def _run_admitted(
        self,
        interaction: discord.Interaction,
        choice: EditChoice,
        image: InputPicture,
        mask: InputPicture | None,
        settings: GuildSettings,
        origin: Origin | None,
        ticket: Ticket,
    ) -> None:
        """Download and check the inputs, reserve quota, wait for a turn, call the hub, deliver, settle."""
        progress = Progress(interaction)
        await interaction.edit_original_response(content="Checking your picture…")
        source, info = await self._download("image", image)
        mask_source, mask_data_url = None, None
        if mask is not None:
            mask_source, _ = await self._download("mask", mask)
            try:
                mask_data_url = (await prepare_mask(mask_source.data, info)).data_url
            except ImageError as exc:
                raise InputError("mask", str(exc)) from None
        size = choice.size or auto_size(info.width, info.height, settings.auto_long_side)
        order = EditOrder(
            choice.model, choice.prompt, size, choice.count, choice.output_format, source, mask_source, mask_data_url
        )
        assert interaction.guild_id is not None
        member = interaction.user
        role_ids = [role.id for role in getattr(member, "roles", [])]
        try:
            reservation = await self.bot.quota.reserve(interaction.guild_id, member.id, role_ids, choice.count)
        except QuotaExceeded as exc:
            raise InputError("count", describe_quota_refusal(exc)) from None
        origin = origin or Origin()
        job_id = await self.bot.jobs.create(self._new_job(interaction, order, image, mask, origin))
        delivery = Delivery(job_id=job_id, credit=origin.credit)
        try:
            plural = "picture" if choice.count == 1 else "pictures"

            async def describe(elapsed: float) -> str:
                if ticket.started_at is None:
                    view = await self.bot.queue.view(ticket)
                    # Position 0: past the line, waiting only for the upstream's image rate.
                    place = "next" if view.position == 0 else f"position {view.position} of {view.waiting}"
                    wait = f"{view.expected_wait:.1f}" if view.expected_wait < 10 else f"{view.expected_wait:.0f}"
                    return f"In line: {place} · about {wait} s to wait · {elapsed:.0f} s elapsed"
                return f"Editing {choice.count} {plural}… {elapsed:.0f} s"

            async with progress.showing(describe), self.bot.queue.running(ticket):
                result = await run_edit(self.bot.hub, order, paced=True)
            notes = await self._deliver(interaction, order, [i.data for i in result.images], delivery)
        except ModelHubError as exc:
            log.info("Edit for user %s failed upstream: %r", member.id, exc)
            raise UpstreamError(describe_upstream_error(exc)) from exc
        except discord.HTTPException as exc:
            log.warning("Discord refused a delivery (HTTP %s, code %s)", exc.status, exc.code)
            raise UpstreamError(
                f"Discord refused to post the pictures (HTTP {exc.status}); {delivery.count} of "
                f"{choice.count} were posted and only those were charged."
            ) from exc
        finally:
            # Shielded: a cancelled job must still give back what it did not deliver.
            await asyncio.shield(self.bot.quota.settle(reservation.id, delivery.count))
            await asyncio.shield(self.bot.jobs.finish(job_id, delivery.count))
        if settings.audit_channel_id is not None:
            await self._audit(interaction, order, settings.audit_channel_id, result.images[0].data, delivery)
        summary = (
            f"Done: {delivery.count} {'picture' if delivery.count == 1 else 'pictures'} posted below "
            f"in {progress.elapsed():.0f} s."
        )
        if not delivery.by_channel:  # otherwise the token is dead, and the mention in the channel told them
            await interaction.edit_original_response(content=" ".join([summary, *notes]))

    async def _audit(
        self,
        interaction: discord.Interaction,
        order: EditOrder,
        channel_id: int,
        first_result: bytes,
        delivery: Delivery,
    ) -> None:
        """Tell the audit-log channel who edited what, with small previews; never fails the edit itself."""
        channel = self.bot.get_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            log.warning(
                "Audit channel %s of guild %s is not a text channel I can see", channel_id, interaction.guild_id
            )
            return
        previews = [("input", order.image.data), ("result", first_result)]
        if order.mask is not None:
            previews.insert(1, ("mask", order.mask.data))
        files = [
            discord.File(io.BytesIO(await make_thumbnail(data)), filename=f"{name}.png") for name, data in previews
        ]
        link = (
            jump_url(interaction.guild_id, interaction.channel_id, delivery.messages[0].id)
            if delivery.messages
            else "(not posted)"
        )
        content = (
            f"{interaction.user.mention} edited in <#{interaction.channel_id}> · `{order.model}` · "
            f"{order.size[0]}x{order.size[1]} · {delivery.count} of {order.count} posted · {link}\n"
            f"> {discord.utils.escape_markdown(shorten(' '.join(order.prompt.split()), 1500))}"
        )
        try:
            await channel.send(content=content, files=files, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("Could not write to the audit channel %s (HTTP %s)", channel_id, exc.status)

    async def _download(self, field: str, picture: InputPicture) -> tuple[SourcePicture, ImageInfo]:
        limit = self.bot.config.max_input_bytes
        try:
            async with self.bot.session.get(picture.url, timeout=aiohttp.ClientTimeout(total=60)) as response:
                if response.status != 200:
                    raise InputError(
                        field,
                        f"Could not download `{field}` from Discord (HTTP {response.status}); please upload it again.",
                    )
                # read(n) returns what has arrived so far, not n bytes: gather chunks up to just past the limit.
                buffer = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    buffer += chunk
                    if len(buffer) > limit:
                        break
                data = bytes(buffer)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise InputError(field, f"Could not download `{field}` from Discord; please upload it again.") from exc
        if len(data) > limit:
            raise InputError(field, f"`{field}` must be at most {limit / 1048576:.0f} MiB.")
        try:
            info = await inspect_image(data, field=field)
        except ImageError as exc:
            raise InputError(field, str(exc)) from None
        return SourcePicture(picture.url, data, f"image/{info.format.lower()}"), info

    async def _deliver(
        self, interaction: discord.Interaction, order: EditOrder, pictures: list[bytes], delivery: Delivery
    ) -> list[str]:
        """Post the pictures publicly, split or re-encoded to fit the upload limit; returns notes for the member."""
        extension = extension_for(order.output_format)
        files = [
            OutputFile(f"retouch-{interaction.id}-{n}.{extension}", data) for n, data in enumerate(pictures, start=1)
        ]
        from cogs.remix import result_view  # here, not at the top: cogs.remix imports this module

        assert delivery.job_id is not None
        plan = await plan_delivery(files, size_limit=interaction.filesize_limit)
        credit = f"\n{delivery.credit}" if delivery.credit else ""
        for number, batch in enumerate(plan.batches, start=1):
            part = f" · part {number}/{len(plan.batches)}" if len(plan.batches) > 1 else ""
            message = await self._post(
                interaction,
                delivery,
                batch,
                view=result_view(delivery.job_id),
                content=caption(order.prompt, interaction.user, order.model, order.size, part + credit),
            )
            delivery.count += len(batch)
            delivery.messages.append(message)
            await self.bot.jobs.add_results(
                delivery.job_id,
                [
                    InputPicture.from_attachment(a).reference(interaction.channel_id, message.id, interaction.user.id)
                    for a in message.attachments
                ],
            )
        return plan.notes

    async def _post(
        self,
        interaction: discord.Interaction,
        delivery: Delivery,
        batch: list[OutputFile],
        *,
        view: discord.ui.View,
        content: str,
    ) -> discord.Message:
        """One result message: a followup while the token lives, else a channel message pinging the requester."""

        def files() -> list[discord.File]:
            return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in batch]

        age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
        if not delivery.by_channel and age < TOKEN_SAFE_SECONDS:
            try:
                return await interaction.followup.send(
                    content=content, files=files(), view=view, allowed_mentions=NO_PINGS, wait=True
                )
            except discord.HTTPException as exc:
                if exc.status != 401:  # 401: Discord says the token expired (its clock, not ours)
                    raise
        delivery.by_channel = True
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
            raise RetouchError(
                "The edit took longer than Discord lets a reply wait, and Retouch may not post "
                "in this channel; it was cancelled and nothing undelivered was charged."
            )
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

    @staticmethod
    def _new_job(
        interaction: discord.Interaction,
        order: EditOrder,
        image: InputPicture,
        mask: InputPicture | None,
        origin: Origin,
    ) -> NewJob:
        """The job record: without an origin, the source is the requester's own upload to this command."""
        user_id = interaction.user.id
        channel_id = origin.source_channel_id or interaction.channel_id
        source = image.reference(channel_id, origin.source_message_id, origin.source_author_id or user_id)
        assert interaction.channel_id is not None
        return NewJob(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=user_id,
            prompt=order.prompt,
            model=order.model,
            size=f"{order.size[0]}x{order.size[1]}",
            count=order.count,
            output_format=order.output_format,
            source=source,
            mask=mask.reference(interaction.channel_id, None, user_id) if mask else None,
            parent_job_id=origin.parent_job_id,
        )
