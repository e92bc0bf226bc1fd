"""Quotas and server settings end to end: moderators set them from Discord, members feel them."""

from __future__ import annotations

import io
import re

from PIL import Image

from emulators.modelhub import Fault
from tests.harness import running_bot
from tests.helpers import moderator, picture, told, uploaded
from tests.images import png_bytes
from tests.protocol import EPHEMERAL
from tests.stack import Stack, loopback_stack


async def usage(stack: Stack, user: dict | None = None) -> str:
    record = await stack.discord.slash("usage", {}, user=user)
    response = await record.wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    return response["data"]["content"]


async def edit(stack: Stack, **options) -> tuple[object, str]:
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine", **options})
    await record.wait_for(
        lambda r: any(
            "Done" in t or "left" in t or "Nothing was charged" in t or "must" in t or "not" in t for t in r.texts()
        ),
        timeout=15,
    )
    return record, "\n".join(record.texts())


async def test_limit_two_then_three_edits_refuses_the_third_with_what_is_left_and_when(stack):
    assert "Server default set to 2 images per day." in await moderator(stack, "default", {"limit": 2, "period": "day"})
    for _ in range(2):
        _, said = await edit(stack)
        assert "Done: 1 picture" in said
    record, said = await edit(stack)
    assert "You have 0 of 2 images left this day and asked for 1." in said
    assert re.search(r"The next one frees up <t:\d+:R>\.", said)
    assert record.followups == [] and len(stack.hub.requests) == 2
    assert "You have **0 of 2** images left this day (used 2)." in await usage(stack)


async def test_count_is_what_is_charged(stack):
    await moderator(stack, "default", {"limit": 5, "period": "hour"})
    _, said = await edit(stack, count=3)
    assert "Done: 3 pictures" in said
    assert "You have **2 of 5** images left this hour (used 3)." in await usage(stack)
    _, said = await edit(stack, count=3)
    assert "You have 2 of 5 images left this hour and asked for 3." in said


async def test_an_upstream_failure_leaves_usage_unchanged(stack):
    await moderator(stack, "default", {"limit": 4, "period": "day"})
    before = await usage(stack)
    stack.hub.inject(Fault(status=503, body="down"), times=10)
    _, said = await edit(stack, count=2)
    assert "unavailable" in said and "Nothing was charged" in said
    assert await usage(stack) == before
    assert "You have **4 of 4**" in before


async def test_a_member_is_refused_quota_commands(stack):
    record = await stack.discord.slash("quota", {"limit": 100, "period": "day"}, subcommand="default")
    response = await record.wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    assert "`/quota` is for moderators: it needs the Manage Server permission." in response["data"]["content"]
    assert "You have **1000 of 1000**" in await usage(stack)  # the operator default still applies
    assert int(stack.discord.commands["quota"]["default_member_permissions"]) == 0x20


async def test_rule_order_member_over_role_over_default_and_show_explains(stack):
    discord = stack.discord
    await moderator(stack, "default", {"limit": 1, "period": "day"})
    await moderator(stack, "role", {"role": discord.member_role_id, "limit": 6, "period": "day"})
    member = discord.add_member(name="artist", roles=[discord.member_role_id])
    assert "You have **6 of 6**" in await usage(stack, member)
    said = await moderator(stack, "show", {"member": member})
    assert f"the role <@&{discord.member_role_id}>, the most generous" in said
    await moderator(stack, "member", {"member": member, "limit": 3, "period": "week"})
    assert "You have **3 of 3** images left this week" in await usage(stack, member)
    await moderator(stack, "exempt", {"target": member})
    assert "No limit applies to you" in await usage(stack, member)
    await moderator(stack, "clear", {"target": member})
    assert "You have **6 of 6**" in await usage(stack, member)


async def test_budget_caps_everyone_and_reset_forgives(stack):
    await moderator(stack, "budget", {"limit": 2, "period": "day"})
    _, said = await edit(stack, count=2)
    assert "Done: 2 pictures" in said
    _, said = await edit(stack, count=1)
    assert "This server's image budget is used up: 0 of 2 images left this day" in said
    assert "Forgave 2 images" in await moderator(stack, "reset", {"member": stack.discord.member})


async def test_report_posts_a_chart_and_the_numbers(stack):
    await edit(stack, count=2)
    await edit(stack, count=1)
    record = await stack.discord.slash("quota", {"days": 3}, subcommand="report", user=stack.discord.moderator)
    await record.wait_for(lambda r: any("images** in the last 3 days" in t for t in r.texts()))
    said = "\n".join(record.texts())
    assert "**3 images** in the last 3 days." in said
    assert f"1. <@{stack.discord.member['id']}>: 3" in said
    chart = record.original["files"][0] if record.original.get("files") else None
    assert chart is not None and chart.filename == "usage.png"
    assert Image.open(io.BytesIO(chart.data)).size == (900, 420)


async def test_settings_and_usage_survive_a_restart(tmp_path):
    async with loopback_stack(tmp_path) as stack:
        await moderator(stack, "member", {"member": stack.discord.member, "limit": 5, "period": "day"})
        await moderator(stack, "max-count", {"count": 3}, group="retouch")
        await edit(stack, count=2)
        await stack.bot.close()
        async with running_bot(stack.config, stack.discord) as restarted:
            stack.bot = restarted
            assert "You have **3 of 5**" in await usage(stack)
            _record, said = await edit(stack, count=4)
            assert "`count` must be between 1 and 3; got 4." in said


async def test_disallowed_channel_is_refused(stack):
    said = await moderator(
        stack, "channel", {"channel": stack.discord.other_channel_id, "allowed": True}, group="retouch"
    )
    assert f"<#{stack.discord.other_channel_id}>" in said
    _record, said = await edit(stack)
    assert f"Retouch is not enabled in this channel; use <#{stack.discord.other_channel_id}>." in said
    assert stack.hub.requests == []


async def test_blocklisted_word_is_refused_without_repeating_it(stack):
    await moderator(stack, "blocklist", {"action": "add", "phrase": "Forbidden Fruit"}, group="retouch")
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "paint a FORBIDDEN   fruit tree"})
    said = await told(record, "`prompt`")
    assert said == "`prompt` contains a word or phrase this server does not allow." and record.ephemeral
    _, said = await edit(stack, prompt="forbiddenfruit is one word, allowed")
    assert "Done" in said


async def test_default_size_setting_changes_auto(stack):
    await moderator(stack, "default-size", {"long_side": 512}, group="retouch")
    source = png_bytes(200, 100)
    image = stack.discord.add_attachment(source, "wide.png", "image/png", width=200, height=100)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine"})
    await told(record)
    assert stack.hub.requests[0].fields["size"] == "512x256"
    assert Image.open(io.BytesIO(uploaded(record)[0].data)).size == (512, 256)


async def test_audit_log_gets_requester_prompt_previews_and_a_jump_link(stack):
    audit_channel = stack.discord.other_channel_id
    said = await moderator(stack, "audit-log", {"channel": audit_channel}, group="retouch")
    assert f"Audit log: <#{audit_channel}>" in said
    record, said = await edit(stack, prompt="audited change")
    assert "Done" in said
    [entry] = [
        m
        for m in stack.discord.messages.values()
        if int(m["channel_id"]) == audit_channel and "audited change" in (m.get("content") or "")
    ]
    assert f"<@{stack.discord.member['id']}>" in entry["content"]
    result_id = record.followups[0]["id"]
    assert f"/channels/{stack.discord.guild_id}/{stack.discord.channel_id}/{result_id}" in entry["content"]
    assert [a["filename"] for a in entry["attachments"]] == ["input.png", "result.png"]
    assert all(max(Image.open(io.BytesIO(f.data)).size) <= 256 for f in entry["files"])


async def test_simultaneous_edits_by_one_member_never_exceed_the_limit(stack):
    await moderator(stack, "default", {"limit": 2, "period": "day"})
    records = []
    for _ in range(5):
        _, image = picture(stack, 64, 64)
        records.append(await stack.discord.slash("edit", {"image": image, "prompt": "at once"}))
    for record in records:
        await record.wait_for(lambda r: any("Done" in t or "images left" in t for t in r.texts()), timeout=20)
    assert sum(len(uploaded(record)) for record in records) == 2
    assert sum(any("You have 0 of 2 images left" in t for t in r.texts()) for r in records) == 3
    assert "You have **0 of 2** images left this day (used 2)." in await usage(stack)


async def test_usage_shows_the_remix_consent_setting(stack):
    assert "Others may remix your pictures (`/remixing allow:False` to opt out)." in await usage(stack)
    record = await stack.discord.slash("remixing", {"allow": False})
    await record.wait_response()
    assert "Others may not remix your pictures (`/remixing allow:True` to change that)." in await usage(stack)


async def test_a_budget_is_removed_by_budget_with_neither_option(stack):
    await moderator(stack, "budget", {"limit": 1, "period": "day"})
    _, said = await edit(stack)
    assert "Done: 1 picture" in said
    _, said = await edit(stack)
    assert "This server's image budget is used up: 0 of 1 image left this day" in said
    said = await moderator(stack, "budget", {"limit": 3})
    assert (
        "`period` is missing: give both `limit` and `period` to set the server budget, or neither to remove it." in said
    )
    assert "Server budget: 1 image per day" in await moderator(stack, "show")  # the incomplete command changed nothing
    assert "Removed the server budget: only members' own limits apply now." in await moderator(stack, "budget")
    assert "Server budget: none" in await moderator(stack, "show")
    _, said = await edit(stack)
    assert "Done: 1 picture" in said
    assert "This server had no budget." in await moderator(stack, "budget")


def sample(stack: Stack, name: str) -> float | None:
    return stack.bot.metrics.registry.get_sample_value(name)


async def test_the_budget_counts_what_a_retried_call_may_have_cost_upstream(stack):
    # A 500 may come after the Model Hub made (and billed) the pictures; the retry is billed again.
    await moderator(stack, "budget", {"limit": 5, "period": "day"})
    stack.hub.inject(Fault(status=500))
    _, said = await edit(stack, count=2)
    assert "Done: 2 pictures" in said and len(stack.hub.requests) == 2
    shown = await usage(stack)
    assert "(used 2)" in shown  # the member pays for what was posted
    assert "The server budget has 1 of 5 images left this day." in shown  # the server's budget for what was billed
    # Asked of the Model Hub, carried back, posted: 4, 2, 2.
    assert sample(stack, "retouch_upstream_images_requested_total") == 4
    assert sample(stack, "retouch_upstream_images_returned_total") == 2
    assert sample(stack, "retouch_images_delivered_total") == 2


async def test_a_refused_request_costs_the_budget_nothing(stack):
    await moderator(stack, "budget", {"limit": 5, "period": "day"})
    stack.hub.inject(Fault(status=400, body={"error": {"message": "prompt is not allowed", "param": "prompt"}}))
    _, said = await edit(stack)
    assert "Nothing was charged" in said
    assert "The server budget has 5 of 5 images left this day." in await usage(stack)
    assert sample(stack, "retouch_upstream_images_requested_total") == 1
    assert sample(stack, "retouch_upstream_images_returned_total") == 0


async def test_a_timed_out_call_counts_against_the_budget_but_not_the_member(tmp_path):
    async with loopback_stack(tmp_path, upstream_deadline_seconds=2) as stack:
        await moderator(stack, "budget", {"limit": 5, "period": "day"})
        stack.hub.inject(Fault(delay=30))
        _, said = await edit(stack)
        assert "The Model Hub timed out" in said and "Nothing was charged" in said
        shown = await usage(stack)
        assert "(used 0)" in shown
        assert "The server budget has 4 of 5 images left this day." in shown
