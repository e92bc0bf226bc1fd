"""An edit's Model Hub call: the inputs by URL where the plan has one, as data URLs when the hub cannot fetch them.

The plan holds no picture bytes (a job waits in line with it); the job's kept copies are read only when a
data URL is needed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from services.domain.upstream import HubAnswer, HubRequest, ModelHubBadRequestError, ModelHubError
from services.imaging.images import to_data_url
from services.imaging.kept_inputs import KeptPicture
from services.storage.jobs import InputRole

log = logging.getLogger(__name__)


class Hub(Protocol):
    """The one Model Hub call an edit makes (`ModelHubClient` implements it)."""

    # A protocol's default is the implementation's (`ModelHubClient.edit`): no code here to mutate.
    async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer: ...  # pragma: no mutate


@dataclass(frozen=True)
class PlannedEdit:
    """An edit whose inputs were read and kept, waiting for its turn: what goes upstream, without the bytes.

    Each input goes by its URL, or (None) as the job's kept copy in a data URL.
    """

    model: str
    prompt: str
    size: tuple[int, int]
    count: int
    output_format: str
    image_url: str | None
    has_mask: bool = False
    mask_url: str | None = None


KeptCopies = Callable[[], Awaitable[Mapping[InputRole, KeptPicture]]]


def _names_input_url(error: ModelHubBadRequestError) -> bool:
    # Undocumented: a fetch failure is a 4xx whose error names the field, by `param` or in its words.
    return error.names_field("url") or error.names_field("mask_image")


async def send_upstream(hub: Hub, plan: PlannedEdit, kept: KeptCopies, *, paced: bool) -> HubAnswer:
    """Send the pictures by URL where the plan has one; when the hub cannot fetch them, retry once with the copies.

    `kept` reads the job's kept copies, only when a data URL is needed. `paced`: the first call already
    waited for the image rate (the job queue does); the fallback, a new request spending the images
    again, is paced by the client.
    """
    copies: Mapping[InputRole, KeptPicture] = {}

    async def data_url(role: InputRole) -> str:
        nonlocal copies
        copies = copies or await kept()
        return await to_data_url(copies[role].data, copies[role].content_type)

    request = HubRequest(
        model=plan.model,
        prompt=plan.prompt,
        url=plan.image_url or await data_url("source"),
        size=plan.size,
        n=plan.count,
        output_format=plan.output_format,
        mask_image=(plan.mask_url or await data_url("mask")) if plan.has_mask else None,
    )
    try:
        return await hub.edit(request, paced=paced)
    except ModelHubBadRequestError as exc:
        if not _names_input_url(exc) or (plan.image_url is None and plan.mask_url is None):
            raise
        log.info("The Model Hub could not fetch an input by URL (%s); retrying with its bytes", exc)
        spent = exc.billable_images
    fallback = dataclasses.replace(
        request,
        url=await data_url("source"),
        mask_image=await data_url("mask") if plan.has_mask else None,
    )
    # What the first call may have cost counts with the fallback's, whichever way it ends.
    try:
        answer = await hub.edit(fallback)
    except ModelHubError as exc:
        exc.billable_images += spent
        raise
    return dataclasses.replace(answer, billable_images=answer.billed + spent)
