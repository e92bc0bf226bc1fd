"""The browser painter end to end: the panel's link, the bot's own HTTP server, headless Chromium, the channel.

The real bot runs against the Discord and Model Hub emulators with PUBLIC_URL pointing at its HTTP server on
127.0.0.1; the browser follows the panel's "Paint in browser" link, draws, and submits.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from PIL import Image

from services.outside.painter_tokens import PainterGrant, PainterTokens
from tests.browser import drag, open_page, screenshot_path, submit
from tests.helpers import button, labels_of, paint_link, panel_of, posted_edit, told, used
from tests.images import png_bytes
from tests.ports import free_port
from tests.protocol import EPHEMERAL
from tests.stack import loopback_stack

WIDTH, HEIGHT = 640, 400  # big enough to paint on with a mouse

pytestmark = pytest.mark.browser


@pytest.fixture
async def served(tmp_path):
    """The stack with the bot's HTTP server on a free port, and PUBLIC_URL naming it."""
    port = free_port()
    async with loopback_stack(tmp_path, painter_port=port, public_url=f"http://127.0.0.1:{port}") as stack:
        yield stack


async def mapped(page: Any, width: int, height: int):
    """Wait for the picture and its layer; returns a map from picture pixels to page coordinates."""
    await page.wait_for_selector("body[data-ready=true]")
    box = await page.locator("#picture").bounding_box()
    return lambda x, y: (box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height)


def edited_area(stack) -> Image.Image:
    url = stack.hub.requests[-1].fields["mask_image"]
    mask = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    return mask.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)


async def wide_result(stack) -> dict:
    """A member's /edit of a 640x400 picture: the result message."""
    image = stack.discord.add_attachment(png_bytes(WIDTH, HEIGHT), "photo.png", "image/png", width=WIDTH, height=HEIGHT)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "invert it", "size": f"{WIDTH}x{HEIGHT}"})
    await told(record, "Done")
    return record.followups[0]


async def test_paint_in_browser_posts_the_result_in_the_channel(browser, served):
    stack = served
    result = await wide_result(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    link = paint_link(panel)
    assert link.startswith(f"{stack.config.public_url}/paint/")
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    watched, response = await open_page(context, link)
    assert response.status == 200, await watched.page.inner_text("main")
    page = watched.page
    at = await mapped(page, WIDTH, HEIGHT)
    assert await page.locator("textarea[name=prompt]").input_value() == "invert it"  # the result's prompt
    assert "cdn" not in await page.locator("#picture").get_attribute("src")  # served by the bot, not Discord

    await page.get_by_role("button", name="Rectangle").click()
    await drag(page, [at(1, 1), at(320, 399)])
    await page.screenshot(path=screenshot_path("painter-e2e.png"))
    requests = len(stack.hub.requests)
    status = await submit(watched, "a blue sky", 1)
    assert status == "Done: the result is posted in the channel."

    assert len(stack.hub.requests) == requests + 1
    assert stack.hub.requests[-1].fields["prompt"] == "a blue sky"
    mask = edited_area(stack)
    assert mask.size == (WIDTH, HEIGHT)
    left = mask.crop((0, 0, WIDTH // 2, HEIGHT))
    assert sum(1 for value in left.get_flattened_data() if value) / (WIDTH // 2 * HEIGHT) >= 0.9
    assert not any(mask.crop((WIDTH // 2 + 2, 0, WIDTH, HEIGHT)).get_flattened_data())

    member = stack.discord.member["id"]
    [posted] = [
        m
        for m in stack.discord.messages.values()
        if m["author"]["id"] == stack.discord.bot_user["id"] and "a blue sky" in m["content"] and m["files"]
    ]
    assert int(posted["channel_id"]) == stack.discord.channel_id and not posted["flags"] & EPHEMERAL
    assert f"Requested by <@{member}>" in posted["content"]
    labels = [c.get("label") for row in posted["components"] for c in row["components"]]
    assert labels == ["Reroll", "Remix", "Region", "Delete", "Zoom out", None, None, None, None]
    [sent] = [c for c in stack.discord.calls if c.method == "POST" and c.json and "a blue sky" in str(c.json)]
    assert sent.path == f"/channels/{stack.discord.channel_id}/messages"
    assert [int(u) for u in sent.json["allowed_mentions"]["users"]] == [int(member)]  # the member is pinged
    assert await used(stack) == 2
    # Two interactions were acknowledged (the /edit and the Region click), each within Discord's 3 s; the
    # painter's submission came by a link and acknowledged nothing.
    registry = stack.bot.metrics.registry
    assert registry.get_sample_value("retouch_interaction_ack_seconds_count") == 2
    assert registry.get_sample_value("retouch_interaction_ack_seconds_sum") < 6

    # The same link again: used, nothing more charged or sent upstream.
    watched, response = await open_page(context, link)
    assert response.status == 410
    assert "already been used" in await watched.page.locator("#error-message").inner_text()
    assert len(stack.hub.requests) == requests + 1 and await used(stack) == 2
    await context.close()


async def test_a_refused_submission_costs_nothing_and_leaves_the_link_usable(browser, served):
    stack = served
    result = await wide_result(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    link = paint_link(panel)
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    watched, _ = await open_page(context, link)
    at = await mapped(watched.page, WIDTH, HEIGHT)
    await drag(watched.page, [at(100, 100), at(300, 100)])
    await stack.bot.settings.update(stack.discord.guild_id, remixing_enabled=False)
    status = await submit(watched, "a hat", 1)
    assert status == "Remixing is turned off on this server."
    assert len(stack.hub.requests) == 1 and await used(stack) == 1
    _, response = await open_page(context, link)
    assert response.status == 200  # given back: the member can fix what was wrong and submit again
    await context.close()


async def test_an_expired_link_is_refused_and_costs_nothing(browser, served):
    stack = served
    _, result = await posted_edit(stack)
    job = await stack.bot.jobs.find_by_result_message(int(result["id"]))
    attachment = result["attachments"][0]
    # A link made 16 minutes ago with this deployment's own (stored) key.
    earlier = await PainterTokens.open(stack.bot.database, None, clock=lambda: time.time() - 16 * 60)
    grant = PainterGrant(
        member_id=int(stack.discord.member["id"]),
        guild_id=stack.discord.guild_id,
        channel_id=stack.discord.channel_id,
        picture_url=attachment["url"],
        attachment_id=int(attachment["id"]),
        job_id=job.id,
    )
    context = await browser.new_context()
    watched, response = await open_page(context, f"{stack.config.public_url}/paint/{earlier.issue(grant)}")
    assert response.status == 410
    assert "expired" in await watched.page.locator("#error-message").inner_text()
    # The same grant, made now, opens: the refusal was the expiry alone.
    fresh = await PainterTokens.open(stack.bot.database, None)
    _, response = await open_page(context, f"{stack.config.public_url}/paint/{fresh.issue(grant)}")
    assert response.status == 200
    assert len(stack.hub.requests) == 1 and await used(stack) == 1
    await context.close()


async def test_without_public_url_the_panel_has_no_link(stack):
    _, result = await posted_edit(stack)
    panel = await panel_of(await stack.discord.click(result, button(result, "Region")))
    assert labels_of(panel) == ["Invert", "Continue", "Zoom out", None, None, None, None]
