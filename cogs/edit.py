"""`/edit`: a member's picture, a prompt and optionally a mask, edited by the Model Hub."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from cogs.errors import InputError, RetouchCog, UpstreamError, describe_upstream_error
from services.editing import EditOrder, SourcePicture, run_edit
from services.images import (
    ImageError,
    ImageInfo,
    OutputFile,
    auto_size,
    extension_for,
    inspect_image,
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
class EditChoice:
    """Validated options of one edit, before any download."""

    prompt: str
    model: str
    size: tuple[int, int] | None  # None = auto
    count: int
    output_format: str


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


def check_attachment(field: str, attachment: discord.Attachment, max_bytes: int) -> None:
    """Type and size from what Discord already told us, so an obvious mistake costs no download."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        raise InputError(field, f"`{field}` must be a picture (PNG, JPEG, WebP or GIF); "
                                f"`{discord.utils.escape_markdown(attachment.filename)}` is not one.")
    if attachment.size > max_bytes:
        raise InputError(field, f"`{field}` must be at most {max_bytes / 1048576:.0f} MiB; "
                                f"this one is {attachment.size / 1048576:.1f} MiB.")


@dataclass
class Delivery:
    """How many pictures reached the channel so far: what the member is charged for."""

    count: int = 0


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


class EditCog(RetouchCog):
    """Image editing through the Model Hub."""

    def __init__(self, bot: RetouchBot) -> None:
        self.bot = bot

    @app_commands.command(name="edit")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The picture to edit",
        prompt="What should change (up to 1000 characters)",
        mask="Optional mask: transparent (or white) where the picture may change",
        size="auto (keeps the aspect ratio) or WIDTHxHEIGHT, multiples of 16 between 64 and 2048",
        count="How many pictures to make (1–10)",
        format="File format of the results",
        model="The editing model",
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, MAX_PROMPT],
        mask: discord.Attachment | None = None,
        size: str = "auto",
        count: app_commands.Range[int, 1, MAX_COUNT] = 1,
        format: Literal["png", "jpeg", "webp"] = "png",
        model: str | None = None,
    ) -> None:
        """Edit a picture with an AI model: describe the change, optionally attach a mask."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        settings = await self.bot.settings.get(interaction.guild_id)
        if settings.allowed_channel_ids and interaction.channel_id not in settings.allowed_channel_ids:
            channels = ", ".join(f"<#{c}>" for c in sorted(settings.allowed_channel_ids))
            raise InputError("channel", f"Retouch is not enabled in this channel; use {channels}.")
        choice = check_options(
            prompt=prompt, size=size, count=count, output_format=format,
            model=model or self.bot.config.default_model,
            offered_models=await self.bot.models.available(), settings=settings,
        )
        check_attachment("image", image, self.bot.config.max_input_bytes)
        if mask is not None:
            check_attachment("mask", mask, self.bot.config.max_input_bytes)
            if image.width and mask.width and (image.width, image.height) != (mask.width, mask.height):
                raise InputError("mask", f"`mask` must be the same size as `image` ({image.width}x{image.height}); "
                                         f"it is {mask.width}x{mask.height}.")
        # Ephemeral: refusals and progress are the member's own business; the pictures go public below.
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.run(interaction, choice, image, mask, settings)

    @edit.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction,
                                 current: str) -> list[app_commands.Choice[str]]:
        models = await self.bot.models.available()
        return [app_commands.Choice(name=m, value=m) for m in models if current.lower() in m.lower()][:25]

    async def run(self, interaction: discord.Interaction, choice: EditChoice, image: discord.Attachment,
                  mask: discord.Attachment | None, settings: GuildSettings) -> None:
        """Download and check the inputs, reserve quota, call the hub, deliver, keep what was delivered."""
        progress = Progress(interaction)
        await interaction.edit_original_response(content="Checking your picture…")
        source, info = await self._download("image", image)
        mask_source, mask_data_url = None, None
        if mask is not None:
            mask_source, mask_info = await self._download("mask", mask)
            try:
                prepared = await prepare_mask(mask_source.data, info)
            except ImageError as exc:
                raise InputError("mask", str(exc)) from None
            mask_data_url = prepared.data_url
        size = choice.size or auto_size(info.width, info.height, settings.auto_long_side)
        order = EditOrder(choice.model, choice.prompt, size, choice.count, choice.output_format,
                          source, mask_source, mask_data_url)
        assert interaction.guild_id is not None
        member = interaction.user
        role_ids = [role.id for role in getattr(member, "roles", [])]
        try:
            reservation = await self.bot.quota.reserve(interaction.guild_id, member.id, role_ids, choice.count)
        except QuotaExceeded as exc:
            raise InputError("count", self.bot.quota_words(exc)) from None
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
        summary = f"Done: {delivery.count} {'picture' if delivery.count == 1 else 'pictures'} posted below " \
                  f"in {progress.elapsed():.0f} s."
        await interaction.edit_original_response(content=" ".join([summary, *notes]))

    async def _download(self, field: str, attachment: discord.Attachment) -> tuple[SourcePicture, ImageInfo]:
        limit = self.bot.config.max_input_bytes
        try:
            async with self.bot.session.get(attachment.url, timeout=aiohttp.ClientTimeout(total=60)) as response:
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
        content_type = f"image/{info.format.lower()}"
        return SourcePicture(attachment.url, data, content_type), info

    async def _deliver(self, interaction: discord.Interaction, order: EditOrder,
                       pictures: list[bytes], delivery: Delivery) -> list[str]:
        """Post the pictures publicly, split or re-encoded to fit the upload limit; returns notes for the member."""
        extension = extension_for(order.output_format)
        files = [OutputFile(f"retouch-{interaction.id}-{n}.{extension}", data)
                 for n, data in enumerate(pictures, start=1)]
        plan = await plan_delivery(files, size_limit=interaction.filesize_limit)
        for number, batch in enumerate(plan.batches, start=1):
            part = f" · part {number}/{len(plan.batches)}" if len(plan.batches) > 1 else ""
            await interaction.followup.send(
                content=caption(order.prompt, interaction.user, order.model, order.size, part),
                files=[discord.File(io.BytesIO(f.data), filename=f.filename) for f in batch],
                allowed_mentions=NO_PINGS,
                wait=True,
            )
            delivery.count += len(batch)
        return plan.notes


async def setup(bot: RetouchBot) -> None:
    await bot.add_cog(EditCog(bot))
