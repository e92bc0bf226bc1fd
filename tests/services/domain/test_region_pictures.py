"""Region pictures over the real stores and a loopback CDN: which picture a panel means, its bytes, its mask."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from services.domain.edit_inputs import PictureDownloader
from services.domain.region_pictures import PictureRef, RegionPictures, RegionTarget, result_target
from services.domain.remixing import RemixRules
from services.domain.signed_urls import REFRESH_MARGIN
from services.imaging.pictures import Picture
from services.imaging.regions import Selection, make_region_mask_data_url, render_region_preview
from services.storage.claims import ClaimStore
from services.storage.database import Database
from services.storage.jobs import Job, JobStore
from services.storage.settings import SettingsStore
from services.storage.uploads import UploadStore
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text
from tests.helpers import MEMBER, OTHER, Clock, new_job, stored_picture
from tests.images import alpha_mask, png_bytes

NOW = 1_700_000_000.0
VALID = int(NOW + 86_400)  # a signature valid for a day


class Cdn:
    """Discord's CDN on loopback: the files it has by path, the requests it answered, and its refresh endpoint."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requested: list[str] = []
        self.fresh: dict[str, str] = {}  # expired URL → the URL Discord signs anew
        self.refreshed: list[str] = []
        self.base = ""

    async def serve(self, request: web.Request) -> web.Response:
        self.requested.append(request.path)
        body = self.files.get(request.path)
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, content_type="image/png")

    async def refresh(self, url: str) -> str | None:
        self.refreshed.append(url)
        return self.fresh.get(url)

    def picture(self, n: int, data: bytes, *, author_id: int = MEMBER, expires: int = VALID) -> Picture:
        """Attachment `n` (a 64x64 PNG as Discord says), with `data` on the CDN."""
        path = f"/attachments/5/{100 + n}/p{n}.png"
        self.files[path] = data
        picture = stored_picture(n, author_id)
        return dataclasses.replace(picture, url=f"{self.base}{path}?ex={expires:x}&hm={n}")


class Messages:
    """What the Discord side reads from a message: (channel id, message id) → its pictures."""

    def __init__(self) -> None:
        self.pictures: dict[tuple[int, int], list[Picture]] = {}
        self.read: list[tuple[int, int]] = []

    async def look_up(self, channel_id: int, message_id: int) -> Sequence[Picture]:
        self.read.append((channel_id, message_id))
        return self.pictures.get((channel_id, message_id), [])


@dataclass
class Regions:
    pictures: RegionPictures
    jobs: JobStore
    uploads: UploadStore
    cdn: Cdn
    messages: Messages


@pytest.fixture
async def regions(database: Database) -> AsyncIterator[Regions]:
    cdn, messages, clock = Cdn(), Messages(), Clock(NOW)
    app = web.Application()
    app.router.add_get("/{path:.*}", cdn.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    cdn.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    jobs, uploads = JobStore(database), UploadStore(database, clock=clock)
    rules = RemixRules(
        settings=SettingsStore(database),
        jobs=jobs,
        claims=ClaimStore(database, clock=clock),
        owner="process-a",
        refresh=cdn.refresh,
        clock=clock,
    )
    try:
        async with aiohttp.ClientSession() as session:
            downloader = PictureDownloader(session, 4 * 1024 * 1024)
            pictures = RegionPictures(rules=rules, downloader=downloader, look_up=messages.look_up, uploads=uploads)
            yield Regions(pictures, jobs, uploads, cdn, messages)
    finally:
        await runner.cleanup()


def a_job(*results: Picture) -> Job:
    """Job 12: MEMBER's edit of OTHER's upload, with `results` on record."""
    return Job(
        id=12,
        guild_id=1,
        channel_id=5,
        user_id=MEMBER,
        created_at=datetime.fromtimestamp(NOW, UTC),
        prompt="a cat",
        model="m",
        size="64x64",
        count=len(results),
        output_format="png",
        parent_job_id=None,
        status="done",
        source=stored_picture(1, OTHER),
        mask=None,
        results=results,
    )


def result(n: int, *, attachment: bool = True) -> Picture:
    picture = stored_picture(n, MEMBER, message_id=900)
    return picture if attachment else dataclasses.replace(picture, attachment_id=None)


def upload(n: int, *, author_id: int = OTHER, message_id: int | None = 66) -> Picture:
    return stored_picture(n, author_id, message_id=message_id)


def selection(*areas: str, inverted: bool = False) -> Selection:
    return Selection.of(areas, inverted=inverted)


# ----------------------------------------------------------------------------- references and results


def test_a_picture_ref_reads_as_its_kind_its_id_and_its_attachment() -> None:
    assert str(PictureRef("j", 12, 345)) == "j12:345"
    assert str(PictureRef("m", 66, 77)) == "m66:77"


def test_a_result_target_is_the_clicked_picture_of_the_job_with_its_owners() -> None:
    job = a_job(result(2), result(3), result(4))
    target = result_target(job, [104, 999])
    assert target == RegionTarget(PictureRef("j", 12, 104), result(4), frozenset({MEMBER, OTHER}), job)
    assert result_target(job, {103}, strict=True) == RegionTarget(
        PictureRef("j", 12, 103), result(3), frozenset({MEMBER, OTHER}), job
    )


def test_a_result_target_falls_back_to_the_first_picture_with_an_attachment() -> None:
    job = a_job(result(2, attachment=False), result(3), result(4))
    expected = RegionTarget(PictureRef("j", 12, 103), result(3), frozenset({MEMBER, OTHER}), job)
    assert result_target(job, [999]) == expected
    assert result_target(job, []) == expected


def test_a_strict_result_target_is_gone_when_the_picture_is_not_on_record() -> None:
    for job in (a_job(result(2), result(3)), a_job()):
        with pytest.raises(Refusal) as refused:
            result_target(job, [999], strict=True)
        assert (refused.value.text, refused.value.field) == (Text(words.JOB_GONE), None)


def test_a_result_without_pictures_on_record_has_nothing_to_build_on() -> None:
    for job in (a_job(), a_job(result(2, attachment=False))):
        with pytest.raises(Refusal) as refused:
            result_target(job, [102])
        assert (refused.value.text, refused.value.field) == (Text(words.NO_RESULTS_ON_RECORD), None)


# ----------------------------------------------------------------------------- which picture a panel means


async def test_a_members_upload_is_the_first_whole_picture_of_their_message_and_is_remembered(
    regions: Regions,
) -> None:
    no_message, no_attachment = upload(2, message_id=None), dataclasses.replace(upload(3), attachment_id=None)
    first, second = upload(4, message_id=66), upload(5, message_id=66)
    target = await regions.pictures.upload_target([no_message, no_attachment, first, second], MEMBER)
    assert target == RegionTarget(PictureRef("m", 66, 104), first, frozenset({MEMBER}), None)
    assert await regions.uploads.find(66, 104) == first
    assert await regions.uploads.find(66, 105) is None


async def test_a_message_without_a_picture_to_edit_is_refused(regions: Regions, database: Database) -> None:
    for pictures in ([], [upload(2, message_id=None), dataclasses.replace(upload(3), attachment_id=None)]):
        with pytest.raises(Refusal) as refused:
            await regions.pictures.upload_target(pictures, MEMBER)
        assert (refused.value.text, refused.value.field) == (Text(words.REGION_NO_PICTURE), None)
    assert await database.fetch_value("SELECT COUNT(*) FROM region_uploads") == 0


async def test_a_results_panel_finds_its_picture_on_the_jobs_record(regions: Regions) -> None:
    job_id = await regions.jobs.create(new_job(source=stored_picture(1, OTHER)))
    await regions.jobs.add_results(job_id, [result(2), result(3)])
    job = await regions.jobs.get(job_id)
    assert job is not None
    target = await regions.pictures.target_of(PictureRef("j", job_id, 103), None)
    assert target == RegionTarget(PictureRef("j", job_id, 103), result(3), frozenset({MEMBER, OTHER}), job)
    assert regions.messages.read == []


async def test_a_results_panel_whose_picture_or_job_is_gone_is_refused(regions: Regions) -> None:
    job_id = await regions.jobs.create(new_job())
    await regions.jobs.add_results(job_id, [result(2)])
    deleted = await regions.jobs.create(new_job())
    await regions.jobs.add_results(deleted, [result(3)])
    await regions.jobs.mark_deleted(deleted)
    for ref in (PictureRef("j", job_id, 999), PictureRef("j", deleted, 103), PictureRef("j", deleted + 1, 102)):
        with pytest.raises(Refusal) as refused:
            await regions.pictures.target_of(ref, 5)
        assert (refused.value.text, refused.value.field) == (Text(words.JOB_GONE), None)


async def test_an_uploads_panel_finds_the_remembered_upload_without_reading_its_message(regions: Regions) -> None:
    await regions.uploads.remember(upload(7, author_id=OTHER))
    ref = PictureRef("m", 66, 107)
    assert await regions.pictures.target_of(ref, 5) == RegionTarget(ref, upload(7), frozenset({OTHER}), None)
    assert regions.messages.read == []


async def test_an_upload_not_remembered_is_read_again_from_its_message_and_remembered(regions: Regions) -> None:
    wanted, beside = upload(7), upload(8)
    regions.messages.pictures[(5, 66)] = [beside, wanted]
    ref = PictureRef("m", 66, 107)
    assert await regions.pictures.target_of(ref, 5) == RegionTarget(ref, wanted, frozenset({OTHER}), None)
    assert regions.messages.read == [(5, 66)]
    assert await regions.uploads.find(66, 107) == wanted
    assert await regions.uploads.find(66, 108) is None
    await regions.pictures.target_of(ref, 5)
    assert regions.messages.read == [(5, 66)]  # remembered: not read again


async def test_a_panel_whose_upload_is_unknown_is_refused(regions: Regions) -> None:
    regions.messages.pictures[(5, 66)] = [upload(8)]
    for ref, channel_id in ((PictureRef("m", 66, 107), 5), (PictureRef("m", 67, 107), None)):
        with pytest.raises(Refusal) as refused:
            await regions.pictures.target_of(ref, channel_id)
        assert (refused.value.text, refused.value.field) == (Text(words.REGION_UNKNOWN), None)
    assert regions.messages.read == [(5, 66)]  # without its channel, a message cannot be read


# ----------------------------------------------------------------------------- the bytes drawn


def target(picture: Picture, owners: frozenset[int] = frozenset({MEMBER})) -> RegionTarget:
    assert picture.attachment_id is not None
    return RegionTarget(PictureRef("m", 66, picture.attachment_id), picture, owners)


async def test_a_pictures_bytes_are_downloaded_once_for_a_panels_clicks(regions: Regions) -> None:
    cat, dog = png_bytes(6, 4), png_bytes(4, 6)
    first, second = target(regions.cdn.picture(2, cat)), target(regions.cdn.picture(3, dog))
    assert await regions.pictures.picture_bytes(first) == cat
    assert await regions.pictures.picture_bytes(second) == dog
    assert await regions.pictures.picture_bytes(first) == cat
    assert regions.cdn.requested == ["/attachments/5/102/p2.png", "/attachments/5/103/p3.png"]
    assert regions.cdn.refreshed == []


async def test_an_expiring_picture_is_refreshed_before_its_download(regions: Regions) -> None:
    picture = regions.cdn.picture(2, png_bytes(6, 4), expires=int(NOW + REFRESH_MARGIN))
    regions.cdn.fresh[picture.url] = f"{regions.cdn.base}/attachments/5/102/p2-fresh.png?ex={VALID:x}&hm=new"
    regions.cdn.files["/attachments/5/102/p2-fresh.png"] = b"fresh bytes"
    assert await regions.pictures.picture_bytes(target(picture)) == b"fresh bytes"
    assert regions.cdn.refreshed == [picture.url]
    assert regions.cdn.requested == ["/attachments/5/102/p2-fresh.png"]


async def test_a_picture_that_cannot_be_had_is_refused_naming_the_image(regions: Regions) -> None:
    unrefreshable = regions.cdn.picture(2, b"", expires=int(NOW - 1))
    with pytest.raises(Refusal) as refused:
        await regions.pictures.picture_bytes(target(unrefreshable))
    assert (refused.value.text, refused.value.field) == (Text(words.REFRESH_FAILED, field="image"), "image")
    gone = dataclasses.replace(regions.cdn.picture(3, b""), message_id=66)
    del regions.cdn.files["/attachments/5/103/p3.png"]
    with pytest.raises(Refusal) as refused:
        await regions.pictures.picture_bytes(target(gone))
    gone_text = Text(words.PICTURE_GONE, reason=Text(words.GONE_AT_DISCORD))
    assert (refused.value.text, refused.value.field) == (gone_text, "image")


async def test_the_eight_pictures_last_drawn_are_kept_in_memory(regions: Regions) -> None:
    targets = [target(regions.cdn.picture(n, bytes([n]) * 10)) for n in range(1, 10)]

    async def draw(*numbers: int) -> int:
        """Draw the pictures numbered so; how many had to be downloaded."""
        before = len(regions.cdn.requested)
        for n in numbers:
            assert await regions.pictures.picture_bytes(targets[n - 1]) == bytes([n]) * 10
        return len(regions.cdn.requested) - before

    assert await draw(1, 2, 3, 4, 5, 6, 7, 8) == 8
    assert await draw(1, 2, 3, 4, 5, 6, 7, 8) == 0
    assert await draw(1) == 0  # now the last drawn: 2 is the least recent
    assert await draw(9) == 1
    assert await draw(9, 1, 3, 4, 5, 6, 7, 8) == 0
    assert await draw(2) == 1
    assert regions.cdn.requested.count("/attachments/5/102/p2.png") == 2


async def test_forgetting_a_member_drops_from_memory_every_picture_that_is_partly_theirs(regions: Regions) -> None:
    mine = target(regions.cdn.picture(2, b"mine"), frozenset({MEMBER}))
    theirs = target(regions.cdn.picture(3, b"theirs"), frozenset({OTHER}))
    shared = target(regions.cdn.picture(4, b"shared"), frozenset({MEMBER, OTHER}))
    for each in (mine, theirs, shared):
        await regions.pictures.picture_bytes(each)
    regions.pictures.forget(OTHER)
    regions.cdn.requested.clear()
    for each in (mine, theirs, shared):
        await regions.pictures.picture_bytes(each)
    assert regions.cdn.requested == ["/attachments/5/103/p3.png", "/attachments/5/104/p4.png"]


# ----------------------------------------------------------------------------- preview and mask


async def test_the_preview_tints_the_chosen_area_of_the_picture(regions: Regions) -> None:
    data = png_bytes(60, 40)
    picture = target(regions.cdn.picture(2, data))
    chosen = selection("left", "cell-0-2", inverted=True)
    preview = await regions.pictures.preview(picture, chosen)
    assert preview == await render_region_preview(data, {"left", "cell-0-2"}, True)
    assert preview != await render_region_preview(data, {"left", "cell-0-2"}, False)
    assert preview != await render_region_preview(data, {"left"}, True)


async def test_a_panels_mask_is_its_selection_at_the_pictures_displayed_size(regions: Regions) -> None:
    picture = target(regions.cdn.picture(2, png_bytes(60, 40)))  # Discord says 64x64; the file is 60x40
    image = dataclasses.replace(picture.picture, channel_id=9, author_id=MEMBER)
    mask = await regions.pictures.mask(picture, image, selection("top", inverted=True), OTHER)
    url = await make_region_mask_data_url(60, 40, {"top"}, True)
    assert url != await make_region_mask_data_url(60, 40, {"top"}, False)
    assert mask == Picture(
        url=url,
        filename="region-mask.png",
        content_type="image/png",
        size=len(url),
        width=60,
        height=40,
        attachment_id=None,
        channel_id=9,
        message_id=None,
        author_id=OTHER,
    )


async def test_a_painters_mask_is_sent_as_the_png_it_painted(regions: Regions) -> None:
    picture = target(regions.cdn.picture(2, png_bytes(40, 60)))
    painted = alpha_mask(40, 60, (0, 0, 20, 30))
    image = dataclasses.replace(picture.picture, channel_id=9)
    mask = await regions.pictures.mask(picture, image, painted, MEMBER)
    url = "data:image/png;base64," + base64.b64encode(painted).decode("ascii")
    assert mask == Picture(url, "region-mask.png", "image/png", len(url), 40, 60, channel_id=9, author_id=MEMBER)


async def test_a_mask_of_nothing_is_refused(regions: Regions) -> None:
    picture = target(regions.cdn.picture(2, png_bytes(60, 40)))
    for empty in (Selection(), selection("top", "bottom", "centre", "left", "right", inverted=True)):
        with pytest.raises(Refusal) as refused:
            await regions.pictures.mask(picture, picture.picture, empty, MEMBER)
        assert (refused.value.text, refused.value.field) == (Text(words.REGION_EMPTY), None)
