"""Issue 22 end to end: Retouch through a user install (DMs, servers without the bot), the personal quota,
private results with working buttons, a forced ephemeral answer, and `/jobs` with Show."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.discord import EVERYONE_PERMISSIONS, MIB, InteractionRecord, Permission
from emulators.modelhub import Fault
from services.storage.quota import PERSONAL, parse_quota
from tests.helpers import button, labels_of, modal_of, moderator, picture, submit, told, until, used
from tests.protocol import EPHEMERAL
from tests.stack import Stack, assert_nothing_leaked, loopback_stack

MEMBER_COMMANDS = ("edit", "usage", "privacy", "remixing", "jobs", "Remix image", "Edit region")
FORCED = "This server shows apps it has not added only to the member who uses them, so only you can see the results."
CHANNEL_ROUTES = ("/channels/", "/guilds/")


def files_of(messages: list[dict]) -> list[bytes]:
    return [f.data for m in messages for f in m["files"]]


async def delivered(record: InteractionRecord) -> list[dict]:
    """The followups that carried pictures, once the member was told it is done."""
    await told(record, "Done")
    return [m for m in record.followups if m["files"]]


async def personal_used(stack: Stack, user: dict) -> int:
    return (await stack.bot.quota.explain(PERSONAL, int(user["id"]), ())).used


def channel_requests(stack: Stack, since: int) -> list[str]:
    return [f"{c.method} {c.path}" for c in stack.discord.calls[since:] if c.path.startswith(CHANNEL_ROUTES)]


async def test_commands_declare_their_installs_and_contexts(global_stack: Stack) -> None:
    commands = global_stack.discord.commands
    for name in MEMBER_COMMANDS:
        assert (commands[name]["integration_types"], commands[name]["contexts"]) == ([0, 1], [0, 1, 2]), name
    for name in ("quota", "retouch"):
        assert (commands[name]["integration_types"], commands[name]["contexts"]) == ([0], [0]), name


async def test_edit_in_a_dm_through_a_user_install_delivers_and_charges_the_personal_quota(tmp_path: Path) -> None:
    async with loopback_stack(tmp_path, dev_guild_id=None, personal_budget=parse_quota("50/day")) as stack:
        user = stack.discord.member
        dm = stack.discord.add_private_channel([user, stack.discord.other_member])
        since = len(stack.discord.calls)
        _, image = picture(stack, 64, 64)
        record = await stack.discord.slash(
            "edit", {"image": image, "prompt": "invert it", "size": "64x64"}, channel_id=dm, user_install=True
        )
        [result] = await delivered(record)
        assert not result["flags"] & EPHEMERAL and len(result["files"]) == 1
        assert await personal_used(stack, user) == 1
        assert await used(stack) == 0  # the server's quota is untouched
        assert channel_requests(stack, since) == []
        usage = await stack.discord.slash("usage", channel_id=dm, user_install=True)
        said = (await usage.wait_response())["data"]["content"]
        assert "You have **4 of 5** images left this day (used 1)." in said
        assert "All personal use together has 49 of 50 images left this day." in said
        assert_nothing_leaked(stack)


async def in_a_server_without_the_bot(stack: Stack, *, external_apps: bool = True) -> tuple[dict, int]:
    guild = stack.discord.add_guild(name="elsewhere", with_bot=False)
    user = stack.discord.add_member(name="visitor", guild_id=guild.id)
    channel = stack.discord.add_channel("chat", guild_id=guild.id)
    if not external_apps:
        # The server keeps apps it has not added private: @everyone lacks Use External Apps.
        everyone = EVERYONE_PERMISSIONS & ~Permission.USE_EXTERNAL_APPS
        stack.discord.set_role_permissions(guild.id, everyone, guild_id=guild.id)
    return user, channel


async def test_a_server_without_the_bot_gets_everything_through_the_interaction(global_stack: Stack) -> None:
    user, channel = await in_a_server_without_the_bot(global_stack)
    since = len(global_stack.discord.calls)
    _, image = picture(global_stack, 64, 64)
    record = await global_stack.discord.slash(
        "edit", {"image": image, "prompt": "invert it", "count": 2, "size": "64x64"},
        user=user, channel_id=channel, user_install=True,
    )  # fmt: skip
    results = await delivered(record)
    assert [len(m["files"]) for m in results] == [2] and not results[0]["flags"] & EPHEMERAL
    assert "Delete" not in labels_of(results[0])  # the bot could not delete them: no channel of its own here
    assert FORCED not in "\n".join(record.texts())
    assert channel_requests(global_stack, since) == []
    assert await personal_used(global_stack, user) == 2
    # Its buttons work there too, through their own interactions.
    reroll = await global_stack.discord.click(results[0], button(results[0], "Reroll"), user=user)
    assert len(files_of(await delivered(reroll))) == 2
    assert channel_requests(global_stack, since) == []
    assert await personal_used(global_stack, user) == 4


@pytest.mark.parametrize("count", [4, 10])
async def test_a_user_install_alone_gets_every_picture_within_its_5_followups(tmp_path: Path, count: int) -> None:
    # Noise pictures of about 0.75 MiB each, under a 1 MiB limit: each alone needs a message of its own.
    async with loopback_stack(tmp_path, dev_guild_id=None, personal_quota=parse_quota("50/day")) as stack:
        user, channel = await in_a_server_without_the_bot(stack)
        stack.hub.inject(Fault(huge=(512, 512)))
        _, image = picture(stack, 64, 64)
        record = await stack.discord.slash(
            "edit", {"image": image, "prompt": "noise", "count": count},
            user=user, channel_id=channel, user_install=True, attachment_size_limit=MIB,
        )  # fmt: skip
        said = await told(record, "Done", timeout=60)
        results = [m for m in record.followups if m["files"]]
        assert len(files_of(results)) == count  # every picture, each message within the limit
        assert all(sum(len(f.data) for f in m["files"]) <= MIB for m in results)
        assert len(results) == min(count, 5) and len(record.followups) <= 5  # the summary edits the original
        assert not [c for c in stack.discord.calls if c.refusal]
        assert await personal_used(stack, user) == count
        assert f"Split across {len(results)} messages" in said
        # Show (`/jobs`) sends them again through its own 5 followups, under a limit that takes one picture a message
        # (the ten above are about 230 kB each, the four about 770 kB).
        show_limit = 400 * 1024
        stack.discord.attachment_size_limit = show_limit
        listed = await stack.discord.slash("jobs", user=user, channel_id=channel, user_install=True)
        await listed.wait_response()
        assert listed.original is not None
        shown = await stack.discord.click(listed.original, button(listed.original, "Show 1"), user=user)
        await shown.wait_for(lambda r: len(files_of(r.followups)) == count, timeout=60)
        assert len(shown.followups) <= 5
        assert all(sum(len(f.data) for f in m["files"]) <= show_limit for m in shown.followups)
        assert not [c for c in stack.discord.calls if c.refusal]


async def test_a_forced_ephemeral_answer_is_told_once(global_stack: Stack) -> None:
    user, channel = await in_a_server_without_the_bot(global_stack, external_apps=False)
    _, image = picture(global_stack, 64, 64)
    record = await global_stack.discord.slash(
        "edit", {"image": image, "prompt": "invert it", "size": "64x64"},
        user=user, channel_id=channel, user_install=True,
    )  # fmt: skip
    assert record.forced_ephemeral
    [result] = await delivered(record)
    assert result["flags"] & EPHEMERAL
    assert sum(text.count(FORCED) for text in record.texts()) == 1
    assert record.texts()[-1].endswith(f"s. {FORCED}")  # with the summary


async def test_private_results_are_ephemeral_and_their_buttons_work(stack: Stack) -> None:
    audit = stack.discord.other_channel_id
    await moderator(stack, "audit-log", {"channel": audit}, group="retouch")
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash(
        "edit", {"image": image, "prompt": "invert it", "size": "64x64", "private": True}
    )
    [result] = await delivered(record)
    assert result["flags"] & EPHEMERAL
    assert "Delete" not in labels_of(result)
    await until(
        lambda: any(int(m["channel_id"]) == audit for m in stack.discord.messages.values()), 10, "the audit entry"
    )
    [entry] = [m for m in stack.discord.messages.values() if int(m["channel_id"]) == audit]
    assert "private (shown to the member only)" in entry["content"]
    # Reroll: new pictures, private again.
    reroll = await stack.discord.click(result, button(result, "Reroll"))
    [again] = await delivered(reroll)
    assert again["flags"] & EPHEMERAL
    # Remix: its modal, then private pictures.
    opened = await stack.discord.click(result, button(result, "Remix"))
    remixed = await submit(stack, await modal_of(opened), {"Prompt": "make it blue"}, message=result)
    [remix] = await delivered(remixed)
    assert remix["flags"] & EPHEMERAL
    # Region opens its panel; Zoom out and Pan open their modals.
    region = await stack.discord.click(result, button(result, "Region"))
    assert (await region.wait_response())["type"] in (4, 5)
    for label in ("Zoom out",):
        assert (await modal_of(await stack.discord.click(result, button(result, label))))["title"]
    [pan] = [c["custom_id"] for row in result["components"] for c in row["components"] if c.get("emoji")][:1]
    assert (await modal_of(await stack.discord.click(result, pan)))["title"]
    assert await used(stack) == 3
    assert not [m for m in stack.discord.messages.values() if m["files"] and not m["flags"] & EPHEMERAL and
                int(m["channel_id"]) == stack.discord.channel_id]  # fmt: skip


async def test_a_server_can_turn_private_results_off(stack: Stack) -> None:
    said = await moderator(stack, "private", {"results": "off"}, group="retouch")
    assert "Private results (`/edit … private:True`): off" in said
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "x", "size": "64x64", "private": True})
    assert await told(record, "private") == (
        "This server does not allow private results: run `/edit` without `private`. Nothing was charged."
    )
    assert record.ephemeral
    assert await used(stack) == 0


@pytest.mark.parametrize(
    ("locale", "header", "show", "shown"),
    [
        ("en-US", "**Your last edits**, newest first (page 1):", "Show 1", "Your edit of"),
        ("de", "**Deine letzten Bearbeitungen**, die neueste zuerst (Seite 1):", "Zeigen 1", "Deine Bearbeitung vom"),
    ],
)
async def test_jobs_lists_and_show_shows_again(stack: Stack, locale: str, header: str, show: str, shown: str) -> None:
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "invert it", "size": "64x64"})
    [result] = await delivered(record)
    listed = await stack.discord.slash("jobs", locale=locale)
    response = await listed.wait_response()
    assert response["data"]["flags"] & EPHEMERAL
    content = response["data"]["content"]
    assert content.startswith(header + "\n**1.** <t:")
    assert f"https://discord.com/channels/{stack.discord.guild_id}/{stack.discord.channel_id}/{result['id']}" in content
    assert "invert it" in content
    assert listed.original is not None
    clicked = await stack.discord.click(listed.original, button(listed.original, show), locale=locale)
    [again] = await delivered_show(clicked)
    assert again["flags"] & EPHEMERAL and again["content"].startswith(shown)
    assert files_of([again]) == files_of([result])
    # Once the results are deleted, Show says so.
    await stack.discord.click(result, button(result, "Delete"))
    await until(lambda: int(result["id"]) not in stack.discord.messages, 10, "the deletion")
    gone = await stack.discord.click(listed.original, button(listed.original, show), locale=locale)
    await gone.wait_for(lambda r: bool(r.texts()))
    assert gone.texts() != [] and "Show" not in gone.texts()[0]


async def delivered_show(record: InteractionRecord) -> list[dict]:
    await record.wait_for(lambda r: any(m["files"] for m in r.followups), timeout=20)
    return [m for m in record.followups if m["files"]]


async def test_moderators_see_a_members_jobs(stack: Stack) -> None:
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "invert it", "size": "64x64"})
    await delivered(record)
    shown = await stack.discord.slash(
        "quota", {"member": stack.discord.member["id"]}, subcommand="show", user=stack.discord.moderator
    )
    said = await told(shown, "Last edits")
    assert f"**Last edits of <@{stack.discord.member['id']}> in this server**, newest first (page 1):" in said
    assert "1 of 1 delivered" in said


async def test_without_a_channel_the_member_is_told_before_the_token_runs_out(tmp_path: Path) -> None:
    # The bot stops such an edit 2 s in instead of 13.5 minutes: the edit (10 s at the Model Hub) outlives that.
    async with loopback_stack(tmp_path, dev_guild_id=None, no_channel_deadline_seconds=2.0) as stack:
        stack.hub.inject(Fault(delay=10))
        user, channel = await in_a_server_without_the_bot(stack)
        _, image = picture(stack, 64, 64)
        record = await stack.discord.slash(
            "edit", {"image": image, "prompt": "slow", "size": "64x64"},
            user=user, channel_id=channel, user_install=True,
        )  # fmt: skip
        said = await told(record, "15 minutes")
        assert said.endswith(
            "Discord lets Retouch answer here for 15 minutes only, and there is no channel to post in instead, so"
            " the edit was stopped: 0 of 1 pictures were delivered and charged, the rest was not."
        )
        assert await personal_used(stack, user) == 0
        assert not [m for m in record.followups if m["files"]]
