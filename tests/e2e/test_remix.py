"""Remixing end to end: result buttons (across a restart), the message menu, consent, lineage, double clicks."""

from __future__ import annotations

from emulators.discord import Intent, Permission
from emulators.modelhub import Fault, expected_image
from services.imaging.limits import MAX_PROMPT
from tests.harness import running_bot
from tests.helpers import (
    DAY,
    button,
    file_of,
    modal_of,
    pixels,
    posted_edit,
    results_of,
    settled,
    submit,
    told,
    used,
)
from tests.images import alpha_mask, png_bytes
from tests.protocol import CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, EPHEMERAL


async def test_buttons_work_after_a_restart_and_reroll_is_charged_to_the_clicker(stack):
    source, result = await posted_edit(stack)
    assert [c["label"] for c in result["components"][0]["components"]] == ["Reroll", "Remix", "Region", "Delete"]
    await stack.bot.close()
    async with running_bot(stack.config, stack.discord) as restarted:
        stack.bot = restarted
        stranger = stack.discord.other_member
        record = await stack.discord.click(result, button(result, "Reroll"), user=stranger)
        [rerolled] = await results_of(record)
        assert (
            record.responses[0]["type"] == DEFERRED_CHANNEL_MESSAGE and record.responses[0]["data"]["flags"] & EPHEMERAL
        )
        assert pixels(file_of(rerolled)) == expected_image(source, None, (64, 64), 0).tobytes()
        link = f"https://discord.com/channels/{stack.discord.guild_id}/{result['channel_id']}/{result['id']}"
        assert f"Reroll of {link} by <@{stack.discord.member['id']}>" in rerolled["content"]
        assert f"Requested by <@{stranger['id']}>" in rerolled["content"]
        assert await used(stack, stranger) == 1 and await used(stack, stack.discord.member) == 1

        # The Remix button of the pre-restart message opens a modal that this process answers.
        record = await stack.discord.click(result, button(result, "Remix"), user=stranger)
        modal = await modal_of(record)
        assert modal["components"][0]["component"]["value"] == "invert it"
        record = await submit(stack, modal, {"Prompt": "again", "Count": "2"}, user=stranger, message=result)
        [remixed] = await results_of(record)
        for index in range(2):
            assert pixels(file_of(remixed, index)) == expected_image(file_of(result), None, (64, 64), index).tobytes()
        assert await used(stack, stranger) == 3


async def test_an_expired_result_url_is_refreshed_before_the_remix(stack):
    _, result = await posted_edit(stack)
    original_url = result["attachments"][0]["url"]
    stack.bot.remixing.clock = stack.discord.now  # the bot reads `ex` by Discord's clock
    stack.discord.advance(2 * DAY)  # every signed URL handed out so far has expired
    modal = await modal_of(await stack.discord.click(result, button(result, "Remix")))
    [remixed] = await results_of(await submit(stack, modal, {"Prompt": "again"}, message=result))
    assert [call.path for call in stack.discord.calls].count("/attachments/refresh-urls") == 1
    fresh_url = stack.hub.requests[-1].fields["url"]
    assert fresh_url != original_url and fresh_url.startswith(stack.discord.cdn_base)
    assert pixels(file_of(remixed)) == expected_image(file_of(result), None, (64, 64), 0).tobytes()


async def test_a_reroll_of_a_job_without_kept_copies_refreshes_its_expired_source(stack):
    source, result = await posted_edit(stack)
    await stack.bot.database.execute("DELETE FROM job_inputs")  # as for jobs recorded before copies were kept
    original_url = stack.hub.requests[0].fields["url"]
    stack.bot.remixing.clock = stack.discord.now
    stack.discord.advance(2 * DAY)
    [rerolled] = await results_of(await stack.discord.click(result, button(result, "Reroll")))
    assert any(call.path == "/attachments/refresh-urls" for call in stack.discord.calls)
    fresh_url = stack.hub.requests[-1].fields["url"]
    assert fresh_url != original_url and fresh_url.startswith(stack.discord.cdn_base)
    assert pixels(file_of(rerolled)) == expected_image(source, None, (64, 64), 0).tobytes()


async def test_a_deleted_source_message_is_named_plainly(stack):
    photo = png_bytes(64, 64)
    attachment = stack.discord.add_attachment(photo, "cat.png", "image/png")
    message = stack.discord.add_message("my cat", attachments=[attachment])
    modal = await modal_of(await stack.discord.message_command("Remix image", message))
    stack.discord.delete_message(message["id"])
    record = await submit(stack, modal, {"Prompt": "a tiger"})
    text = await told(record, "The picture is gone: Discord no longer has it.")
    assert "Nothing was charged" in text and stack.hub.requests == []
    assert await used(stack, stack.discord.member) == 0


async def test_opting_out_stops_others_but_not_oneself(stack):
    member, stranger = stack.discord.member, stack.discord.other_member
    record = await stack.discord.slash("remixing", {"allow": False}, user=member)
    assert "can no longer remix" in (await record.wait_response())["data"]["content"]
    assert await stack.bot.jobs.remix_opt_out(int(member["id"])) is True
    _, result = await posted_edit(stack, user=member)
    requests = len(stack.hub.requests)
    for label in ("Reroll", "Remix"):
        record = await stack.discord.click(result, button(result, label), user=stranger)
        response = await record.wait_response()
        assert response["data"]["flags"] & EPHEMERAL
        assert f"<@{member['id']}> has opted out of having their pictures remixed" in response["data"]["content"]
    menu = await stack.discord.message_command("Remix image", result, user=stranger)
    assert "has opted out" in (await menu.wait_response())["data"]["content"]
    assert len(stack.hub.requests) == requests and await used(stack, stranger) == 0

    record = await stack.discord.click(result, button(result, "Reroll"), user=member)
    await results_of(record)
    record = await stack.discord.slash("remixing", {"allow": True}, user=member)
    assert "Other members can remix" in (await record.wait_response())["data"]["content"]
    assert await stack.bot.jobs.remix_opt_out(int(member["id"])) is False


async def test_a_remix_of_a_remix_credits_each_parent(stack):
    member, stranger, moderator = stack.discord.member, stack.discord.other_member, stack.discord.moderator
    _, original = await posted_edit(stack, user=member)
    modal = await modal_of(await stack.discord.click(original, button(original, "Remix"), user=stranger))
    first = (await results_of(await submit(stack, modal, {"Prompt": "make it blue"}, user=stranger, message=original)))[
        0
    ]
    base = f"https://discord.com/channels/{stack.discord.guild_id}/{original['channel_id']}"
    assert f"Remix of {base}/{original['id']} by <@{member['id']}>" in first["content"]
    assert pixels(file_of(first)) == expected_image(file_of(original), None, (64, 64), 0).tobytes()

    # The message menu on a result finds its job: the prompt is prefilled and the parent credited.
    modal = await modal_of(await stack.discord.message_command("Remix image", first, user=moderator))
    assert modal["components"][0]["component"]["value"] == "make it blue"
    second = (await results_of(await submit(stack, modal, {"Prompt": "now red"}, user=moderator)))[0]
    assert f"Remix of {base}/{first['id']} by <@{stranger['id']}>" in second["content"]
    assert pixels(file_of(second)) == expected_image(file_of(first), None, (64, 64), 0).tobytes()

    chain = [await stack.bot.jobs.find_by_result_message(int(m["id"])) for m in (original, first, second)]
    assert [job.parent_job_id for job in chain] == [None, chain[0].id, chain[1].id]
    assert [job.user_id for job in chain] == [int(u["id"]) for u in (member, stranger, moderator)]


async def test_the_menu_offers_a_choice_of_pictures_and_takes_a_mask(stack):
    # An application with the MESSAGE_CONTENT intent enabled may re-read the member's message.
    stack.discord.privileged_intents = Intent.MESSAGE_CONTENT
    first, second = png_bytes(64, 64), png_bytes(32, 32)
    a = stack.discord.add_attachment(first, "a.png", "image/png")
    b = stack.discord.add_attachment(second, "b.png", "image/png")
    message = stack.discord.add_message("two pictures", user=stack.discord.other_member, attachments=[a, b])
    modal = await modal_of(await stack.discord.message_command("Remix image", message))
    select = modal["components"][1]["component"]
    assert [o["label"] for o in select["options"]] == ["1. a.png", "2. b.png"]
    mask_bytes = alpha_mask(32, 32, (0, 0, 16, 32))
    mask = stack.discord.add_attachment(mask_bytes, "mask.png", "image/png")
    record = await submit(stack, modal, {"Prompt": "left half", "Picture": "1", "Mask (optional)": mask})
    [result] = await results_of(record)
    size = tuple(int(n) for n in stack.hub.requests[0].fields["size"].split("x"))
    assert pixels(file_of(result)) == expected_image(second, mask_bytes, size, 0).tobytes()
    assert f"by <@{stack.discord.other_member['id']}>" in result["content"]


async def test_remixing_a_members_upload_needs_no_message_content_intent(stack):
    photo = png_bytes(64, 64)
    message = stack.discord.add_message(
        "my cat",
        user=stack.discord.other_member,
        attachments=[stack.discord.add_attachment(photo, "cat.png", "image/png")],
    )
    modal = await modal_of(await stack.discord.message_command("Remix image", message))
    record = await submit(stack, modal, {"Prompt": "a tiger"})
    await record.wait_for(lambda r: any("Done" in text or "gone" in text for text in r.texts()), timeout=20)
    assert not any("gone" in text for text in record.texts()), record.texts()
    [result] = await results_of(record)
    assert stack.hub.requests[0].fields["size"] == "1024x1024"  # auto, from the picture's aspect ratio
    assert pixels(file_of(result)) == expected_image(photo, None, (1024, 1024), 0).tobytes()
    assert not any(
        call.method == "GET" and call.path.endswith(f"/messages/{message['id']}") for call in stack.discord.calls
    )


async def test_a_message_without_a_picture_is_refused(stack):
    message = stack.discord.add_message("just words")
    response = await (await stack.discord.message_command("Remix image", message)).wait_response()
    assert response["type"] == CHANNEL_MESSAGE and response["data"]["flags"] & EPHEMERAL
    assert "That message has no picture to remix" in response["data"]["content"]


async def test_a_server_can_turn_remixing_off(stack):
    _, result = await posted_edit(stack)
    await stack.bot.settings.update(stack.discord.guild_id, remixing_enabled=False)
    response = await (await stack.discord.click(result, button(result, "Reroll"))).wait_response()
    assert "Remixing is turned off on this server." in response["data"]["content"]


async def test_delete_is_refused_to_a_stranger_and_done_for_the_requester(stack):
    _, result = await posted_edit(stack)
    record = await stack.discord.click(result, button(result, "Delete"), user=stack.discord.other_member)
    response = await record.wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    assert (
        f"Only <@{stack.discord.member['id']}>, who asked for this result, or a moderator"
        in response["data"]["content"]
    )
    assert int(result["id"]) in stack.discord.messages

    record = await stack.discord.click(result, button(result, "Delete"))
    await told(record, "Deleted.")
    assert int(result["id"]) not in stack.discord.messages


async def test_a_moderator_may_delete_anyones_result(stack):
    _, result = await posted_edit(stack)
    record = await stack.discord.click(result, button(result, "Delete"), user=stack.discord.moderator)
    await told(record, "Deleted.")
    assert int(result["id"]) not in stack.discord.messages


async def test_a_double_click_is_refused_and_charged_once(stack):
    _, result = await posted_edit(stack)
    stack.hub.inject(Fault(delay=2))
    stranger = stack.discord.other_member
    first = await stack.discord.click(result, button(result, "Reroll"), user=stranger)
    await first.wait_response()
    second = await stack.discord.click(result, button(result, "Reroll"), user=stranger)
    # Acknowledged before the claim is checked (of processes sharing a shard, only the one Discord let
    # acknowledge may answer), so the refusal fills in the ephemeral deferral.
    response = await second.wait_response()
    assert response["type"] == DEFERRED_CHANNEL_MESSAGE and response["data"]["flags"] & EPHEMERAL
    assert "Already working on that one" in await told(second, "This click was not charged.")
    await results_of(first)
    await settled(stack)
    assert len(stack.hub.requests) == 2 and await used(stack, stranger) == 1


async def test_buttons_and_the_menu_refuse_a_clicker_who_may_not_post_pictures_there(stack):
    _, result = await posted_edit(stack)
    stranger = stack.discord.other_member
    stack.discord.set_overwrite(
        stack.discord.channel_id,
        int(stranger["id"]),
        deny=Permission.SEND_MESSAGES | Permission.ATTACH_FILES,
        member=True,
    )
    words = f"You may not post pictures in <#{stack.discord.channel_id}>"
    requests = len(stack.hub.requests)
    for label in ("Reroll", "Remix"):
        response = await (await stack.discord.click(result, button(result, label), user=stranger)).wait_response()
        assert response["type"] == CHANNEL_MESSAGE and response["data"]["flags"] & EPHEMERAL
        assert words in response["data"]["content"] and "Nothing was charged." in response["data"]["content"]
    menu = await stack.discord.message_command("Remix image", result, user=stranger)
    assert words in (await menu.wait_response())["data"]["content"]
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png")
    slash = await stack.discord.slash("edit", {"image": image, "prompt": "mine", "size": "64x64"}, user=stranger)
    assert words in await told(slash, words) and slash.ephemeral
    assert len(stack.hub.requests) == requests and await used(stack, stranger) == 0
    # Sending without attaching is not enough either.
    stack.discord.set_overwrite(
        stack.discord.channel_id, int(stranger["id"]), deny=Permission.ATTACH_FILES, member=True
    )
    response = await (await stack.discord.click(result, button(result, "Reroll"), user=stranger)).wait_response()
    assert words in response["data"]["content"]


async def test_a_submit_is_refused_when_the_clicker_lost_the_right_to_post_meanwhile(stack):
    _, result = await posted_edit(stack)
    stranger = stack.discord.other_member
    modal = await modal_of(await stack.discord.click(result, button(result, "Remix"), user=stranger))
    stack.discord.set_overwrite(
        stack.discord.channel_id, int(stranger["id"]), deny=Permission.ATTACH_FILES, member=True
    )
    record = await submit(stack, modal, {"Prompt": "again"}, user=stranger, message=result)
    await told(record, f"You may not post pictures in <#{stack.discord.channel_id}>")
    assert len(stack.hub.requests) == 1 and await used(stack, stranger) == 0


async def test_the_menu_on_a_bot_message_that_is_no_result_is_refused(stack):
    picture = stack.discord.add_attachment(png_bytes(64, 64), "thumb.png", "image/png")
    entry = stack.discord.add_message("audit: an edit", user=stack.discord.bot_user, attachments=[picture])
    response = await (await stack.discord.message_command("Remix image", entry)).wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    assert "That message of mine is not the result of an edit" in response["data"]["content"]
    assert stack.hub.requests == []


async def test_an_audit_entry_cannot_be_remixed_into_a_members_picture(stack):
    audit = stack.discord.other_channel_id
    await stack.bot.settings.update(stack.discord.guild_id, audit_channel_id=audit)
    member, stranger = stack.discord.member, stack.discord.other_member
    await stack.bot.jobs.set_remix_opt_out(int(member["id"]), True)
    await posted_edit(stack, user=member)
    [entry] = [m for m in stack.discord.messages.values() if int(m["channel_id"]) == audit]
    response = await (await stack.discord.message_command("Remix image", entry, user=stranger)).wait_response()
    assert "That message of mine is not the result of an edit" in response["data"]["content"]
    assert len(stack.hub.requests) == 1 and await used(stack, stranger) == 0


async def test_manage_messages_alone_is_enough_to_delete(stack):
    janitor_role = stack.discord.add_role("Janitor", Permission.MANAGE_MESSAGES)
    janitor = stack.discord.add_member(name="janitor", roles=[stack.discord.member_role_id, janitor_role])
    _, result = await posted_edit(stack)
    record = await stack.discord.click(result, button(result, "Delete"), user=janitor)
    await told(record, "Deleted.")
    assert int(result["id"]) not in stack.discord.messages
    assert (await stack.bot.jobs.find_by_result_message(int(result["id"]))).status == "deleted"


async def test_consent_withdrawn_while_a_strangers_modal_is_open_refuses_the_submit(stack):
    member, stranger = stack.discord.member, stack.discord.other_member
    _, result = await posted_edit(stack, user=member)
    modal = await modal_of(await stack.discord.click(result, button(result, "Remix"), user=stranger))
    await (await stack.discord.slash("remixing", {"allow": False}, user=member)).wait_response()
    record = await submit(stack, modal, {"Prompt": "mine now"}, user=stranger, message=result)
    await told(record, f"<@{member['id']}> has opted out of having their pictures remixed")
    assert len(stack.hub.requests) == 1 and await used(stack, stranger) == 0


async def test_a_prompt_of_exactly_the_longest_length_is_accepted(stack):
    prompt = "p" * MAX_PROMPT
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png")
    record = await stack.discord.slash("edit", {"image": image, "prompt": prompt, "size": "64x64"})
    await told(record, "Done")
    assert stack.hub.requests[0].fields["prompt"] == prompt and await used(stack) == 1
