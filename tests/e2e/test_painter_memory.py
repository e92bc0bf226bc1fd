"""The painter under hostile submissions: its memory stays bounded (issue 17, item 7 and the Done-when).

The real bot serves the painter on 127.0.0.1; eight members each open two links on a member's 8000×5000
photo, and all sixteen links are posted at once with masks the page would never send: all-black PNGs of
the largest size the page sends (decoded, then refused: nothing painted) and tiny PNGs whose header claims
the photo's full size (refused from the header). The process's peak RSS above its idle RSS is measured
with the kernel's high-water mark (`/proc/self/clear_refs`, then `VmHWM`). The bot shares this process
with the emulators and the client, so the figure is an upper bound of the bot's own.
"""

from __future__ import annotations

import asyncio
import gc
import io
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from services.outside.painter_web import MAX_MASK_SIDE
from tests.helpers import paint_link, panel_of, used
from tests.images import png_claiming
from tests.ports import free_port
from tests.stack import loopback_stack

WIDTH, HEIGHT = 8000, 5000
# The largest mask of the photo's shape the page sends (painter.js: 2048 a side, 4 MP).
PAINTED = (MAX_MASK_SIDE, MAX_MASK_SIDE * HEIGHT // WIDTH)
MEMBERS, LINKS_EACH = 8, 2
BUDGET_BYTES = 200 * 1024 * 1024


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def photo_jpeg() -> bytes:
    image = Image.new("L", (WIDTH, HEIGHT), 120)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


def black_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 0, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def form(mask: bytes) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("mask", mask, filename="mask.png", content_type="image/png")
    data.add_field("prompt", "a red door")
    data.add_field("count", "1")
    return data


@pytest.fixture
async def served(tmp_path):
    port = free_port()
    async with loopback_stack(tmp_path, painter_port=port, public_url=f"http://127.0.0.1:{port}") as stack:
        yield stack


async def test_sixteen_hostile_submissions_stay_under_200_mb_above_idle(served, record_property):
    stack = served
    owner = stack.discord.other_member
    photo = stack.discord.add_attachment(photo_jpeg(), "big.jpg", "image/jpeg", width=WIDTH, height=HEIGHT)
    message = stack.discord.add_message("my photo", user=owner, attachments=[photo])
    links = []
    for n in range(MEMBERS):
        member = stack.discord.add_member(name=f"hostile-{n}")
        for _ in range(LINKS_EACH):
            links.append(
                paint_link(await panel_of(await stack.discord.message_command("Edit region", message, user=member)))
            )
    black, claimed = black_png(*PAINTED), png_claiming(WIDTH, HEIGHT)
    masks = [claimed if n % 4 == 3 else black for n in range(len(links))]
    async with aiohttp.ClientSession() as http:
        async with http.get(links[0] + "/picture") as response:  # the photo is downloaded once, before
            assert response.status == 200
        gc.collect()
        idle = _status("VmRSS")
        await asyncio.to_thread(Path("/proc/self/clear_refs").write_text, "5")  # the peak mark back to the RSS
        started = time.monotonic()

        async def post(link: str, mask: bytes) -> tuple[int, dict]:
            async with http.post(link, data=form(mask)) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(post(link, mask) for link, mask in zip(links, masks, strict=True)))
        seconds = time.monotonic() - started
        peak = _status("VmHWM")
    above = peak - idle
    record_property("painter_peak_rss_above_idle_mb", round(above / 2**20, 1))
    record_property("painter_hostile_seconds", round(seconds, 2))
    print(f"painter: 16 hostile submissions, peak RSS {above / 2**20:.1f} MB above idle, {seconds:.2f} s")
    for (status, body), mask in zip(answers, masks, strict=True):
        assert status == 400 and body["field"] == "mask"
        if mask is claimed:
            assert "it is 8000x5000, more than the page sends (4 megapixels at most)" in body["message"]
        else:
            assert body["message"] == "Paint the area to change first: the mask marks nothing."
    assert above < BUDGET_BYTES
    assert not stack.hub.requests and await used(stack, owner) == 0
