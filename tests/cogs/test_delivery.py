"""Packing results into messages Discord accepts (cogs/delivery.py): order kept, split by count and size,
re-encoded when one picture is too large, and the member told what was changed.
"""

from __future__ import annotations

import asyncio
import io
import os
import tracemalloc

import aiohttp
import discord
import pytest
from aiohttp import web
from PIL import Image

from cogs.delivery import OutputFile, SharedBytesIO, plan_delivery
from tests.helpers import until
from tests.images import noise_png as noisy

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture(scope="module")
def noise_png() -> bytes:
    return noisy()


def encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def blobs(count: int, size: int, prefix: str = "edit") -> list[OutputFile]:
    # Packing never decodes files that already fit, so opaque bytes are enough here.
    return [OutputFile(f"{prefix}-{i}.png", bytes([i]) * size) for i in range(count)]


async def test_twelve_files_become_ten_and_two() -> None:
    files = blobs(12, 1 * KiB)
    plan = await plan_delivery(files, size_limit=10 * MiB)
    assert [len(batch) for batch in plan.batches] == [10, 2]
    assert [f for batch in plan.batches for f in batch] == files
    assert plan.reencoded_count == 0
    assert [str(note) for note in plan.notes] == [
        "Split across 2 messages to fit Discord's limit of 10 files per message."
    ]


async def test_files_that_fit_together_go_in_one_message_without_notes() -> None:
    plan = await plan_delivery(blobs(3, 100 * KiB), size_limit=10 * MiB)
    assert [len(batch) for batch in plan.batches] == [3]
    assert [str(note) for note in plan.notes] == [] and plan.reencoded_count == 0


async def test_combined_size_over_the_limit_is_split_in_order() -> None:
    files = blobs(5, 400 * KiB)
    plan = await plan_delivery(files, size_limit=1 * MiB)
    assert [len(batch) for batch in plan.batches] == [2, 2, 1]
    assert [f for batch in plan.batches for f in batch] == files
    assert [str(note) for note in plan.notes] == ["Split across 3 messages to fit Discord's 1 MiB upload limit."]
    budget = 1 * MiB - (MiB // 100 + 4 * KiB)
    assert all(sum(len(f.data) for f in batch) <= budget for batch in plan.batches)


async def test_order_is_kept_even_when_a_later_file_would_fill_a_gap() -> None:
    files = [
        OutputFile("a.png", b"a" * 600 * KiB),
        OutputFile("b.png", b"b" * 600 * KiB),
        OutputFile("c.png", b"c" * 100 * KiB),
    ]
    plan = await plan_delivery(files, size_limit=1 * MiB)
    names = [[f.filename for f in batch] for batch in plan.batches]
    assert names == [["a.png"], ["b.png", "c.png"]]


async def test_split_for_count_and_size_says_both() -> None:
    files = blobs(12, 10 * KiB) + blobs(4, 3 * MiB, "big")
    plan = await plan_delivery(files, size_limit=10 * MiB)
    assert [len(batch) for batch in plan.batches] == [10, 5, 1]
    assert [str(note) for note in plan.notes] == [
        "Split across 3 messages to fit Discord's limits of 10 files and 10 MiB per message."
    ]


async def test_file_of_exactly_the_budget_is_not_reencoded() -> None:
    budget = 10 * MiB - (10 * MiB // 100 + 4 * KiB)
    plan = await plan_delivery([OutputFile("edge.png", b"e" * budget)], size_limit=10 * MiB)
    assert plan.reencoded_count == 0 and plan.batches[0][0].filename == "edge.png"


async def test_no_files_means_no_batches() -> None:
    plan = await plan_delivery([], size_limit=10 * MiB)
    assert plan.batches == [] and plan.notes == []


async def test_huge_noise_png_is_reencoded_to_fit(noise_png: bytes) -> None:
    original = OutputFile("edit-1.png", noise_png)
    small = OutputFile("edit-2.png", b"x" * KiB)
    plan = await plan_delivery([original, small], size_limit=1 * MiB)
    budget = 1 * MiB - (MiB // 100 + 4 * KiB)
    first = plan.batches[0][0]
    assert first.reencoded and first.filename == "edit-1.jpg"
    assert len(first.data) <= budget
    with Image.open(io.BytesIO(first.data)) as reencoded:
        assert reencoded.format == "JPEG" and reencoded.size == (1024, 1024)
    assert plan.reencoded_count == 1
    assert str(plan.notes[0]) == ("1 picture was re-encoded as JPEG to fit Discord's 1 MiB upload limit.")
    # The caller's objects are left alone (they may be reused for a retry).
    assert original.data == noise_png and not original.reencoded


async def test_reencoding_downscales_when_quality_is_not_enough(noise_png: bytes) -> None:
    files = [OutputFile("a.webp", noise_png), OutputFile("b", noise_png)]
    plan = await plan_delivery(files, size_limit=300 * KiB)
    budget = 300 * KiB - (300 * KiB // 100 + 4 * KiB)
    assert [[f.filename for f in batch] for batch in plan.batches] == [["a.jpg"], ["b.jpg"]]
    for batch in plan.batches:
        assert len(batch[0].data) <= budget
        with Image.open(io.BytesIO(batch[0].data)) as reencoded:
            assert reencoded.width < 1024
    assert [str(note) for note in plan.notes] == [
        "2 pictures were re-encoded as JPEG to fit Discord's 300 KiB upload limit (2 of them also scaled down).",
        "Split across 2 messages to fit Discord's 300 KiB upload limit.",
    ]


async def test_pictures_share_fewer_messages_than_they_need_alone(noise_png: bytes) -> None:
    # Where Discord takes only a few followups (a user install alone: 5), the pictures share them, in order.
    small = OutputFile("small.png", b"s" * 100 * KiB)
    files = [small, *(OutputFile(f"{name}.png", noise_png) for name in "abc")]
    assert len((await plan_delivery(files, size_limit=1 * MiB)).batches) == 3
    plan = await plan_delivery(files, size_limit=1 * MiB, max_messages=2)
    budget = 1 * MiB - (1 * MiB // 100 + 4 * KiB)
    assert [[f.filename for f in batch] for batch in plan.batches] == [["small.png", "a.jpg"], ["b.jpg", "c.jpg"]]
    assert all(sum(len(f.data) for f in batch) <= budget for batch in plan.batches)
    # The small picture keeps its bytes; the large one beside it takes the rest of the message, not half of it.
    assert plan.batches[0][0] is small
    assert len(plan.batches[0][1].data) > budget // 2
    assert plan.reencoded_count == 3 and not any(f.reencoded for f in files)
    assert str(plan.notes[-1]) == "Split across 2 messages to fit Discord's 1 MiB upload limit."


async def test_transparent_result_is_flattened_on_white() -> None:
    image = Image.frombytes("RGB", (512, 512), os.urandom(512 * 512 * 3)).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 16, 16))
    plan = await plan_delivery([OutputFile("t.png", encode(image))], size_limit=400 * KiB)
    with Image.open(io.BytesIO(plan.batches[0][0].data)) as reencoded:
        red, green, blue = reencoded.convert("RGB").getpixel((4, 4))
        assert min(red, green, blue) > 240


async def test_impossible_limit_is_an_error() -> None:
    with pytest.raises(ValueError):
        await plan_delivery(blobs(1, 10), size_limit=1000)


# --- the event loop stays free ----------------------------------------------------------------


async def test_pillow_work_runs_off_the_event_loop(noise_png: bytes) -> None:
    """A heartbeat coroutine keeps ticking while plan_delivery decodes and re-encodes.

    Were the work done on the loop, the heartbeat could not run at all until it finished.
    """
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    await until(lambda: ticks > 0, 5, "the heartbeat to start")
    ticks = 0
    ticks = 0
    plan = await plan_delivery([OutputFile(f"{i}.png", noise_png) for i in range(3)], size_limit=300 * KiB)
    during = ticks
    stop.set()
    await beating
    assert plan.reencoded_count == 3
    assert during >= 10, f"heartbeat ticked only {during} times during the Pillow work"


async def test_an_upload_of_a_picture_never_copies_it_whole_and_sends_it_intact() -> None:
    """aiohttp asks a BytesIO for getbuffer(), which copies the bytes a plain BytesIO shares: on the loop."""
    picture = os.urandom(8 * MiB)
    received: list[bytes] = []

    async def upload(request: web.Request) -> web.Response:
        async for part in await request.multipart():
            received.append(await part.read())  # type: ignore[union-attr]
        return web.Response()

    app = web.Application(client_max_size=16 * MiB)
    app.router.add_post("/upload", upload)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        file = discord.File(SharedBytesIO(picture), filename="retouch-1-1.png")
        tracemalloc.start()
        form = aiohttp.FormData()
        form.add_field("files[0]", file.fp, filename=file.filename, content_type="image/png")
        body = form()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < MiB and body.size is not None and body.size > len(picture)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{runner.addresses[0][1]}/upload", data=body) as answer:
                assert answer.status == 200
    finally:
        await runner.cleanup()
    assert received == [picture]
