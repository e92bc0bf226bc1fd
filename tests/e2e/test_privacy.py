"""`/privacy show` and `/privacy forget` end to end: what a member is told, and what is left afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

from emulators.modelhub import Fault
from services.storage.database import open_database
from tests.harness import running_bot
from tests.helpers import button, told, until
from tests.images import png_bytes
from tests.stack import Stack

EPHEMERAL = 64
NO_LONGER_ON_RECORD = "This result is no longer on record, so its buttons cannot do anything."


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
    assert "- 1 edit on record, 1 of them with the prompt you wrote" in content
    assert "- 1 reference to pictures you uploaded and 2 to results made for you" in content
    assert "- 2 images counting against your quota now (1 usage record)" in content
    assert "- Others remixing your pictures: not allowed (you opted out)" in content
    assert "prompts and picture references for 30 days" in content
    assert "usage counts for 30 days; everything of a server 7 days after Retouch leaves it" in content
    assert "**Sent to the IONOS AI Model Hub** (in Germany)" in content

    _, other = await privacy(stack, "show", user=stack.discord.other_member)
    assert "- 0 edits on record" in other["content"] and "pictures: allowed" in other["content"]


async def test_forget_after_confirming_leaves_no_prompt_and_the_quota_still_holds(stack):
    moderator = await stack.discord.slash(
        "quota", {"limit": 2, "period": "day"}, subcommand="default", user=stack.discord.moderator
    )
    await moderator.wait_response()
    record, _ = await edit(stack, "unique-e2e-prompt-5150", count=2)
    [result] = public_results(record)
    assert b"unique-e2e-prompt-5150" in await database_bytes(stack)  # so that the check below can fail

    asked, warning = await privacy(stack, "forget")
    assert "(1 edit, 3 picture references)" in warning["content"]
    assert "so that limits still hold" in warning["content"]
    confirmation = asked.original
    clicked = await stack.discord.click(confirmation, button(confirmation, "Forget me"))
    done = "Done: Retouch no longer keeps your prompts, picture references or preferences."
    await told(clicked, done)
    assert clicked.responses[0]["type"] == 6  # deferred: the warning itself is then replaced, buttons and all
    assert stack.discord.messages[int(confirmation["id"])]["content"] == done
    assert stack.discord.messages[int(confirmation["id"])]["components"] == []

    assert b"unique-e2e-prompt-5150" not in await database_bytes(stack)
    _, shown = await privacy(stack, "show")
    assert "- 0 edits on record, 0 of them with the prompt you wrote" in shown["content"]
    assert "- 2 images counting against your quota now" in shown["content"]

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
    assert "- 1 edit on record, 1 of them with the prompt you wrote" in shown["content"]


async def test_cancel_deletes_nothing(stack):
    await edit(stack, "keep this one")
    asked, _ = await privacy(stack, "forget")
    clicked = await stack.discord.click(asked.original, button(asked.original, "Cancel"))
    answer = await clicked.wait_response()
    assert answer["data"]["content"] == "Cancelled; nothing was deleted."
    _, shown = await privacy(stack, "show")
    assert "- 1 edit on record, 1 of them with the prompt you wrote" in shown["content"]


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
