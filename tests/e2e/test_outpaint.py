"""Zoom out and Pan end to end: the buttons under a result, the modal, and what goes upstream, pixel by pixel."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from cogs.buttons import PAN_EMOJI
from emulators.modelhub import Fault
from services.imaging.outpaint import SEAM
from tests.harness import running_bot
from tests.helpers import (
    button,
    file_of,
    modal_of,
    moderator,
    panel_of,
    picture,
    posted_edit,
    results_of,
    submit,
    told,
    used,
    walk,
)
from tests.images import png_bytes
from tests.protocol import EPHEMERAL
from tests.stack import Stack


def pan_button(message: dict, direction: str) -> str:
    """The custom id of the message's Pan button for `direction` (an emoji, no label)."""
    [custom_id] = [
        c["custom_id"]
        for c in walk(message["components"])
        if (c.get("emoji") or {}).get("name") == PAN_EMOJI[direction]
    ]
    return custom_id


def sent(stack: Stack, field: str) -> Image.Image:
    """A picture the last upstream request carried as a PNG data URL."""
    url = stack.hub.requests[-1].fields[field]
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.format == "PNG"
    return image


def opaque_box(left: int, top: int, right: int, bottom: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The original's box minus the seam on each side that borders new area."""
    width, height = size
    return (
        left + (SEAM if left else 0),
        top + (SEAM if top else 0),
        right - (SEAM if right < width else 0),
        bottom - (SEAM if bottom < height else 0),
    )


def check_upstream(stack: Stack, original: bytes, size: tuple[int, int], offset: tuple[int, int]) -> None:
    """The request: `size`, the picture at that size with the original exactly at `offset`, the mask's alpha."""
    assert stack.hub.requests[-1].fields["size"] == f"{size[0]}x{size[1]}"
    picture, mask = sent(stack, "url"), sent(stack, "mask_image")
    assert picture.size == mask.size == size
    source = Image.open(io.BytesIO(original)).convert("RGB")
    box = (*offset, offset[0] + source.width, offset[1] + source.height)
    assert picture.convert("RGB").crop(box).tobytes() == source.tobytes()
    # Not black: the new area continues the picture (here a gradient from black, so not everywhere).
    beyond = picture.convert("RGB")
    beyond.paste((0, 0, 0), box)
    assert beyond.getbbox() is not None
    assert mask.mode == "RGBA"
    expected = Image.new("L", size, 0)
    expected.paste(255, opaque_box(*box, size))
    assert mask.getchannel("A").tobytes() == expected.tobytes()


def credit(stack: Stack, result: dict, words: str) -> str:
    link = f"https://discord.com/channels/{stack.discord.guild_id}/{result['channel_id']}/{result['id']}"
    return f"{words} {link} by <@{stack.discord.member['id']}>"


async def test_zoom_out_2x_sends_the_result_centred_on_a_canvas_twice_its_size(stack):
    _, result = await posted_edit(stack)
    rows = [[c.get("label") for c in row["components"]] for row in result["components"]]
    assert rows == [["Reroll", "Remix", "Region", "Delete"], ["Zoom out", None, None, None, None]]
    modal = await modal_of(await stack.discord.click(result, button(result, "Zoom out")))
    assert modal["title"] == "Zoom out"
    assert [label["label"] for label in modal["components"]] == ["Prompt", "Factor", "Count"]
    assert modal["components"][0]["component"]["value"] == "invert it"  # the result's prompt
    factor = modal["components"][1]["component"]
    assert [(o["label"], o.get("default", False)) for o in factor["options"]] == [("1.5×", False), ("2×", True)]
    record = await submit(stack, modal, {"Prompt": "a wide meadow"}, message=result)
    [zoomed] = await results_of(record)
    assert stack.hub.requests[-1].fields["prompt"] == "a wide meadow"
    check_upstream(stack, file_of(result), (128, 128), (32, 32))
    assert "128x128" in zoomed["content"]
    assert credit(stack, result, "Zoomed out from") in zoomed["content"]
    assert await used(stack) == 2
    job = await stack.bot.jobs.find_by_result_message(int(zoomed["id"]))
    parent = await stack.bot.jobs.find_by_result_message(int(result["id"]))
    assert job.parent_job_id == parent.id and job.size == "128x128"


async def test_zoom_out_1_5x(stack):
    _, result = await posted_edit(stack)
    modal = await modal_of(await stack.discord.click(result, button(result, "Zoom out")))
    [_] = await results_of(await submit(stack, modal, {"Factor": "1.5", "Count": "1"}, message=result))
    check_upstream(stack, file_of(result), (96, 96), (16, 16))


@pytest.mark.parametrize(
    ("direction", "size", "offset"),
    [("left", (96, 64), (32, 0)), ("right", (96, 64), (0, 0)), ("up", (64, 96), (0, 32)), ("down", (64, 96), (0, 0))],
)
async def test_pan_extends_by_half_a_side_with_the_result_at_the_opposite_edge(stack, direction, size, offset):
    _, result = await posted_edit(stack)
    modal = await modal_of(await stack.discord.click(result, pan_button(result, direction)))
    assert modal["title"] == f"Pan {direction}"
    assert [label["label"] for label in modal["components"]] == ["Prompt", "Count"]  # no factor
    [panned] = await results_of(await submit(stack, modal, {"Prompt": "more sky"}, message=result))
    check_upstream(stack, file_of(result), size, offset)
    assert f"{size[0]}x{size[1]}" in panned["content"]
    assert credit(stack, result, "Panned from") in panned["content"]
    assert await used(stack) == 2


async def test_the_buttons_work_after_a_restart_and_a_reroll_repeats_the_canvas(stack):
    _, result = await posted_edit(stack)
    await stack.bot.close()
    async with running_bot(stack.config, stack.discord) as restarted:
        stack.bot = restarted
        modal = await modal_of(await stack.discord.click(result, pan_button(result, "left")))
        [panned] = await results_of(await submit(stack, modal, {}, message=result))
        check_upstream(stack, file_of(result), (96, 64), (32, 0))
        first_mask = sent(stack, "mask_image").tobytes()
        # Reroll of the panned result: the same canvas and mask again, not grown twice.
        record = await stack.discord.click(panned, button(panned, "Reroll"))
        [_] = await results_of(record)
        check_upstream(stack, file_of(result), (96, 64), (32, 0))
        assert sent(stack, "mask_image").tobytes() == first_mask
        assert await used(stack) == 3


async def test_a_result_at_the_maximum_size_cannot_grow_and_costs_nothing(stack):
    _, image = picture(stack, 64, 32)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "wide", "size": "2048x1024"})
    [result] = await results_of(record)
    response = await (await stack.discord.click(result, button(result, "Zoom out"))).wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    assert response["data"]["content"] == (
        "This picture cannot grow that way: it is already 2048×1024 pixels, and the upstream makes pictures of at"
        " most 2048 pixels a side. Nothing was charged."
    )
    response = await (await stack.discord.click(result, pan_button(result, "right"), locale="de")).wait_response()
    assert response["data"]["content"] == (
        "Dieses Bild kann in diese Richtung nicht wachsen: Es hat schon 2048×1024 Pixel, und der Model Hub"
        " erzeugt höchstens 2048 Pixel pro Seite. Dir wurde nichts angerechnet."
    )
    # Its height can still grow.
    modal = await modal_of(await stack.discord.click(result, pan_button(result, "down")))
    assert modal["title"] == "Pan down"
    assert len(stack.hub.requests) == 1 and await used(stack) == 1


async def test_the_german_words(stack):
    _, result = await posted_edit(stack)
    modal = await modal_of(await stack.discord.click(result, button(result, "Zoom out"), locale="de"))
    assert modal["title"] == "Herauszoomen"
    assert [label["label"] for label in modal["components"]] == ["Prompt", "Faktor", "Anzahl"]
    assert [o["label"] for o in modal["components"][1]["component"]["options"]] == ["1,5×", "2×"]
    modal = await modal_of(await stack.discord.click(result, pan_button(result, "up"), locale="de"))
    assert modal["title"] == "Nach oben erweitern"
    assert [label["label"] for label in modal["components"]] == ["Prompt", "Anzahl"]


async def test_quota_is_checked_before_the_picture_is_read_and_a_failure_is_refunded(stack):
    _, result = await posted_edit(stack)
    await moderator(stack, "member", {"member": stack.discord.member, "limit": 2, "period": "day"})
    modal = await modal_of(await stack.discord.click(result, button(result, "Zoom out")))
    record = await submit(stack, modal, {"Count": "2"}, message=result)
    said = await told(record, "You have 1 of 2 images left this day and asked for 2.")
    assert "Done" not in said and len(stack.hub.requests) == 1 and await used(stack) == 1
    # The upstream fails: the reservation goes back.
    stack.hub.inject(Fault(status=500), times=10)
    modal = await modal_of(await stack.discord.click(result, pan_button(result, "down")))
    record = await submit(stack, modal, {}, message=result)
    await record.wait_for(lambda r: any("charged" in text for text in r.texts()), timeout=30)
    assert await used(stack) == 1


async def test_the_region_panel_zooms_out_a_members_upload(stack):
    photo = png_bytes(64, 48)
    owner = stack.discord.other_member
    attachment = stack.discord.add_attachment(photo, "cat.png", "image/png", width=64, height=48)
    message = stack.discord.add_message("my cat", user=owner, attachments=[attachment])
    panel = await panel_of(await stack.discord.message_command("Edit region", message))
    [row] = [c for c in walk(panel["components"]) if any(b.get("label") == "Zoom out" for b in c.get("components", []))]
    assert [b.get("label") for b in row["components"]] == ["Zoom out", None, None, None, None]
    modal = await modal_of(await stack.discord.click(panel, button(panel, "Zoom out")))
    assert not modal["components"][0]["component"].get("value")  # no result, no prompt to prefill
    record = await submit(stack, modal, {"Prompt": "the whole garden", "Factor": "1.5"}, message=panel)
    [zoomed] = await results_of(record)
    check_upstream(stack, photo, (96, 80), (16, 16))
    link = f"https://discord.com/channels/{stack.discord.guild_id}/{message['channel_id']}/{message['id']}"
    assert f"Zoomed out from {link} by <@{owner['id']}>" in zoomed["content"]
    assert await used(stack) == 1


async def test_the_region_panel_pans_a_result_after_a_restart(stack):
    _, result = await posted_edit(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    await stack.bot.close()
    async with running_bot(stack.config, stack.discord) as restarted:
        stack.bot = restarted
        modal = await modal_of(await stack.discord.click(panel, pan_button(panel, "up")))
        assert modal["title"] == "Pan up" and modal["components"][0]["component"]["value"] == "invert it"
        [panned] = await results_of(await submit(stack, modal, {}, message=panel))
        check_upstream(stack, file_of(result), (64, 96), (0, 32))
        assert credit(stack, result, "Panned from") in panned["content"]


async def test_an_upload_at_the_maximum_width_cannot_pan_sideways_and_costs_nothing(stack):
    photo = png_bytes(2048, 64)
    attachment = stack.discord.add_attachment(photo, "wide.png", "image/png", width=2048, height=64)
    message = stack.discord.add_message("a panorama", attachments=[attachment])
    panel = await panel_of(await stack.discord.message_command("Edit region", message))
    modal = await modal_of(await stack.discord.click(panel, pan_button(panel, "left")))
    record = await submit(stack, modal, {"Prompt": "more"}, message=panel)
    said = await told(record, "cannot grow that way")
    assert "it is already 2048×64 pixels" in said and "Nothing was charged." in said
    assert len(stack.hub.requests) == 0 and await used(stack) == 0
