"""An edit's input pictures: fetched, inspected as displayed, made upright, the mask prepared, and copies kept.

A picture is downloaded from Discord within the input limit, or read from an earlier job's kept copy (a
Reroll). What goes upstream is planned here: each input by its URL when the upstream can fetch the very
picture the member sees there, and otherwise (turned by EXIF, scaled down to what the upstream takes, a
converted mask, a kept copy) as the copy the job keeps.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping

import aiohttp

from services.domain.edit_upstream import PlannedEdit
from services.domain.validation import CheckedEdit
from services.imaging.images import ImageInfo, auto_size, decoding, inspect_image, prepare_mask, upright_picture
from services.imaging.kept_inputs import KeptPicture, keep_mask, keep_picture, kept_size
from services.imaging.outpaint import outpaint
from services.imaging.pictures import Picture
from services.storage.jobs import InputRole
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

DOWNLOAD_TIMEOUT = 60.0
_MiB = 1024 * 1024
_COPY_ON_LOOP_MAX = _MiB  # copied in well under a millisecond


class PictureDownloader:
    """Downloads members' pictures from Discord, within the input limit."""

    def __init__(self, session: aiohttp.ClientSession, max_bytes: int) -> None:
        self._session = session
        self._max_bytes = max_bytes

    async def download(self, field: str, picture: Picture) -> bytes:
        """The picture's bytes; a refusal naming `field` when they cannot be had.

        A `data:` URL is a picture the bot made itself (a region's mask): its bytes are in the URL.
        """
        if picture.url.startswith("data:"):
            return await asyncio.to_thread(_data_of, picture.url)
        limit = self._max_bytes
        try:
            timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
            async with self._session.get(picture.url, timeout=timeout) as response:
                if response.status == 404 and picture.message_id is not None:
                    # The file of a message is gone only with the message or the attachment.
                    raise Refusal(Text(words.PICTURE_GONE, reason=Text(words.GONE_AT_DISCORD)), field=field)
                if response.status != 200:
                    raise Refusal(Text(words.DOWNLOAD_REFUSED, field=field, status=response.status), field=field)
                blocks = await _body(response, limit)
            # The one copy, joining the blocks: a large picture's in a worker thread, not on the loop; a small
            # one's costs less than the trip to the thread.
            size = sum(map(len, blocks))
            data = await asyncio.to_thread(b"".join, blocks) if size > _COPY_ON_LOOP_MAX else b"".join(blocks)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Refusal(Text(words.DOWNLOAD_FAILED, field=field), field=field) from exc
        if len(data) > limit:
            raise Refusal(Text(words.DOWNLOAD_TOO_BIG, field=field, limit_mib=f"{limit / _MiB:.0f}"), field=field)
        return data


async def _body(response: aiohttp.ClientResponse, limit: int) -> list[bytes]:
    """The body as aiohttp received it, block by block (none copied), up to just past `limit`."""
    blocks, received = [], 0
    while block := await response.content.readany():
        blocks.append(block)
        received += len(block)
        if received > limit:
            break
    return blocks


async def prepare_inputs(
    choice: CheckedEdit, earlier: Mapping[InputRole, KeptPicture], downloader: PictureDownloader
) -> tuple[PlannedEdit, dict[InputRole, KeptPicture]]:
    """Read and inspect the inputs, prepare the mask, resolve `size: auto`, and make the copies to keep.

    `earlier`: a Reroll's kept copies of its job's inputs, read instead of downloading.
    """
    if choice.growth is not None:
        return await _grown_inputs(choice, downloader)
    data, info, image_url = await _read("image", choice.image, earlier.get("source"), downloader)
    if info.reoriented:
        # The upstream ignores EXIF: it gets the picture as Discord shows it, as bytes, not the URL.
        data, info, image_url = await _upright("image", data)
    copies: dict[InputRole, KeptPicture] = {"source": await keep_picture(data, info)}
    if kept_size(info.width, info.height) != (info.width, info.height):
        image_url = None  # the copy scaled down to what the upstream takes is the picture to send
    mask_url = None
    if choice.mask is not None:
        mask, mask_info, mask_url = await _read("mask", choice.mask, earlier.get("mask"), downloader)
        if mask_info.reoriented:
            mask, mask_info, mask_url = await _upright("mask", mask)
        prepared = await prepare_mask(mask, info)
        if prepared.data_url is not None:  # converted from black-and-white: the converted one goes upstream
            mask, mask_url = await asyncio.to_thread(_data_of, prepared.data_url), None
            mask_info = ImageInfo(prepared.width, prepared.height, "PNG")
        copies["mask"] = await keep_mask(mask, mask_info, info)
        if image_url is None:
            mask_url = None  # the mask goes with its picture: both by URL, or both as the copies
    size = choice.size or auto_size(info.width, info.height, choice.auto_long_side)
    plan = PlannedEdit(
        choice.model,
        choice.prompt,
        size,
        choice.count,
        choice.output_format,
        image_url,
        choice.mask is not None,
        mask_url,
    )
    return plan, copies


async def _grown_inputs(
    choice: CheckedEdit, downloader: PictureDownloader
) -> tuple[PlannedEdit, dict[InputRole, KeptPicture]]:
    """Zoom out or Pan: the picture on its grown canvas and the mask of the new area, both sent as the copies.

    Decoded only here, after the quota was reserved; a picture that cannot grow is refused here too.
    """
    assert choice.growth is not None and choice.mask is None  # the mask is made here, never uploaded with it
    data = await downloader.download("image", choice.image)
    grown = await decoding(outpaint, data, choice.growth, choice.auto_long_side)
    canvas = grown.canvas
    # Both are kept as outpaint made them, PNGs whatever their size: they go upstream as PNG data URLs, the
    # picture pixel-exact around the new area, and a Reroll sends the very same canvas again.
    copies: dict[InputRole, KeptPicture] = {
        "source": KeptPicture(grown.picture, "image/png"),
        "mask": KeptPicture(grown.mask, "image/png"),
    }
    size = (canvas.width, canvas.height)
    plan = PlannedEdit(choice.model, choice.prompt, size, choice.count, choice.output_format, None, True, None)
    return plan, copies


async def _read(
    field: str, picture: Picture, kept: KeptPicture | None, downloader: PictureDownloader
) -> tuple[bytes, ImageInfo, str | None]:
    """The input's bytes, what they are, and the URL the upstream may fetch it by (None: send the copy)."""
    if kept is not None:
        return kept.data, await inspect_image(kept.data, field=field), None
    data = await downloader.download(field, picture)
    # A data URL goes as the kept copy, like any picture the upstream cannot fetch by URL.
    url = None if picture.url.startswith("data:") else picture.url
    return data, await inspect_image(data, field=field), url


async def _upright(field: str, data: bytes) -> tuple[bytes, ImageInfo, None]:
    """The bytes of a picture stored turned, re-encoded as displayed; no URL serves those."""
    upright = await upright_picture(data, field=field)
    return upright.data, await inspect_image(upright.data, field=field), None


def _data_of(data_url: str) -> bytes:
    return base64.b64decode(data_url.split(",", 1)[1])
