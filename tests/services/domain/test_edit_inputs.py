"""Preparing an edit's inputs: what is kept and sent for a grown canvas (Zoom out, Pan)."""

from __future__ import annotations

import base64

import aiohttp

from services.domain.edit_inputs import PictureDownloader, prepare_inputs
from services.domain.validation import CheckedEdit
from services.imaging.kept_inputs import KEEP_MAX_BYTES
from services.imaging.outpaint import Growth, outpaint
from services.imaging.pictures import Picture
from tests.images import noise_png


async def test_a_large_grown_canvas_is_kept_and_sent_as_the_png_outpaint_made() -> None:
    """A 2048² canvas around 1360² of noise is far over the size at which other copies become WebP: it stays a PNG,
    so the upstream gets the original's pixels exactly, and a Reroll the very same canvas."""
    source = noise_png(1360)
    picture = Picture(f"data:image/png;base64,{base64.b64encode(source).decode()}", "noise.png", "image/png", 0)
    choice = CheckedEdit("wider", "m", None, 1, "png", picture, None, 2048, Growth.zoom(1.5))
    async with aiohttp.ClientSession() as session:
        plan, copies = await prepare_inputs(choice, {}, PictureDownloader(session, 50 * 1024 * 1024))
    expected = outpaint(source, Growth.zoom(1.5), 2048)
    assert plan.size == (2048, 2048) and plan.image_url is None and plan.mask_url is None
    assert len(expected.picture) > KEEP_MAX_BYTES
    assert (copies["source"].content_type, copies["source"].data) == ("image/png", expected.picture)
    assert (copies["mask"].content_type, copies["mask"].data) == ("image/png", expected.mask)
