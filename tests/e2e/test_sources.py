"""Where an edit's pictures come from (issue 9 items 2, 3, 13): kept copies outlive Discord's purge, a
valid signed URL is used as it is, refreshing is bounded and said plainly when it fails, and a member
who cannot be served costs no download."""

from __future__ import annotations

from emulators.modelhub import expected_image
from services.storage.quota import Period
from tests.helpers import DAY, button, file_of, modal_of, pixels, posted_edit, results_of, submit, told, used
from tests.images import alpha_mask, png_bytes

REFRESH = "/attachments/refresh-urls"


def refreshes(stack) -> int:
    return [call.path for call in stack.discord.calls].count(REFRESH)


async def test_reroll_of_an_edit_still_works_after_discord_purged_the_upload(stack):
    source, result = await posted_edit(stack)
    assert stack.discord.purge_ephemeral() >= 1
    record = await stack.discord.click(result, button(result, "Reroll"))
    [rerolled] = await results_of(record)
    # The kept copy went upstream, byte for byte the member's PNG (it is no larger than the upstream takes).
    assert stack.hub.requests[-1].fields["url"].startswith("data:image/png;base64,")
    assert pixels(file_of(rerolled)) == expected_image(source, None, (64, 64), 0).tobytes()
    assert refreshes(stack) == 0


async def test_reroll_with_a_mask_uses_both_kept_copies_after_the_purge(stack):
    source, mask = png_bytes(64, 64), alpha_mask(64, 64, (0, 0, 32, 64))
    image = stack.discord.add_attachment(source, "photo.png", "image/png")
    mask_file = stack.discord.add_attachment(mask, "mask.png", "image/png")
    record = await stack.discord.slash(
        "edit", {"image": image, "mask": mask_file, "prompt": "left half", "size": "64x64"}
    )
    await told(record)
    result = record.followups[0]
    stack.discord.purge_ephemeral()
    [rerolled] = await results_of(await stack.discord.click(result, button(result, "Reroll")))
    fields = stack.hub.requests[-1].fields
    assert fields["url"].startswith("data:") and fields["mask_image"].startswith("data:")
    assert pixels(file_of(rerolled)) == expected_image(source, mask, (64, 64), 0).tobytes()


async def test_reroll_with_a_valid_url_needs_no_refresh(stack):
    source, result = await posted_edit(stack)
    stack.discord.fail_next("POST", "^/attachments/refresh-urls$", 503, times=10)
    record = await stack.discord.click(result, button(result, "Reroll"))
    [rerolled] = await results_of(record)
    assert pixels(file_of(rerolled)) == expected_image(source, None, (64, 64), 0).tobytes()
    assert refreshes(stack) == 0


async def test_a_remix_of_a_result_with_a_valid_url_needs_no_refresh(stack):
    _, result = await posted_edit(stack)
    stack.discord.fail_next("POST", "^/attachments/refresh-urls$", 503, times=10)
    modal = await modal_of(await stack.discord.click(result, button(result, "Remix")))
    [remixed] = await results_of(await submit(stack, modal, {"Prompt": "again"}, message=result))
    assert stack.hub.requests[-1].fields["url"] == result["attachments"][0]["url"]
    assert pixels(file_of(remixed)) == expected_image(file_of(result), None, (64, 64), 0).tobytes()
    assert refreshes(stack) == 0


async def test_an_expired_url_that_cannot_be_refreshed_is_said_plainly_in_bounded_time(stack):
    _, result = await posted_edit(stack)
    stack.bot.remixing.clock = stack.discord.now
    stack.discord.advance(2 * DAY)
    # discord.py alone retries a 502 five times, sleeping 1 + 2n s in between; the bot gives it a few seconds.
    stack.discord.fail_next("POST", "^/attachments/refresh-urls$", 502, times=10)
    requests = len(stack.hub.requests)
    modal = await modal_of(await stack.discord.click(result, button(result, "Remix")))
    record = await submit(stack, modal, {"Prompt": "again"}, message=result)
    text = await told(record, "Discord would not give a fresh link to the `image` picture right now", timeout=15)
    assert "Nothing was charged." in text
    assert len(stack.hub.requests) == requests and await used(stack) == 1  # the first edit only


async def test_a_url_refreshed_to_itself_is_a_picture_gone(stack):
    _, result = await posted_edit(stack)
    stack.bot.remixing.clock = stack.discord.now
    modal = await modal_of(await stack.discord.click(result, button(result, "Remix")))
    stack.discord.delete_message(result["id"])  # its files leave the CDN: refresh-urls repeats the dead URL
    stack.discord.advance(2 * DAY)
    record = await submit(stack, modal, {"Prompt": "again"}, message=result)
    text = await told(record, "The picture is gone: Discord no longer has it.")
    assert "Nothing was charged." in text and len(stack.hub.requests) == 1
    assert refreshes(stack) == 1


async def test_a_member_with_no_quota_left_causes_no_download(stack):
    await stack.bot.quota.set_member_rule(stack.discord.guild_id, int(stack.discord.member["id"]), 0, Period.DAY)
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png")
    hits = len(stack.discord.cdn_hits)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "anything", "size": "64x64"})
    text = await told(record, "You have 0 of 0 images left this day")
    assert "asked for 1" in text
    assert stack.discord.cdn_hits[hits:] == [] and stack.hub.requests == []
