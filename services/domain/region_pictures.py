"""Which picture a region panel or a painter link works on, its bytes, and the mask made for it.

A panel's components and a painter link name their picture by a `PictureRef`: a result's (`j`, its job
id), which is on record with its job, or a member's upload (`m`, its message id), which is remembered in the
database for every process (services/storage/uploads.py: a bot without the MESSAGE_CONTENT intent cannot read
it again) and otherwise looked up in its message (`look_up`, supplied by the Discord side; it works for an
application that has the intent). The pictures last drawn are kept in this process's memory, since a panel's
clicks come in bursts; any process downloads them again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from services.domain.edit_inputs import PictureDownloader
from services.domain.remixing import RemixRules
from services.imaging.images import to_data_url
from services.imaging.pictures import Picture
from services.imaging.regions import (
    EmptyRegionError,
    Selection,
    displayed_size,
    make_region_mask_data_url,
    render_region_preview,
)
from services.storage.jobs import Job
from services.storage.uploads import UploadStore
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

# The pictures last drawn, kept in memory.
CACHED_PICTURES = 8
MASK_FILENAME = "region-mask.png"

# The pictures of a message, read from Discord: (channel id, message id) → its pictures, () when unreadable.
LookUp = Callable[[int, int], Awaitable[Sequence[Picture]]]


@dataclass(frozen=True)
class PictureRef:
    """Which picture a panel works on: a result's (`j`, its job id) or a member's upload (`m`, its message id)."""

    kind: Literal["j", "m"]
    id: int
    attachment_id: int

    def __str__(self) -> str:
        return f"{self.kind}{self.id}:{self.attachment_id}"


@dataclass(frozen=True)
class RegionTarget:
    """The picture, whose consent it needs, and the result's job when it is one."""

    ref: PictureRef
    picture: Picture
    owners: frozenset[int]
    parent: Job | None = None


def result_target(job: Job, attachment_ids: Iterable[int], *, strict: bool = False) -> RegionTarget:
    """A result's picture: the one among `attachment_ids`, else (unless strict) its first."""
    pictures = [p for p in job.results if p.attachment_id is not None]
    wanted = set(attachment_ids)
    chosen = next((p for p in pictures if p.attachment_id in wanted), None)
    if chosen is None and not strict and pictures:
        chosen = pictures[0]
    if chosen is None or chosen.attachment_id is None:
        raise Refusal(Text(words.JOB_GONE if strict else words.NO_RESULTS_ON_RECORD))
    return RegionTarget(PictureRef("j", job.id, chosen.attachment_id), chosen, job.owners, job)


class RegionPictures:
    """The pictures region edits work on: found by reference, downloaded once, and the masks made for them."""

    def __init__(
        self, *, rules: RemixRules, downloader: PictureDownloader, look_up: LookUp, uploads: UploadStore
    ) -> None:
        self._rules = rules
        self._downloader = downloader
        self._look_up = look_up
        self._uploads = uploads
        # A picture's bytes with whose they are (the owners of its target), so that forgetting finds them.
        self._pictures: OrderedDict[str, tuple[frozenset[int], bytes]] = OrderedDict()

    async def upload_target(self, uploads: Sequence[Picture], author_id: int) -> RegionTarget:
        """The first of a member's uploads in a message (remembered for its panel's later clicks)."""
        picture = next((p for p in uploads if p.message_id is not None and p.attachment_id is not None), None)
        if picture is None or picture.message_id is None or picture.attachment_id is None:
            raise Refusal(Text(words.REGION_NO_PICTURE))
        await self._uploads.remember(picture)
        return RegionTarget(PictureRef("m", picture.message_id, picture.attachment_id), picture, frozenset({author_id}))

    async def target_of(self, ref: PictureRef, channel_id: int | None) -> RegionTarget:
        """The picture a panel or a painter link refers to, or a refusal when it is gone or unknown."""
        if ref.kind == "j":
            return result_target(await self._rules.job(ref.id), {ref.attachment_id}, strict=True)
        picture = await self._uploads.find(ref.id, ref.attachment_id)
        if picture is None and channel_id is not None:
            picture = await self._looked_up(channel_id, ref)
        if picture is None:
            raise Refusal(Text(words.REGION_UNKNOWN))
        return RegionTarget(ref, picture, frozenset({picture.author_id}) if picture.author_id else frozenset())

    async def picture_bytes(self, target: RegionTarget) -> bytes:
        """The picture's bytes, behind a URL that works now; a refusal naming `image` when they cannot be had."""
        key = str(target.ref)
        cached = self._pictures.get(key)
        if cached is None:
            image = await self._rules.fresh("image", target.picture)
            cached = target.owners, await self._downloader.download("image", image)
            self._pictures[key] = cached
            while len(self._pictures) > CACHED_PICTURES:
                self._pictures.popitem(last=False)
        self._pictures.move_to_end(key)
        return cached[1]

    def forget(self, user_id: int) -> None:
        """Drop the pictures drawn that are the member's from this process's memory (uploads are in the database)."""
        for ref in [ref for ref, (owners, _) in self._pictures.items() if user_id in owners]:
            del self._pictures[ref]

    async def preview(self, target: RegionTarget, selection: Selection) -> bytes:
        """The panel's picture: the chosen area tinted, the grid labelled."""
        return await render_region_preview(await self.picture_bytes(target), selection.areas, selection.inverted)

    async def mask(self, target: RegionTarget, image: Picture, mask: Selection | bytes, user_id: int) -> Picture:
        """The mask at the picture's displayed size, transparent where to change, as a data URL picture.

        `mask`: the panel's selection, or the painter's alpha PNG.
        """
        width, height = await displayed_size(await self.picture_bytes(target))
        if isinstance(mask, Selection):
            try:
                url = await make_region_mask_data_url(width, height, mask.areas, mask.inverted)
            except EmptyRegionError:
                raise Refusal(Text(words.REGION_EMPTY)) from None
        else:
            url = await to_data_url(mask, "image/png")
        return Picture(
            url, MASK_FILENAME, "image/png", len(url), width, height, channel_id=image.channel_id, author_id=user_id
        )

    async def _looked_up(self, channel_id: int, ref: PictureRef) -> Picture | None:
        """The upload in its message, for a panel from before a restart (readable with MESSAGE_CONTENT only)."""
        for picture in await self._look_up(channel_id, ref.id):
            if picture.attachment_id == ref.attachment_id:
                await self._uploads.remember(picture)
                return picture
        return None
