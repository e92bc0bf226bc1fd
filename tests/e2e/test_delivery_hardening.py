"""Issue 9 items 4, 5, 9, 10, 18, 19 and 20 end to end: what the bot does when Discord's rules bite.

Dead interaction tokens are left alone, channel messages fit the bot's own upload limit, links never
unfurl under the bot's name, audit entries survive escaping and a refusal, a failure after delivery
says what was charged, Delete stops a delivery, and long ephemeral lists are paginated or attached.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from emulators.discord import MIB, DiscordEmulator
from emulators.modelhub import Fault, ModelHubEmulator
from services.storage.quota import Period
from tests.harness import make_config, running_bot
from tests.helpers import button, moderator, picture, results_of, told, until, used, watch_commands
from tests.protocol import EPHEMERAL

LINK_PROMPT = "make it like https://picture.example/anything.png"


def photo(stack) -> dict:
    return picture(stack, 64, 64)[1]


def in_channel(stack, channel_id: int | None = None) -> list[dict]:
    """The bot's own channel messages (not interaction followups), in posting order."""
    channel_id = channel_id or stack.discord.channel_id
    return [
        m
        for _, m in sorted(stack.discord.messages.items())
        if int(m["channel_id"]) == channel_id and m.get("webhook_id") is None and m["author"]["bot"]
    ]


# ----------------------------------------------------------------------------- item 10: no unfurling


async def test_a_link_in_the_prompt_does_not_unfurl_in_the_result(stack):
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": LINK_PROMPT, "size": "64x64"})
    [result] = await results_of(record)
    assert "https://picture.example/anything.png" in result["content"]
    assert result["embeds"] == [], result["embeds"]


# ----------------------------------------------------------------------------- item 4: dead tokens


async def test_a_dead_token_is_not_used_again(stack):
    stack.hub.inject(Fault(delay=1))  # progress ticks (every 0.2 s in tests) after the token died
    finished = watch_commands(stack)
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "slow", "size": "64x64"})
    await until(lambda: stack.hub.requests, 10, "the edit to reach the Model Hub")
    stack.discord.advance(15 * 60 + 5)  # Discord now considers the interaction token dead
    # Everything the bot does for the command (delivery, a final edit) has happened once it returns.
    await until(lambda: record.id in finished, 20, "the /edit to finish")
    dead = [call for call in stack.discord.calls if record.token in call.path and call.status == 401]
    assert stack.discord.invalid_request_count >= len(dead)
    assert len(dead) <= 1, [f"{call.method} {call.path.replace(record.token, '<token>')}" for call in dead]
    [result] = [m for m in in_channel(stack) if m["files"]]
    assert f"<@{stack.discord.member['id']}>" in result["content"]
    assert await used(stack) == 1


class _Interaction(SimpleNamespace):
    """What InteractionReply reads of an interaction: its creation time and extras; edits are recorded."""

    async def edit_original_response(self, *, content: str) -> None:
        self.edits.append(content)


async def test_progress_stops_before_the_tokens_fifteen_minutes_run_out():
    from cogs.reply import InteractionReply
    from cogs.runner import progress_text
    from services.domain.editing import EditProgress

    def interaction(age: timedelta) -> _Interaction:
        locale = SimpleNamespace(value="en-US")
        return _Interaction(
            created_at=datetime.now(UTC) - age,
            extras={},
            edits=[],
            locale=locale,
            guild_locale=locale,
            user=SimpleNamespace(id=1),
            guild_id=2,
            channel_id=3,
        )

    young, old = interaction(timedelta(minutes=13)), interaction(timedelta(minutes=14, seconds=30))
    for shown in (old, young):
        await InteractionReply(shown).progress(progress_text(EditProgress("editing", 1, 5.0)))  # type: ignore[arg-type]
    # The lines go out in the background, the old token's first: once the young one's is in, the old one had its turn.
    await until(lambda: young.edits, what="the young token's progress line")
    assert young.edits == ["Editing 1 picture… 5 s"]
    assert old.edits == []


# ----------------------------------------------------------------------------- item 5: the bot's own limit


async def test_results_in_the_channel_fit_the_bots_own_upload_limit(stack):
    stack.hub.inject(Fault(delay=1, huge=(1024, 1024)))  # four noise pictures of about 3 MiB each
    nitro = 500 * MIB
    await stack.discord.slash("edit", {"image": photo(stack), "prompt": "big", "count": 4}, attachment_size_limit=nitro)
    await until(lambda: stack.hub.requests, 10, "the edit to reach the Model Hub")
    stack.discord.advance(15 * 60 + 5)  # the results must go to the channel

    def refused() -> bool:
        return any(call.path.endswith("/messages") and call.status == 413 for call in stack.discord.calls)

    await until(lambda: refused() or sum(len(m["files"]) for m in in_channel(stack)) == 4, 60, "the delivery")
    assert not refused()
    bots_limit = stack.discord.guild().upload_limit
    assert all(sum(len(f.data) for f in m["files"]) <= bots_limit for m in in_channel(stack))
    assert await used(stack) == 4


async def test_a_boosted_servers_channel_messages_use_its_larger_limit(tmp_path):
    async with DiscordEmulator() as discord, ModelHubEmulator() as hub:
        discord.guild().premium_tier = 2  # 50 MiB per message for the bot, announced at login
        config = make_config(discord, hub, f"sqlite:///{tmp_path / 'retouch.db'}")
        with discord.patch_discord():
            async with running_bot(config, discord):
                hub.inject(Fault(delay=1, huge=(1024, 1024)))  # four pictures of about 3 MiB: 12 MiB in all
                stack = SimpleNamespace(discord=discord)
                await discord.slash("edit", {"image": photo(stack), "prompt": "big", "count": 4})
                await until(lambda: hub.requests, 10, "the edit to reach the Model Hub")
                discord.advance(15 * 60 + 5)  # the results must go to the channel
                await until(lambda: sum(len(m["files"]) for m in in_channel(stack)) == 4, 60, "the delivery")
                assert [len(m["files"]) for m in in_channel(stack)] == [4]  # one message, not three of 10 MiB


# ----------------------------------------------------------------------------- item 9: audit entries


async def audited(stack, prompt: str) -> dict:
    """Turn the audit log on, run an edit with `prompt`, and return its audit entry."""
    audit_channel = stack.discord.other_channel_id
    await moderator(stack, "audit-log", {"channel": audit_channel}, group="retouch")
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": prompt, "size": "64x64"})
    await told(record)
    await until(lambda: in_channel(stack, audit_channel), 10, "the audit entry")
    [entry] = in_channel(stack, audit_channel)
    return entry


async def test_a_prompt_that_doubles_when_escaped_is_audited_whole(stack):
    prompt = "*_" * 500  # 1,000 characters, 2,000 once markdown-escaped
    entry = await audited(stack, prompt)
    assert len(entry["content"]) <= 2000
    assert f"<@{stack.discord.member['id']}>" in entry["content"]
    [prompt_file] = [f for f in entry["files"] if f.filename == "prompt.txt"]
    assert prompt_file.data.decode() == prompt
    assert {f.filename for f in entry["files"]} == {"input.png", "result.png", "prompt.txt"}


async def test_a_prompt_that_doubles_when_escaped_still_gets_its_pictures_captioned(stack):
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "*_" * 500, "size": "64x64"})
    [result] = await results_of(record)
    assert len(result["content"]) <= 2000 and result["content"].startswith("> \\*\\_")
    assert f"<@{stack.discord.member['id']}>" in result["content"]


async def test_an_audit_entry_refused_once_is_retried_not_dropped(stack):
    audit_channel = stack.discord.other_channel_id
    stack.discord.fail_next("POST", f"^/channels/{audit_channel}/messages$", 400)
    entry = await audited(stack, LINK_PROMPT)
    assert "anything.png" in entry["content"]
    assert entry["embeds"] == []  # item 10: the link in the prompt does not unfurl in the audit log either
    refusals = [c for c in stack.discord.calls if c.path == f"/channels/{audit_channel}/messages" and c.status == 400]
    assert len(refusals) == 1


# ----------------------------------------------------------------------------- item 18: failure after delivery


async def test_a_failure_after_the_pictures_were_posted_says_what_was_charged(stack):
    # Recording the results fails (a real SQLite error), after the message with the picture went out.
    with sqlite3.connect(stack.config.database_url.removeprefix("sqlite:///")) as db:
        db.execute(
            "CREATE TRIGGER no_results BEFORE INSERT ON job_pictures WHEN NEW.role = 'result'"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "fine", "size": "64x64"})
    said = await told(record, "was posted")
    assert "1 of 1 picture was posted and only that was charged" in said
    assert "Nothing was charged" not in said
    assert [m for m in record.followups if not m["flags"] & EPHEMERAL and m["files"]]
    assert await used(stack) == 1
    assert any("disk full" in line for line in stack.logs.lines)


# ----------------------------------------------------------------------------- item 19: Delete mid-delivery


async def test_delete_during_a_multi_message_delivery_stops_the_later_batches(stack):
    stack.hub.inject(Fault(huge=(1024, 1024)))  # four pictures of about 3 MiB: two messages under 10 MiB
    # Followups of one interaction share a bucket: the second message waits 3 s, time enough for Delete.
    stack.discord.set_rate_limit("POST", "/webhooks/{webhook_id}/{webhook_token}", 1, 3.0)
    record = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "big", "count": 4})
    await record.wait_for(lambda r: any(m["files"] for m in r.followups), timeout=30)
    [first] = [m for m in record.followups if m["files"]]
    assert "part 1/2" in first["content"]
    job_id = int(button(first, "Delete").rsplit(":", 1)[1])

    async def recorded() -> bool:
        job = await stack.bot.jobs.get(job_id)
        return job is not None and bool(job.results)

    # The first message is charged and on record: its Delete can find it.
    await until(recorded, 10, "the first message's pictures on record")
    deleting = await stack.discord.click(first, button(first, "Delete"))
    await told(deleting, "Deleted.")
    said = await told(record, "Done", timeout=30)
    assert "not posted or charged: the result was deleted" in said
    # The second message was on its way (waiting for its bucket) when Delete came: it is taken back.
    assert not [m for m in stack.discord.messages.values() if "part 2/2" in (m.get("content") or "")]
    assert int(first["id"]) not in stack.discord.messages
    assert await used(stack) == len(first["files"])


# ----------------------------------------------------------------------------- item 20: long lists


def everything(record) -> str:
    return "\n".join(record.texts())


async def test_a_long_blocklist_is_paginated_within_discords_limit(stack):
    phrases = [f"phrase-{n:03d}-" + "x" * 40 for n in range(60)]  # about 3,300 characters listed
    for phrase in phrases:
        await stack.bot.settings.add_blocked(stack.discord.guild_id, phrase)
    record = await stack.discord.slash(
        "retouch", {"action": "list"}, subcommand="blocklist", user=stack.discord.moderator
    )
    await record.wait_for(lambda r: all(p in everything(r) for p in phrases))
    assert len(record.texts()) >= 2 and all(len(text) <= 2000 for text in record.texts())
    assert all(m["flags"] & EPHEMERAL for m in record.followups)


async def test_a_very_long_list_comes_as_an_attached_text_file(stack):
    phrases = [f"phrase-{n:03d}-" + "x" * 80 for n in range(150)]  # about 14,000 characters
    for phrase in phrases:
        await stack.bot.settings.add_blocked(stack.discord.guild_id, phrase)
    record = await stack.discord.slash(
        "retouch", {"action": "list"}, subcommand="blocklist", user=stack.discord.moderator
    )
    await record.wait_for(lambda r: r.original is not None)
    message = record.original
    assert message["flags"] & EPHEMERAL
    assert len(message["content"]) <= 2000 and "retouch.txt" in message["content"]
    [text_file] = message["files"]
    assert text_file.filename == "retouch.txt"
    assert all(phrase in text_file.data.decode() for phrase in phrases)


async def test_settings_with_many_channels_and_the_refusal_naming_them_are_paginated(stack):
    guild_id = stack.discord.guild_id
    channels = [stack.discord.add_channel(f"room-{n}") for n in range(120)]  # about 2,600 characters of mentions
    for channel_id in channels:
        await stack.bot.settings.allow_channel(guild_id, channel_id)
    record = await stack.discord.slash("retouch", {}, subcommand="show", user=stack.discord.moderator)
    await record.wait_for(lambda r: all(f"<#{c}>" in everything(r) for c in channels))
    assert len(record.texts()) >= 2 and all(len(text) <= 2000 for text in record.texts())
    refused = await stack.discord.slash("edit", {"image": photo(stack), "prompt": "here?"})
    await refused.wait_for(lambda r: all(f"<#{c}>" in everything(r) for c in channels))
    assert "not enabled in this channel" in everything(refused)
    assert all(len(text) <= 2000 for text in refused.texts())
    assert await used(stack) == 0


async def test_quota_show_with_many_rules_is_paginated(stack):
    guild_id = stack.discord.guild_id
    members = [10**17 + n for n in range(100)]  # about 4,000 characters of rules
    for member_id in members:
        await stack.bot.quota.set_member_rule(guild_id, member_id, 5, Period.DAY)
    record = await stack.discord.slash("quota", {}, subcommand="show", user=stack.discord.moderator)
    await record.wait_for(lambda r: all(f"<@{m}>" in everything(r) for m in members))
    assert len(record.texts()) >= 2 and all(len(text) <= 2000 for text in record.texts())
