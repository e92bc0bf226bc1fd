"""Kept copies of an edit's inputs (issue 9 item 3): what is kept, and that forgetting and retention delete it,
on both backends, down to the bytes of the database files."""

from __future__ import annotations

import io

from PIL import Image

from services.imaging.images import ImageInfo
from services.imaging.kept_inputs import KEEP_MAX_BYTES, KeptPicture, keep_mask, keep_picture, kept_size
from services.storage.database import Database
from services.storage.jobs import JobStore
from services.storage.privacy import PrivacyStore
from tests.helpers import (
    DAY,
    MEMBER,
    OTHER,
    Clock,
    file_bytes,
    finished_job,
    privacy_store,
    stored_picture,
)
from tests.images import alpha_mask, noise_png, png_bytes

# A marker that survives PNG storage as it is (stored bytes, no compression of the marker itself).
MARKER = b"kept-copy-marker-7f3a"


def marked(n: int) -> KeptPicture:
    return KeptPicture(png_bytes(8, 8) + MARKER + bytes([n]), "image/png")


async def test_a_picture_the_upstream_takes_is_kept_byte_for_byte() -> None:
    data = png_bytes(64, 48)
    assert await keep_picture(data, ImageInfo(64, 48, "PNG")) == KeptPicture(data, "image/png")


async def test_a_picture_larger_than_the_upstream_takes_is_kept_scaled_down() -> None:
    data = png_bytes(3000, 1000)
    kept = await keep_picture(data, ImageInfo(3000, 1000, "PNG"))
    with Image.open(io.BytesIO(kept.data)) as image:
        assert image.size == (2048, 683) == kept_size(3000, 1000)
        assert kept.content_type == f"image/{image.format.lower()}"


async def test_a_gif_is_kept_as_a_png_still() -> None:
    data = png_bytes(32, 32, fmt="GIF")
    kept = await keep_picture(data, ImageInfo(32, 32, "GIF"))
    assert kept.content_type == "image/png" and Image.open(io.BytesIO(kept.data)).size == (32, 32)


async def test_a_mask_is_scaled_with_its_picture_and_keeps_hard_edges() -> None:
    mask = alpha_mask(3000, 1000, (0, 0, 1500, 1000))
    kept = await keep_mask(mask, ImageInfo(3000, 1000, "PNG"), ImageInfo(3000, 1000, "PNG"))
    with Image.open(io.BytesIO(kept.data)) as image:
        assert image.size == (2048, 683)
        assert set(image.getchannel("A").getdata()) <= {0, 255}


def test_the_kept_size_keeps_the_aspect_and_at_least_a_pixel_on_each_side() -> None:
    assert kept_size(2048, 10) == (2048, 10)  # at the upstream's limit: as it is
    assert kept_size(2049, 2049) == (2048, 2048)
    assert kept_size(1000, 4096) == (500, 2048)
    assert kept_size(6000, 1) == (2048, 1)  # a hair-thin strip keeps one row


async def test_a_copy_too_large_as_png_is_kept_as_a_webp() -> None:
    data = noise_png(1360)  # incompressible: over KEEP_MAX_BYTES as a PNG
    assert len(data) > KEEP_MAX_BYTES
    kept = await keep_picture(data, ImageInfo(1360, 1360, "PNG"))
    assert kept.content_type == "image/webp" and len(kept.data) <= KEEP_MAX_BYTES
    with Image.open(io.BytesIO(kept.data)) as image:
        assert (image.format, image.size, image.mode) == ("WEBP", (1360, 1360), "RGB")


async def test_a_transparent_picture_keeps_its_transparency_when_re_encoded() -> None:
    data = alpha_mask(3000, 1000, (0, 0, 1500, 1000))
    kept = await keep_picture(data, ImageInfo(3000, 1000, "PNG"))
    with Image.open(io.BytesIO(kept.data)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (2048, 683), "RGBA")
        assert image.getpixel((10, 10))[3] == 0 and image.getpixel((2000, 600))[3] == 255


async def test_an_opaque_picture_in_another_format_is_kept_as_an_rgb_png() -> None:
    data = png_bytes(40, 30, fmt="BMP")
    kept = await keep_picture(data, ImageInfo(40, 30, "BMP"))
    with Image.open(io.BytesIO(kept.data)) as image:
        assert (kept.content_type, image.format, image.size, image.mode) == ("image/png", "PNG", (40, 30), "RGB")
        assert image.tobytes() == Image.open(io.BytesIO(data)).convert("RGB").tobytes()  # lossless


async def test_a_jpeg_and_a_webp_the_upstream_takes_are_kept_byte_for_byte() -> None:
    for fmt, content_type in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        data = png_bytes(64, 48, fmt=fmt)
        assert await keep_picture(data, ImageInfo(64, 48, fmt)) == KeptPicture(data, content_type)


async def test_a_mask_in_another_format_is_kept_as_an_rgba_png_at_its_size() -> None:
    mask = png_bytes(64, 48, fmt="BMP")
    kept = await keep_mask(mask, ImageInfo(64, 48, "BMP"), ImageInfo(64, 48, "PNG"))
    with Image.open(io.BytesIO(kept.data)) as image:
        assert (kept.content_type, image.size, image.mode) == ("image/png", (64, 48), "RGBA")


async def test_kept_copies_are_read_back_by_role(database: Database) -> None:
    jobs = JobStore(database)
    job_id = await finished_job(jobs, MEMBER, "a cat", stored_picture(1, MEMBER))
    assert await jobs.kept_inputs(job_id) == {}
    await jobs.keep_inputs(job_id, {"source": marked(1), "mask": marked(2)})
    assert await jobs.kept_inputs(job_id) == {"source": marked(1), "mask": marked(2)}
    job = await jobs.get(job_id)
    assert job is not None and job.kept == {"source", "mask"}


async def test_forget_deletes_the_members_copies_in_every_job(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    mine = await finished_job(jobs, MEMBER, "a cat", stored_picture(1, MEMBER))
    # Another member's remix of the member's upload: its copy is the member's picture too.
    theirs = await finished_job(jobs, OTHER, "remix", stored_picture(2, MEMBER))
    unrelated = await finished_job(jobs, OTHER, "their own", stored_picture(3, OTHER))
    for job_id in (mine, theirs, unrelated):
        await jobs.keep_inputs(job_id, {"source": marked(job_id)})
    await privacy_store(database, clock).forget(MEMBER)
    assert await jobs.kept_inputs(mine) == {} and await jobs.kept_inputs(theirs) == {}
    assert await jobs.kept_inputs(unrelated) == {"source": marked(unrelated)}
    everything = await file_bytes(database)
    assert MARKER + bytes([mine]) not in everything and MARKER + bytes([theirs]) not in everything


async def test_retention_and_a_servers_departure_delete_the_copies(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    old = await finished_job(jobs, MEMBER, "old", stored_picture(1, MEMBER))
    await jobs.keep_inputs(old, {"source": marked(old)})
    clock.now += 31 * DAY
    fresh = await finished_job(jobs, MEMBER, "fresh", stored_picture(2, MEMBER))
    await jobs.keep_inputs(fresh, {"source": marked(fresh)})
    # The job's created_at is the real time; the store's clock moved on past the retention period.
    privacy: PrivacyStore = privacy_store(database, clock)
    await database.execute("UPDATE jobs SET created_at = ? WHERE id = ?", clock.now, fresh)
    await privacy.purge()
    assert await jobs.kept_inputs(old) == {} and await jobs.kept_inputs(fresh) == {"source": marked(fresh)}
    assert MARKER + bytes([old]) not in await file_bytes(database)

    await privacy.guild_left(1)
    clock.now += 8 * DAY
    await privacy.purge()
    assert await jobs.kept_inputs(fresh) == {}
