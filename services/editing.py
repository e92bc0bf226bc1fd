"""One edit against the Model Hub, with the by-reference input and its data-URL fallback."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from services.images import to_data_url
from services.modelhub import EditRequest, EditResult, ModelHubBadRequestError, ModelHubClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourcePicture:
    """A picture the member gave: its (signed, expiring) URL and the bytes already downloaded."""

    url: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class EditOrder:
    model: str
    prompt: str
    size: tuple[int, int]
    count: int
    output_format: str
    image: SourcePicture
    mask: SourcePicture | None = None
    mask_data_url: str | None = None  # set when the mask had to be converted (black-and-white → alpha)


def _names_input_url(error: ModelHubBadRequestError) -> bool:
    # Undocumented: a fetch failure is a 4xx whose error names the field, by `param` or in its words.
    return error.names_field("url") or error.names_field("mask_image")


async def run_edit(hub: ModelHubClient, order: EditOrder, *, paced: bool = False) -> EditResult:
    """Send the pictures by URL; when the hub cannot fetch them, retry once with their bytes.

    `paced`: the first call already waited for the image rate (the job queue does); the fallback, a new
    request spending the images again, is paced by the client.
    """
    request = EditRequest(
        model=order.model,
        prompt=order.prompt,
        url=order.image.url,
        size=order.size,
        n=order.count,
        output_format=order.output_format,
        mask_image=order.mask_data_url or (order.mask.url if order.mask else None),
    )
    try:
        return await hub.edit(request, paced=paced)
    except ModelHubBadRequestError as exc:
        if not _names_input_url(exc):
            raise
        log.info("The Model Hub could not fetch an input by URL (%s); retrying with its bytes", exc)
    mask_image = order.mask_data_url
    if mask_image is None and order.mask is not None:
        mask_image = await to_data_url(order.mask.data, order.mask.content_type)
    fallback = dataclasses.replace(
        request,
        url=await to_data_url(order.image.data, order.image.content_type),
        mask_image=mask_image,
    )
    return await hub.edit(fallback)
