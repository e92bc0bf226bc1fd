"""The edit pipeline every entry point shares (`/edit`, Reroll, Remix): check, reserve, call, deliver, settle.

Not an extension: the cogs import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import discord

from cogs.errors import InputError, UpstreamError, describe_upstream_error
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


@dataclass(frozen=True)
class InputPicture:
    """A picture to edit as Discord describes it (an attachment of a command or of a message)."""

    url: str
    filename: str
    content_type: str | None
    size: int
    width: int | None
    height: int | None

    @classmethod
    def from_attachment(cls, attachment: discord.Attachment) -> InputPicture:
        return cls(attachment.url, attachment.filename, attachment.content_type, attachment.size,
                   attachment.width, attachment.height)


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
    messages: list[discord.WebhookMessage] = field(default_factory=list)


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
        raise InputError(field, f"`{field}` must be a picture (PNG, JPEG, WebP or GIF); "
                                f"`{discord.utils.escape_markdown(picture.filename)}` is not one.")
    if picture.size > max_bytes:
        raise InputError(field, f"`{field}` must be at most {max_bytes / 1048576:.0f} MiB; "
                                f"this one is {picture.size / 1048576:.1f} MiB.")


def check_mask_matches(image: InputPicture, mask: InputPicture) -> None:
    if image.width and mask.width and (image.width, image.height) != (mask.width, mask.height):
        raise InputError("mask", f"`mask` must be the same size as `image` ({image.width}x{image.height}); "
                                 f"it is {mask.width}x{mask.height}.")


def describe_quota_refusal(error: QuotaExceeded) -> str:
    """How many images are left, and when the next one frees up."""
    status = error.status
    if status.blocked_by == "budget" and status.budget is not None:
        budget = status.budget
        when = f" The next one frees up {discord.utils.format_dt(budget.next_free_at, 'R')}." \
            if budget.next_free_at else ""
        return (f"This server's image budget is used up: {budget.remaining} of {budget.rule.limit} images left "
                f"this {budget.rule.period.value}, and you asked for {error.requested}.{when}")
    when = f" The next one frees up {discord.utils.format_dt(status.next_free_at, 'R')}." \
        if status.next_free_at else ""
    return (f"You have {status.remaining} of {status.limit} images left this {status.rule.period.value} "
            f"and asked for {error.requested}.{when}")


class Progress:
    """Edits the original response with the elapsed time while slow work runs."""

    def __init__(self, interaction: discord.Interaction, interval: float = PROGRESS_INTERVAL) -> None:
        self._interaction = interaction
        self._interval = interval
        self._started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @contextlib.asynccontextmanager
    async def showing(self, describe: Callable[[float], str]) -> AsyncIterator[None]:
        task = asyncio.create_task(self._tick(describe))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self, describe: Callable[[float], str]) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._interaction.edit_original_response(content=describe(self.elapsed()))
            except discord.HTTPException as exc:
                # Progress is a courtesy: a failed edit must not stop the job itself.
                log.debug("Could not show progress: %s", exc)


class EditPipeline:
    """Runs one edit for an interaction that has already been deferred ephemerally."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    async def run(self, interaction: discord.Interaction, choice: EditChoice, image: InputPicture,
                  mask: InputPicture | None, settings: GuildSettings) -> None:
        """Download and check the inputs, reserve quota, call the hub, deliver, keep what was delivered."""
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
        order = EditOrder(choice.model, choice.prompt, size, choice.count, choice.output_format,
                          source, mask_source, mask_data_url)
        assert interaction.guild_id is not None
        member = interaction.user
        role_ids = [role.id for role in getattr(member, "roles", [])]
        try:
            reservation = await self.bot.quota.reserve(interaction.guild_id, member.id, role_ids, choice.count)
        except QuotaExceeded as exc:
            raise InputError("count", describe_quota_refusal(exc)) from None
        delivery = Delivery()
        try:
            plural = "picture" if choice.count == 1 else "pictures"
            async with progress.showing(lambda s: f"Editing {choice.count} {plural}… {s:.0f} s"):
                result = await run_edit(self.bot.hub, order)
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
        if settings.audit_channel_id is not None:
            await self._audit(interaction, order, settings.audit_channel_id, result.images[0].data, delivery)
        summary = f"Done: {delivery.count} {'picture' if delivery.count == 1 else 'pictures'} posted below " \
                  f"in {progress.elapsed():.0f} s."
        await interaction.edit_original_response(content=" ".join([summary, *notes]))

    async def _audit(self, interaction: discord.Interaction, order: EditOrder, channel_id: int,
                     first_result: bytes, delivery: Delivery) -> None:
        """Tell the audit-log channel who edited what, with small previews; never fails the edit itself."""
        channel = self.bot.get_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("Audit channel %s of guild %s is not a text channel I can see", channel_id,
                        interaction.guild_id)
            return
        previews = [("input", order.image.data), ("result", first_result)]
        if order.mask is not None:
            previews.insert(1, ("mask", order.mask.data))
        files = [discord.File(io.BytesIO(await make_thumbnail(data)), filename=f"{name}.png")
                 for name, data in previews]
        # A webhook message does not know its guild, so its own jump_url points at DMs.
        link = (f"https://discord.com/channels/{interaction.guild_id}/{interaction.channel_id}/"
                f"{delivery.messages[0].id}") if delivery.messages else "(not posted)"
        content = (f"{interaction.user.mention} edited in <#{interaction.channel_id}> · `{order.model}` · "
                   f"{order.size[0]}x{order.size[1]} · {delivery.count} of {order.count} posted · {link}\n"
                   f"> {discord.utils.escape_markdown(shorten(' '.join(order.prompt.split()), 1500))}")
        try:
            await channel.send(content=content, files=files, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("Could not write to the audit channel %s (HTTP %s)", channel_id, exc.status)

    async def _download(self, field: str, picture: InputPicture) -> tuple[SourcePicture, ImageInfo]:
        limit = self.bot.config.max_input_bytes
        try:
            async with self.bot.session.get(picture.url, timeout=aiohttp.ClientTimeout(total=60)) as response:
                if response.status != 200:
                    raise InputError(field, f"Could not download `{field}` from Discord (HTTP {response.status}); "
                                            "please upload it again.")
                data = await response.content.read(limit + 1)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise InputError(field, f"Could not download `{field}` from Discord; please upload it again.") from exc
        if len(data) > limit:
            raise InputError(field, f"`{field}` must be at most {limit / 1048576:.0f} MiB.")
        try:
            info = await inspect_image(data, field=field)
        except ImageError as exc:
            raise InputError(field, str(exc)) from None
        return SourcePicture(picture.url, data, f"image/{info.format.lower()}"), info

    async def _deliver(self, interaction: discord.Interaction, order: EditOrder,
                       pictures: list[bytes], delivery: Delivery) -> list[str]:
        """Post the pictures publicly, split or re-encoded to fit the upload limit; returns notes for the member."""
        extension = extension_for(order.output_format)
        files = [OutputFile(f"retouch-{interaction.id}-{n}.{extension}", data)
                 for n, data in enumerate(pictures, start=1)]
        plan = await plan_delivery(files, size_limit=interaction.filesize_limit)
        for number, batch in enumerate(plan.batches, start=1):
            part = f" · part {number}/{len(plan.batches)}" if len(plan.batches) > 1 else ""
            message = await interaction.followup.send(
                content=caption(order.prompt, interaction.user, order.model, order.size, part),
                files=[discord.File(io.BytesIO(f.data), filename=f.filename) for f in batch],
                allowed_mentions=NO_PINGS,
                wait=True,
            )
            delivery.count += len(batch)
            delivery.messages.append(message)
        return plan.notes
