"""The one check of an edit's options and pictures, before anything is spent; every entry point calls it.

Each refusal names the field at fault and says what is allowed, in words a member reads (`Text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.imaging.images import mask_size_text, parse_size
from services.imaging.limits import MAX_COUNT, MAX_PROMPT, MIN_COUNT, OUTPUT_FORMATS
from services.imaging.outpaint import Growth
from services.imaging.pictures import Picture
from services.storage.settings import GuildSettings, find_blocked
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

_MiB = 1024 * 1024


@dataclass(frozen=True)
class TypedEdit:
    """An edit as the member typed it, before any check (the Remix modal's count is text)."""

    channel_id: int
    prompt: str
    image: Picture
    mask: Picture | None = None
    size: str = "auto"
    count: int | str = 1
    output_format: str = "png"
    model: str = ""
    growth: Growth | None = None  # Zoom out or Pan: the picture grows on a larger canvas, the new area masked


@dataclass(frozen=True)
class CheckedEdit:
    """An edit whose options and pictures passed every check that needs no download."""

    prompt: str
    model: str
    size: tuple[int, int] | None  # None: auto, from the picture's aspect ratio
    count: int
    output_format: str
    image: Picture
    mask: Picture | None
    auto_long_side: int  # the long side `size: auto` scales to, this server's setting
    growth: Growth | None = None  # the canvas (and `size`) come from the picture once it is read


def check_channel(settings: GuildSettings, channel_id: int) -> None:
    """Refuses a channel the server has not enabled Retouch in, naming the ones it has."""
    if not settings.channel_allowed(channel_id):
        channels = ", ".join(f"<#{c}>" for c in sorted(settings.allowed_channel_ids))
        raise Refusal(Text(words.CHANNEL_NOT_ENABLED, channels=channels), field="channel")


def validate(
    form: TypedEdit, *, settings: GuildSettings, offered_models: Sequence[str], max_input_bytes: int
) -> CheckedEdit:
    """Every check that needs no download, in the order a member fixes them; raises Refusal."""
    check_channel(settings, form.channel_id)
    prompt = form.prompt.strip()
    if not 1 <= len(prompt) <= MAX_PROMPT:
        raise Refusal(Text(words.PROMPT_LENGTH, min=1, max=MAX_PROMPT, length=len(prompt)), field="prompt")
    if find_blocked(prompt, settings.blocklist):
        raise Refusal(Text(words.PROMPT_BLOCKED), field="prompt")
    size = parse_size(form.size)
    max_count = min(MAX_COUNT, settings.max_count)
    count = _count(form.count, max_count)
    if form.output_format not in OUTPUT_FORMATS:
        raise Refusal(Text(words.FORMAT_CHOICE, value=form.output_format), field="format")
    if form.model not in offered_models:
        offered = ", ".join(f"`{m}`" for m in offered_models) or Text(words.MODELS_NONE)
        raise Refusal(Text(words.MODEL_CHOICE, offered=offered), field="model")
    _check_picture("image", form.image, max_input_bytes)
    if form.mask is not None:
        _check_picture("mask", form.mask, max_input_bytes)
        image, mask = form.image, form.mask
        if image.width and image.height and mask.width and (image.width, image.height) != (mask.width, mask.height):
            raise Refusal(mask_size_text(image.width, image.height, mask.width, mask.height), field="mask")
    return CheckedEdit(
        prompt,
        form.model,
        size,
        count,
        form.output_format,
        form.image,
        form.mask,
        settings.auto_long_side,
        form.growth,
    )


def _count(value: int | str, max_count: int) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise Refusal(Text(words.COUNT_NOT_NUMBER, min=MIN_COUNT, max=max_count), field="count") from None
    if not MIN_COUNT <= value <= max_count:
        raise Refusal(Text(words.COUNT_RANGE, min=MIN_COUNT, max=max_count, count=value), field="count")
    return value


def _check_picture(field: str, picture: Picture, max_bytes: int) -> None:
    """Type and size from what Discord already told us, so an obvious mistake costs no download."""
    content_type = (picture.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        # Shown in a code span, where only a backtick could break the markup.
        raise Refusal(Text(words.NOT_A_PICTURE, field=field, filename=picture.filename.replace("`", "'")), field=field)
    if picture.size > max_bytes:
        limit, size = f"{max_bytes / _MiB:.0f}", f"{picture.size / _MiB:.1f}"
        raise Refusal(Text(words.PICTURE_TOO_BIG, field=field, limit_mib=limit, size_mib=size), field=field)
