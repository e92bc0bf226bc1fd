"""Preparing an edit's inputs: what is kept and sent for a grown canvas (Zoom out, Pan); the download."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from services.domain.edit_inputs import PictureDownloader, prepare_inputs
from services.domain.validation import CheckedEdit
from services.imaging.kept_inputs import KEEP_MAX_BYTES
from services.imaging.outpaint import Growth, outpaint
from services.imaging.pictures import Picture
from services.text.refusal import Refusal
from tests.images import noise_png

LIMIT = 4 * 1024 * 1024


@contextlib.asynccontextmanager
async def serving(body: bytes) -> AsyncIterator[str]:
    """A loopback server answering `/sized` with a Content-Length and `/chunked` without one."""

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="image/png")

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 100_000):
            await response.write(body[start : start + 100_000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/sized", sized)
    app.router.add_get("/chunked", chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def upload(url: str) -> Picture:
    return Picture(url, "photo.png", "image/png", 0)


@pytest.mark.parametrize("path", ["/sized", "/chunked"])
async def test_a_download_arrives_whole_with_or_without_its_size_announced(path: str) -> None:
    body = os.urandom(LIMIT - 12_345)
    async with serving(body) as base, aiohttp.ClientSession() as session:
        assert await PictureDownloader(session, LIMIT).download("image", upload(base + path)) == body


@pytest.mark.parametrize("path", ["/sized", "/chunked"])
async def test_a_download_past_the_limit_is_refused_naming_the_field(path: str) -> None:
    async with serving(os.urandom(LIMIT + 1)) as base, aiohttp.ClientSession() as session:
        with pytest.raises(Refusal) as refused:
            await PictureDownloader(session, LIMIT).download("mask", upload(base + path))
    assert refused.value.text.render("en-US") == "`mask` must be at most 4 MiB."


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
