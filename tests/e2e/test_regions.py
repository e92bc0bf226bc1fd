"""The region panel end to end: Region button and Edit region menu, preview redrawn, the mask upstream, restarts."""

from __future__ import annotations

import base64
import io

from PIL import Image

from services.imaging.regions import TINT, TINT_OPACITY
from tests.harness import running_bot
from tests.helpers import (
    button,
    labels_of,
    modal_of,
    panel_of,
    posted_edit,
    redrawn,
    results_of,
    select_of,
    submit,
    text_of,
    told,
    used,
    walk,
)
from tests.images import png_bytes
from tests.protocol import EPHEMERAL, MEDIA_GALLERY
from tests.stack import Stack

# The panel is a components v2 message: its words, preview and controls in one container.
IS_COMPONENTS_V2 = 1 << 15
# Preview coordinates (a 64x64 picture is drawn at 384x384) away from the grid's lines and labels.
LEFT, RIGHT, TOP, BOTTOM = (20, 150), (364, 150), (150, 20), (150, 364)


def preview(panel: dict) -> Image.Image:
    """The picture the panel shows now: its one attachment, the latest upload (earlier ones were replaced)."""
    [attachment] = panel["attachments"]
    file = panel["files"][-1]
    assert attachment["filename"] == file.filename == "region.jpg"
    return Image.open(io.BytesIO(file.data)).convert("RGB")


def tinted(before: Image.Image, after: Image.Image, point: tuple[int, int]) -> bool:
    """Whether `point` of `after` is `before`'s pixel blended with the tint (JPEG's noise allowed)."""
    original = before.getpixel(point)
    expected = [round(o * (1 - TINT_OPACITY) + t * TINT_OPACITY) for o, t in zip(original, TINT, strict=True)]
    return max(abs(a - e) for a, e in zip(after.getpixel(point), expected, strict=True)) <= 12


def same(before: Image.Image, after: Image.Image, point: tuple[int, int]) -> bool:
    return max(abs(a - b) for a, b in zip(after.getpixel(point), before.getpixel(point), strict=True)) <= 12


def changed_area(stack: Stack, request: int = -1) -> Image.Image:
    """Where the upstream was told to edit: 255 where the mask's alpha is 0."""
    url = stack.hub.requests[request].fields["mask_image"]
    assert url.startswith("data:image/png;base64,")
    mask = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert mask.mode == "RGBA"
    return mask.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)


def only(mask: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """The mask marks exactly `box` (left, top, right, bottom; right and bottom exclusive)."""
    expected = Image.new("L", mask.size, 0)
    expected.paste(255, box)
    return mask.tobytes() == expected.tobytes()


async def test_region_button_left_half_then_invert_edits_the_right_half(stack):
    _, result = await posted_edit(stack)
    labels = [c["label"] for c in result["components"][0]["components"]]
    assert labels == ["Reroll", "Remix", "Region", "Delete"]
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    assert "Area to change: nothing yet." in text_of(panel)
    assert panel["flags"] & IS_COMPONENTS_V2
    [gallery] = [c for c in walk(panel["components"]) if c["type"] == MEDIA_GALLERY]
    assert gallery["items"][0]["media"]["url"] == "attachment://region.jpg"
    blank = preview(panel)
    assert blank.size == (384, 384)

    panel = await redrawn(
        stack, panel, await stack.discord.click(panel, select_of(panel)["custom_id"], values=["left"])
    )
    left = preview(panel)
    assert "Area to change: Left half." in text_of(panel)
    assert tinted(blank, left, LEFT) and same(blank, left, RIGHT)

    panel = await redrawn(stack, panel, await stack.discord.click(panel, button(panel, "Invert")))
    inverted = preview(panel)
    assert "everything except Left half" in text_of(panel)
    assert same(blank, inverted, LEFT) and tinted(blank, inverted, RIGHT)

    modal = await modal_of(await stack.discord.click(panel, button(panel, "Continue")))
    assert modal["components"][0]["component"]["value"] == "invert it"  # the result's prompt
    record = await submit(stack, modal, {"Prompt": "a red door", "Count": "1"}, message=panel)
    [edited] = await results_of(record)
    assert stack.hub.requests[-1].fields["prompt"] == "a red door"
    mask = changed_area(stack)
    assert mask.size == (64, 64) and only(mask, (32, 0, 64, 64))
    assert [c["label"] for c in edited["components"][0]["components"]] == labels
    link = f"https://discord.com/channels/{stack.discord.guild_id}/{result['channel_id']}/{result['id']}"
    assert f"Remix of {link} by <@{stack.discord.member['id']}>" in edited["content"]
    assert await used(stack) == 2
    job = await stack.bot.jobs.find_by_result_message(int(edited["id"]))
    parent = await stack.bot.jobs.find_by_result_message(int(result["id"]))
    assert job.parent_job_id == parent.id


async def test_an_empty_area_cannot_continue_and_costs_nothing(stack):
    _, result = await posted_edit(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    words = "The area to change is empty: choose at least one area first. Nothing was charged."
    response = await (await stack.discord.click(panel, button(panel, "Continue"))).wait_response()
    assert response["data"]["flags"] & EPHEMERAL and words in response["data"]["content"]
    # Both halves inverted is nothing either.
    record = await stack.discord.click(panel, select_of(panel)["custom_id"], values=["left", "right"])
    panel = await redrawn(stack, panel, record)
    panel = await redrawn(stack, panel, await stack.discord.click(panel, button(panel, "Invert")))
    response = await (await stack.discord.click(panel, button(panel, "Continue"))).wait_response()
    assert words in response["data"]["content"]
    assert len(stack.hub.requests) == 1 and await used(stack) == 1


async def test_the_menu_on_a_members_picture_and_a_restart_between_clicks(stack):
    photo = png_bytes(64, 64)
    owner = stack.discord.other_member
    attachment = stack.discord.add_attachment(photo, "cat.png", "image/png", width=64, height=64)
    message = stack.discord.add_message("my cat", user=owner, attachments=[attachment])
    panel = await panel_of(await stack.discord.message_command("Edit region", message))
    blank = preview(panel)
    panel = await redrawn(stack, panel, await stack.discord.click(panel, select_of(panel)["custom_id"], values=["top"]))
    assert tinted(blank, preview(panel), TOP) and same(blank, preview(panel), BOTTOM)

    await stack.bot.close()
    async with running_bot(stack.config, stack.discord) as restarted:
        stack.bot = restarted
        # An application with the MESSAGE_CONTENT intent may read the upload again after the restart.
        from emulators.discord import Intent

        stack.discord.privileged_intents = Intent.MESSAGE_CONTENT
        panel = await redrawn(stack, panel, await stack.discord.click(panel, button(panel, "Invert")))
        assert same(blank, preview(panel), TOP) and tinted(blank, preview(panel), BOTTOM)
        modal = await modal_of(await stack.discord.click(panel, button(panel, "Continue")))
        assert not modal["components"][0]["component"].get("value")  # no result, no prompt to prefill
        record = await submit(stack, modal, {"Prompt": "a garden", "Count": "2"}, message=panel)
        [edited] = await results_of(record)
        assert only(changed_area(stack), (0, 32, 64, 64))
        assert len(edited["files"]) == 2 and f"by <@{owner['id']}>" in edited["content"]
        assert await used(stack) == 2


async def test_a_result_panel_survives_a_restart(stack):
    _, result = await posted_edit(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    panel = await redrawn(
        stack, panel, await stack.discord.click(panel, select_of(panel)["custom_id"], values=["cell-0-0"])
    )
    await stack.bot.close()
    async with running_bot(stack.config, stack.discord) as restarted:
        stack.bot = restarted
        modal = await modal_of(await stack.discord.click(panel, button(panel, "Continue")))
        [_] = await results_of(await submit(stack, modal, {}, message=panel))
        assert only(changed_area(stack), (0, 0, 21, 21))  # the top left third of 64 pixels, rounded
        assert await used(stack) == 2


async def test_an_opted_out_owner_is_not_edited_by_others(stack):
    member, stranger = stack.discord.member, stack.discord.other_member
    _, result = await posted_edit(stack, user=member)
    await stack.bot.jobs.set_remix_opt_out(int(member["id"]), True)
    response = await (await stack.discord.click(result, button(result, "Region"), user=stranger)).wait_response()
    assert f"<@{member['id']}> has opted out" in response["data"]["content"]
    menu = await stack.discord.message_command("Edit region", result, user=stranger)
    assert "has opted out" in (await menu.wait_response())["data"]["content"]
    message = stack.discord.add_message("just words")
    menu = await stack.discord.message_command("Edit region", message)
    await told(menu, "That message has no picture to edit")
    assert len(stack.hub.requests) == 1 and await used(stack, stranger) == 0


async def test_the_panel_speaks_the_members_language(stack):
    _, result = await posted_edit(stack)
    record = await stack.discord.click(result, button(result, "Region"), locale="de")
    panel = await panel_of(record)
    select = select_of(panel)
    assert [o["label"] for o in select["options"]][:2] == ["Linke Hälfte", "Rechte Hälfte"]
    assert select["options"][6]["label"] == "Oben links"
    panel = await redrawn(
        stack, panel, await stack.discord.click(panel, select_of(panel)["custom_id"], values=["left"], locale="de")
    )
    assert "Zu ändernder Bereich: Linke Hälfte." in text_of(panel)
    assert labels_of(panel) == ["Umkehren", "Weiter", "Herauszoomen", None, None, None, None]


async def test_the_panel_refuses_a_picture_edit_would_refuse_to_decode(stack):
    # A 20-megapixel PNG: under the 40 MP every picture may have, over the 16 MP /edit decodes at full size.
    owner = stack.discord.other_member
    big = io.BytesIO()
    Image.new("L", (5000, 4000)).save(big, format="PNG")
    attachment = stack.discord.add_attachment(big.getvalue(), "huge.png", "image/png", width=5000, height=4000)
    message = stack.discord.add_message("a big one", user=owner, attachments=[attachment])
    record = await stack.discord.message_command("Edit region", message)
    words = await told(record, "`image` is 5000x4000")
    assert words == (
        "`image` is 5000x4000 (20 megapixels); a picture Retouch reads at full size (a mask, a PNG, WebP or GIF, "
        "or a photo stored turned) may have at most 17 megapixels; send a smaller picture."
    )
    assert not stack.hub.requests and await used(stack) == 0
