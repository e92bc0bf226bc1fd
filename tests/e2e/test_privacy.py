"""`/privacy show` and `/privacy forget` end to end: what a member is told, and what is left afterwards."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from emulators.discord import shard_of
from emulators.modelhub import Fault
from services.storage.database import open_database
from services.storage.jobs import JobStore
from services.storage.privacy import FORGET_INTERVAL_SECONDS
from tests.harness import running_bot
from tests.helpers import (
    DAY,
    button,
    file_bytes,
    finished_job,
    modal_of,
    panel_of,
    redrawn,
    results_of,
    select_of,
    stored_picture,
    submit,
    told,
    until,
    used,
)
from tests.images import png_bytes
from tests.stack import Stack, assert_nothing_leaked, loopback_stack

EPHEMERAL = 64
NO_LONGER_ON_RECORD = "This result is no longer on record, so its buttons cannot do anything."
UNKNOWN_PANEL = (
    "I no longer know this panel's picture (I may have restarted); open **Edit region** on the message again."
)


async def edit(stack: Stack, prompt: str, *, count: int = 1, words: str = "Done"):
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": prompt, "size": "64x64", "count": count})
    return record, await told(record, words)


def public_results(record) -> list[dict]:
    return [m for m in record.followups if not m["flags"] & EPHEMERAL]


async def privacy(stack: Stack, subcommand: str, *, user: dict | None = None) -> tuple[object, dict]:
    record = await stack.discord.slash("privacy", {}, subcommand=subcommand, user=user)
    response = await record.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL
    return record, response["data"]


def _read(paths: list[Path]) -> bytes:
    return b"".join(p.read_bytes() for p in paths if p.exists())


async def database_bytes(stack: Stack) -> bytes:
    """The SQLite file and its write-ahead log, as they are on disk."""
    path = Path(stack.config.database_url.removeprefix("sqlite:///"))
    return await asyncio.to_thread(_read, [path, path.with_name(path.name + "-wal")])


async def test_show_lists_what_is_kept_with_its_real_counts(stack):
    await edit(stack, "make it blue", count=2)
    opt_out = await stack.discord.slash("remixing", {"allow": False})
    await opt_out.wait_response()

    _, shown = await privacy(stack, "show")
    content = shown["content"]
    assert "(1 so far)" in content
    assert "- 1 edit(s) on record, 1 of them with the prompt you wrote" in content
    assert "- 1 reference(s) to pictures you uploaded and 2 to results made for you" in content
    assert "- 2 image(s) counting against your quota now (1 usage record(s))" in content
    assert "- Others remixing your pictures: not allowed (you opted out)" in content
    assert "prompts and picture references for 30 days" in content
    assert "usage counts for 30 days; everything of a server 7 days after Retouch leaves it" in content
    assert "**Sent to the IONOS AI Model Hub** (in Germany)" in content

    _, other = await privacy(stack, "show", user=stack.discord.other_member)
    assert "- 0 edit(s) on record" in other["content"] and "pictures: allowed" in other["content"]


async def test_forget_after_confirming_leaves_no_prompt_and_the_quota_still_holds(stack):
    moderator = await stack.discord.slash(
        "quota", {"limit": 2, "period": "day"}, subcommand="default", user=stack.discord.moderator
    )
    await moderator.wait_response()
    record, _ = await edit(stack, "unique-e2e-prompt-5150", count=2)
    [result] = public_results(record)
    assert b"unique-e2e-prompt-5150" in await database_bytes(stack)  # so that the check below can fail

    asked, warning = await privacy(stack, "forget")
    assert "(1 edit(s), 3 picture reference(s))" in warning["content"]
    assert "so that limits still hold" in warning["content"]
    confirmation = asked.original
    clicked = await stack.discord.click(confirmation, button(confirmation, "Forget me"))
    done = (
        "Done: Retouch no longer keeps your prompts or picture references. Your remixing choice stays, and the "
        "entries moderators' audit-log channels received stay with them."
    )
    await told(clicked, done)
    assert clicked.responses[0]["type"] == 6  # deferred: the warning itself is then replaced, buttons and all
    assert stack.discord.messages[int(confirmation["id"])]["content"] == done
    assert stack.discord.messages[int(confirmation["id"])]["components"] == []

    assert b"unique-e2e-prompt-5150" not in await database_bytes(stack)
    _, shown = await privacy(stack, "show")
    assert "- 0 edit(s) on record, 0 of them with the prompt you wrote" in shown["content"]
    assert "- 2 image(s) counting against your quota now" in shown["content"]

    reroll = await stack.discord.click(result, button(result, "Reroll"))
    assert NO_LONGER_ON_RECORD in await told(reroll, NO_LONGER_ON_RECORD)
    _, refused = await edit(stack, "one more", words="images left")
    assert "You have 0 of 2 images left this day and asked for 1." in refused
    assert len(stack.hub.requests) == 1


async def test_forget_is_refused_while_an_edit_runs_and_deletes_nothing(stack):
    stack.hub.inject(Fault(delay=2))
    image = stack.discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
    running = await stack.discord.slash("edit", {"image": image, "prompt": "slow one", "size": "64x64"})
    pending = "SELECT COUNT(*) FROM quota_usage WHERE status = 'pending'"
    await until(lambda: stack.bot.database.fetch_value(pending), 10, "the edit's reservation")
    asked, _ = await privacy(stack, "forget")
    clicked = await stack.discord.click(asked.original, button(asked.original, "Forget me"))
    busy = "One of your edits is still running; wait until it has finished, then ask again. Nothing was deleted."
    await told(clicked, busy)
    await told(running, "Done")
    _, shown = await privacy(stack, "show")
    assert "- 1 edit(s) on record, 1 of them with the prompt you wrote" in shown["content"]


async def test_cancel_deletes_nothing(stack):
    await edit(stack, "keep this one")
    asked, _ = await privacy(stack, "forget")
    clicked = await stack.discord.click(asked.original, button(asked.original, "Cancel"))
    answer = await clicked.wait_response()
    assert answer["data"]["content"] == "Cancelled; nothing was deleted."
    _, shown = await privacy(stack, "show")
    assert "- 1 edit(s) on record, 1 of them with the prompt you wrote" in shown["content"]


async def test_leaving_a_server_schedules_its_deletion_and_returning_cancels_it(stack):
    guild = stack.bot.get_guild(stack.discord.guild_id)
    stack.bot.dispatch("guild_remove", guild)
    departures = "SELECT COUNT(*) FROM guild_departures WHERE guild_id = ?"

    async def scheduled() -> int:
        return await stack.bot.database.fetch_value(departures, guild.id)

    await until(scheduled, 5, "the departure on record")
    assert await scheduled() == 1
    assert stack.bot.privacy.forget_guild_after_days == 7
    stack.bot.dispatch("guild_join", guild)

    async def cancelled() -> bool:
        return not await scheduled()

    await until(cancelled, 5, "the departure to be cancelled")
    assert await scheduled() == 0


async def test_the_retention_task_expires_an_old_result_when_the_bot_starts(stack):
    record, _ = await edit(stack, "expiring-e2e-prompt-6262")
    [result] = public_results(record)
    await stack.bot.wait_until_ready()  # closing mid-start-up would leave its ready event unhandled
    await stack.bot.close()
    # As if the edit had been made 31 days ago (RETENTION_DAYS is 30).
    async with open_database(stack.config.database_url) as db:
        await db.execute("UPDATE jobs SET created_at = created_at - ?", 31 * 86_400)
    async with running_bot(stack.config, stack.discord) as restarted:
        stack.bot = restarted
        expired = "SELECT COUNT(*) FROM jobs WHERE prompt = ''"

        async def scrubbed() -> bool:
            # The first run starts once the bot is connected, and ends with the scrub.
            gone = b"expiring-e2e" not in await database_bytes(stack)
            return gone and bool(await restarted.database.fetch_value(expired))

        await until(scrubbed, 10, "the retention run")
        assert await restarted.database.fetch_value(expired) == 1
        assert b"expiring-e2e-prompt-6262" not in await database_bytes(stack)
        reroll = await stack.discord.click(result, button(result, "Reroll"))
        assert NO_LONGER_ON_RECORD in await told(reroll, NO_LONGER_ON_RECORD)


async def forget_me(stack: Stack, user: dict | None = None) -> str:
    """`/privacy forget` and Forget me: what the member was told in the end."""
    asked, _ = await privacy(stack, "forget", user=user)
    clicked = await stack.discord.click(asked.original, button(asked.original, "Forget me"), user=user)
    return await told(clicked, "Done")


# --- issue 17: what forgetting keeps and what it reaches -------------------------------------------


async def test_an_opt_out_still_protects_the_members_pictures_after_forgetting(stack):
    """Item 17: forgetting must not turn an opted-out member into "remixing allowed"."""
    member, stranger = stack.discord.member, stack.discord.other_member
    opt_out = await stack.discord.slash("remixing", {"allow": False}, user=member)
    await opt_out.wait_response()
    await forget_me(stack, member)

    _, shown = await privacy(stack, "show", user=member)
    assert "- Others remixing your pictures: not allowed (you opted out)" in shown["content"]
    attachment = stack.discord.add_attachment(png_bytes(64, 64), "mine.png", "image/png", width=64, height=64)
    message = stack.discord.add_message("my picture", user=member, attachments=[attachment])
    menu = await stack.discord.message_command("Remix image", message, user=stranger)
    refused = (await menu.wait_response())["data"]
    assert refused["flags"] & EPHEMERAL
    assert f"<@{member['id']}> has opted out of having their pictures remixed" in refused["content"]
    assert stack.hub.requests == []


async def test_a_forgotten_members_prompt_leaves_other_members_rerolls(stack):
    """Item 18: a Reroll copied the prompt; forgetting its writer takes it out of the Reroll too."""
    member, clicker = stack.discord.member, stack.discord.other_member
    third = stack.discord.add_member(name="third")
    # The member's own upload, rerolled by another member.
    own, _ = await edit(stack, "own-upload-words-5562")
    [own_result] = public_results(own)
    [rerolled_own] = await results_of(await stack.discord.click(own_result, button(own_result, "Reroll"), user=clicker))
    # The member's Remix of a third member's result, rerolled by another member: its pictures are not the member's.
    upload = stack.discord.add_attachment(png_bytes(64, 64), "t.png", "image/png")
    third_edit = await stack.discord.slash("edit", {"image": upload, "prompt": "x", "size": "64x64"}, user=third)
    [third_result] = await results_of(third_edit)
    modal = await modal_of(await stack.discord.click(third_result, button(third_result, "Remix"), user=member))
    remix = await submit(stack, modal, {"Prompt": "remix-words-4471"}, user=member, message=third_result)
    [remixed] = await results_of(remix)
    [rerolled] = await results_of(await stack.discord.click(remixed, button(remixed, "Reroll"), user=clicker))
    assert stack.hub.requests[-1].fields["prompt"] == "remix-words-4471"
    # A Remix whose form kept the prompt it was prefilled with copies the words as well.
    modal = await modal_of(await stack.discord.click(remixed, button(remixed, "Remix"), user=clicker))
    await results_of(await submit(stack, modal, {}, user=clicker, message=remixed))
    assert stack.hub.requests[-1].fields["prompt"] == "remix-words-4471"
    before = await database_bytes(stack)
    assert b"remix-words-4471" in before and b"own-upload-words-5562" in before  # the checks below can fail

    await forget_me(stack, member)

    after = await database_bytes(stack)
    assert b"remix-words-4471" not in after and b"own-upload-words-5562" not in after
    requests, spent = len(stack.hub.requests), await used(stack, clicker)
    # Built on the member's upload: no longer on record. Built on the third member's: no prompt to reroll.
    gone = await stack.discord.click(rerolled_own, button(rerolled_own, "Reroll"), user=clicker)
    assert NO_LONGER_ON_RECORD in await told(gone, NO_LONGER_ON_RECORD)
    blank = await stack.discord.click(rerolled, button(rerolled, "Reroll"), user=clicker)
    words = (
        "The prompt of this result was deleted at the request of the member who wrote it, so it cannot be "
        "rerolled. Use Remix to give it a prompt of your own."
    )
    answer = (await blank.wait_response())["data"]
    assert answer["content"] == words and answer["flags"] & EPHEMERAL
    assert len(stack.hub.requests) == requests and await used(stack, clicker) == spent  # nothing spent
    # The clicker's own result is still theirs to remix with words of their own.
    modal = await modal_of(await stack.discord.click(rerolled, button(rerolled, "Remix"), user=clicker))
    remix = await submit(stack, modal, {"Prompt": "the clicker's words"}, user=clicker, message=rerolled)
    await results_of(remix)
    assert stack.hub.requests[-1].fields["prompt"] == "the clicker's words"


async def test_forgetting_again_within_the_hour_is_refused_and_deletes_nothing(stack):
    """Item 19: a member cannot have themself forgotten at will (each forget may rewrite tables)."""
    second, _ = await privacy(stack, "forget")  # a second confirmation, opened before the first is used
    await forget_me(stack)
    forgot_at = await stack.bot.database.fetch_value(
        "SELECT forgot_at FROM member_preferences WHERE user_id = ?", int(stack.discord.member["id"])
    )
    assert abs(forgot_at - time.time()) < 60
    await edit(stack, "kept after a refused forget")
    record = await stack.discord.slash("privacy", {}, subcommand="forget")
    refused = (await record.wait_response())["data"]
    assert refused["flags"] & EPHEMERAL and not refused.get("components")
    assert refused["content"] == (
        f"You asked Retouch to forget you <t:{int(forgot_at)}:R>; you can ask again "
        f"<t:{int(forgot_at + FORGET_INTERVAL_SECONDS)}:R>. Nothing was deleted."
    )
    # The confirmation opened before is refused alike.
    late = await stack.discord.click(second.original, button(second.original, "Forget me"))
    assert refused["content"] in await told(late, "Nothing was deleted.")
    _, shown = await privacy(stack, "show")
    assert "- 1 edit(s) on record, 1 of them with the prompt you wrote" in shown["content"]


async def relation_files(stack: Stack) -> dict[str, int]:
    tables = ("jobs", "job_pictures", "job_inputs", "member_preferences")
    rows = await stack.bot.database.fetch_all(
        "SELECT relname, relfilenode FROM pg_class WHERE relname IN (?, ?, ?, ?)", *tables
    )
    return {row[0]: int(row[1]) for row in rows}


async def test_forgetting_nothing_on_postgresql_rewrites_no_table(tmp_path, postgres_url):
    """Item 19: a forget that deleted nothing ran VACUUM FULL on four tables, blocking every edit meanwhile."""
    async with loopback_stack(tmp_path, database_url=postgres_url) as stack:
        before = await relation_files(stack)
        assert len(before) == 4
        await forget_me(stack, stack.discord.other_member)  # nothing on record
        assert await relation_files(stack) == before
        # The control: a forget that deletes rewrites what it changed, and the prompt is gone from the files.
        await edit(stack, "postgres-forgotten-9034")
        await forget_me(stack)
        after = await relation_files(stack)
        assert after["jobs"] != before["jobs"] and after["member_preferences"] == before["member_preferences"]
        assert b"postgres-forgotten-9034" not in await file_bytes(stack.bot.database)
        assert_nothing_leaked(stack)


# --- issue 17: what the bot holds in memory, and what moderators' logs keep ----------------------------


async def test_forgetting_drops_the_members_pictures_from_memory_and_says_audit_entries_stay(stack):
    """Item 20: a region panel on the member's upload stops working once they are forgotten."""
    member, other = stack.discord.member, stack.discord.other_member
    attachment = stack.discord.add_attachment(png_bytes(64, 64), "cat.png", "image/png", width=64, height=64)
    message = stack.discord.add_message("my cat", user=member, attachments=[attachment])
    panel = await panel_of(await stack.discord.message_command("Edit region", message, user=other))
    panel = await redrawn(
        stack, panel, await stack.discord.click(panel, select_of(panel)["custom_id"], values=["top"], user=other)
    )

    asked, warning = await privacy(stack, "forget")
    assert (
        "Entries already posted in a server's audit-log channel (with your prompt and small previews) are its "
        "moderators' log and stay: ask them if you want those removed." in warning["content"]
    )
    assert "you can ask again only after 1 hour" in warning["content"]
    clicked = await stack.discord.click(asked.original, button(asked.original, "Forget me"))
    await told(clicked, "Done")

    record = await stack.discord.click(panel, select_of(panel)["custom_id"], values=["bottom"], user=other)
    assert UNKNOWN_PANEL in await told(record, UNKNOWN_PANEL)


async def test_a_panel_in_another_process_forgets_the_members_picture_too(stack):
    """Item 20: the forget ran in another process (another shard's): this one's memory must not outlive it."""
    member, other = stack.discord.member, stack.discord.other_member
    attachment = stack.discord.add_attachment(png_bytes(64, 64), "cat.png", "image/png", width=64, height=64)
    message = stack.discord.add_message("my cat", user=member, attachments=[attachment])
    panel = await panel_of(await stack.discord.message_command("Edit region", message, user=other))
    # What another process does on the shared database when the member confirms there.
    await stack.bot.privacy.forget(int(member["id"]))
    record = await stack.discord.click(panel, select_of(panel)["custom_id"], values=["top"], user=other)
    assert UNKNOWN_PANEL in await told(record, UNKNOWN_PANEL)


# --- issue 17: retention across shards --------------------------------------------------------------


async def test_a_departed_server_on_another_process_shard_keeps_its_data(tmp_path, database_url):
    """Item 22: a process deleted the data of a server on another process's shard that the bot was back in."""
    async with loopback_stack(tmp_path, database_url=database_url) as stack:
        home = shard_of(stack.discord.guild_id, 2)
        away = next(g for g in (stack.discord.add_guild() for _ in range(64)) if shard_of(g.id, 2) != home)
        gone = stack.discord.guild_id + (2 << 22)  # on the same shard as the home guild; the bot is not in it
        await stack.bot.wait_until_ready()  # closing mid-start-up would leave its ready event unhandled
        await stack.bot.close()
        async with open_database(database_url) as db:
            jobs = JobStore(db)
            away_job = await finished_job(jobs, 7, "away-guild-words", stored_picture(1), guild_id=away.id)
            gone_job = await finished_job(jobs, 7, "gone-guild-words", stored_picture(2), guild_id=gone)
            for guild_id in (away.id, gone):  # left eight days ago; the away one has been added back since
                await db.execute(
                    "INSERT INTO guild_departures (guild_id, left_at) VALUES (?, ?)", guild_id, time.time() - 8 * DAY
                )
        # Restarted as the process of the home guild's shard only: the away guild is another process's.
        sharded = dataclasses.replace(stack.config, shard_count=2, shard_ids=(home,))
        async with running_bot(sharded, stack.discord) as restarted:
            stack.bot = restarted
            assert restarted.get_guild(away.id) is None

            async def purged() -> bool:
                return await restarted.jobs.get(gone_job) is None

            await until(purged, 10, "the retention run at start-up")
            job = await restarted.jobs.get(away_job)
            assert job is not None and job.prompt == "away-guild-words"
            departures = "SELECT COUNT(*) FROM guild_departures WHERE guild_id = ?"
            assert await restarted.database.fetch_value(departures, away.id) == 1  # left to its own process
        assert_nothing_leaked(stack)
