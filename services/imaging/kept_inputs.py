"""Copies of an edit's input pictures, kept with its job so that Reroll works after Discord lost the upload.

A command's or a modal's upload is an *ephemeral* attachment that Discord purges after an undocumented
while, and refresh-urls cannot bring it back; the job's buttons must work as long as its record is kept.
So the source (and the mask) are kept as the upstream takes them: at most `MAX_SIDE` on the long side,
PNG, JPEG or WebP. A picture that is already that is kept byte for byte; any other is re-encoded once.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from services.imaging.images import ImageInfo, decoding, eight_bit
from services.imaging.limits import MAX_SIDE

KEEP_MAX_BYTES = 4 * 1024 * 1024  # a kept copy larger than this is re-encoded as a high-quality WebP
WEBP_QUALITY = 92
_KEPT_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class KeptPicture:
    """A kept input picture: its bytes and their content type."""

    data: bytes
    content_type: str


def kept_size(width: int, height: int) -> tuple[int, int]:
    """The size a picture is kept at: as it is, or scaled down to `MAX_SIDE` on the long side."""
    long_side = max(width, height)
    if long_side <= MAX_SIDE:
        return width, height
    scale = MAX_SIDE / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image) -> KeptPicture:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    if buffer.tell() <= KEEP_MAX_BYTES:
        return KeptPicture(buffer.getvalue(), "image/png")
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    return KeptPicture(buffer.getvalue(), "image/webp")


def _as_it_is(data: bytes, info: ImageInfo, size: tuple[int, int]) -> KeptPicture | None:
    """The picture itself as its copy, where it is in a kept format, at the kept size and small enough."""
    content_type = _KEPT_FORMATS.get(info.format)
    if content_type is not None and (info.width, info.height) == size and len(data) <= KEEP_MAX_BYTES:
        return KeptPicture(data, content_type)
    return None


def _keep(data: bytes, info: ImageInfo, size: tuple[int, int], mask: bool) -> KeptPicture:
    # A picture stored turned arrives here already upright (`EditService._upright`): `info` is what it shows.
    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(0)
        # A 16-bit grey picture by value: converted straight to RGB it would be clipped, nearly all white.
        image = eight_bit(opened).convert("RGBA" if mask or opened.has_transparency_data else "RGB")
    if image.size != size:
        # A mask keeps its hard edges: only fully transparent pixels mark the edit area upstream.
        image = image.resize(size, Image.Resampling.NEAREST if mask else Image.Resampling.LANCZOS)
    return _encode(image)


async def _kept_copy(data: bytes, info: ImageInfo, size: tuple[int, int], mask: bool) -> KeptPicture:
    # Only a re-encoding goes to the picture threads: they run below every other process's priority, and a
    # picture kept as it is needs no wait for them.
    kept = _as_it_is(data, info, size)
    return kept if kept is not None else await decoding(_keep, data, info, size, mask)


async def keep_picture(data: bytes, info: ImageInfo) -> KeptPicture:
    """The copy of a source picture (already inspected as `info`) to keep for its job."""
    return await _kept_copy(data, info, kept_size(info.width, info.height), False)


async def keep_mask(data: bytes, info: ImageInfo, picture: ImageInfo) -> KeptPicture:
    """The copy of a mask (as sent upstream, `info` its inspection) at the kept size of its `picture`."""
    return await _kept_copy(data, info, kept_size(picture.width, picture.height), True)
