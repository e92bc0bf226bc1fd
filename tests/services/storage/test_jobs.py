"""The jobs record on both backends: what a restart-proof button reads back."""

from __future__ import annotations

from datetime import UTC, datetime

from services.storage.database import Database
from services.storage.jobs import JobEntry, JobStore
from tests.helpers import GUILD, MEMBER, OTHER, OTHER_GUILD, Clock, new_job, privacy_store, stored_picture


async def test_a_job_and_its_pictures_read_back_whole(database: Database) -> None:
    jobs = JobStore(database)
    parent = await jobs.create(new_job(prompt="first", count=2))
    child = await jobs.create(
        new_job(
            user_id=OTHER,
            prompt="second",
            output_format="webp",
            source=stored_picture(2, message_id=900),
            mask=stored_picture(3),
            parent_job_id=parent,
        )
    )
    await jobs.add_results(child, [stored_picture(n, OTHER, message_id=901) for n in (4, 5)])
    await jobs.finish(child, delivered=2)

    job = await jobs.get(child)
    assert job is not None
    assert (job.prompt, job.output_format, job.parent_job_id, job.status) == ("second", "webp", parent, "done")
    assert job.source == stored_picture(2, message_id=900) and job.mask == stored_picture(3)
    assert [r.filename for r in job.results] == ["secret-4.png", "secret-5.png"]
    assert (await jobs.find_by_result_message(901)).id == child
    assert await jobs.find_by_result_message(12345) is None

    await jobs.finish(parent, delivered=0)
    assert (await jobs.get(parent)).status == "failed"
    await jobs.mark_deleted(child)
    assert (await jobs.get(child)).status == "deleted"


async def test_remix_opt_out_round_trips(database: Database) -> None:
    jobs = JobStore(database)
    assert await jobs.remix_opt_out(7) is False
    await jobs.set_remix_opt_out(7, True)
    assert await jobs.remix_opt_out(7) is True
    await jobs.set_remix_opt_out(7, False)
    assert await jobs.remix_opt_out(7) is False


async def at(database: Database, job_id: int, created_at: float) -> None:
    """Date the job (the store stamps `time.time()`): the history is ordered by this."""
    await database.execute("UPDATE jobs SET created_at = ? WHERE id = ?", created_at, job_id)


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_a_members_history_is_newest_first_with_what_each_edit_was_and_delivered(database: Database) -> None:
    jobs = JobStore(database)
    author = 9  # a member whose words MEMBER reused, and who then had them forgotten
    # Delivered in two messages: three results, the first of them in message 901.
    delivered = await jobs.create(new_job(prompt="first", count=3))
    await jobs.add_results(delivered, [stored_picture(n, message_id=901) for n in (4, 5)])
    await jobs.add_results(delivered, [stored_picture(6, message_id=902)])
    await jobs.finish(delivered, delivered=3)
    # Still running, in another server, shown to its requester alone, with a mask (an input, not a result).
    private = await jobs.create(
        new_job(guild_id=OTHER_GUILD, channel_id=6, prompt="second", count=2, mask=stored_picture(3), private=True)
    )
    # In a direct message: a Reroll of the author's words, which forgetting the author blanks; nothing delivered.
    borrowed = await jobs.create(new_job(user_id=author, guild_id=None, channel_id=7, prompt="their words"))
    rerolled = await jobs.create(
        new_job(guild_id=None, channel_id=7, prompt="their words", count=4, parent_job_id=borrowed)
    )
    await jobs.finish(rerolled, delivered=0)
    await privacy_store(database, Clock()).forget(author)
    # Its result message deleted since.
    deleted = await jobs.create(new_job(channel_id=8, prompt="fourth"))
    await jobs.add_results(deleted, [stored_picture(7, message_id=903)])
    await jobs.finish(deleted, delivered=1)
    await jobs.mark_deleted(deleted)
    others = await jobs.create(new_job(user_id=OTHER, prompt="not MEMBER's"))
    start = 1_700_000_000.25
    for job_id, offset in ((delivered, 10), (private, 20), (rerolled, 30), (deleted, 30), (others, 40)):
        await at(database, job_id, start + offset)

    entries = {
        delivered: JobEntry(delivered, GUILD, 5, moment(start + 10), "first", 3, "done", False, 901, 3),
        private: JobEntry(private, OTHER_GUILD, 6, moment(start + 20), "second", 2, "running", True, None, 0),
        rerolled: JobEntry(rerolled, None, 7, moment(start + 30), "", 4, "failed", False, None, 0),
        deleted: JobEntry(deleted, GUILD, 8, moment(start + 30), "fourth", 1, "deleted", False, 903, 1),
    }
    # Newest first; of two edits at the same moment, the later recorded first.
    newest_first = [entries[i] for i in (deleted, rerolled, private, delivered)]
    assert await jobs.recent(MEMBER, limit=10) == newest_first
    assert await jobs.recent(MEMBER, limit=4) == newest_first
    [others_entry] = await jobs.recent(OTHER, limit=10)
    assert (others_entry.id, others_entry.prompt) == (others, "not MEMBER's")
    assert await jobs.recent(author, limit=10) == []  # forgotten


async def test_the_history_pages_by_limit_and_offset(database: Database) -> None:
    jobs = JobStore(database)
    ids = [await jobs.create(new_job(prompt=f"edit {n}")) for n in range(5)]
    for n, job_id in enumerate(ids):
        await at(database, job_id, 1_000 + n)
    newest_first = ids[::-1]

    async def page(**kwargs: int) -> list[int]:
        return [entry.id for entry in await jobs.recent(MEMBER, **kwargs)]

    assert await page(limit=2) == newest_first[:2]  # the first page starts with the newest
    assert await page(limit=2, offset=0) == newest_first[:2]
    assert await page(limit=2, offset=2) == newest_first[2:4]
    assert await page(limit=2, offset=4) == newest_first[4:]
    assert await page(limit=2, offset=5) == []
    assert await page(limit=1, offset=1) == [newest_first[1]]
    assert await page(limit=5) == newest_first
    assert await page(limit=0) == []


async def test_the_history_in_one_server_leaves_out_the_others_and_direct_messages(database: Database) -> None:
    jobs = JobStore(database)
    here = [await jobs.create(new_job(prompt=f"here {n}")) for n in range(3)]
    there = await jobs.create(new_job(guild_id=OTHER_GUILD, prompt="there"))
    direct = await jobs.create(new_job(guild_id=None, prompt="in a direct message"))
    await jobs.create(new_job(user_id=OTHER, prompt="another member here"))
    for n, job_id in enumerate([*here, there, direct]):
        await at(database, job_id, 1_000 + n)

    async def ids(guild_id: int | None) -> list[int]:
        return [entry.id for entry in await jobs.recent(MEMBER, guild_id=guild_id, limit=10)]

    assert await ids(GUILD) == here[::-1]
    assert await ids(OTHER_GUILD) == [there]
    assert await ids(3) == []
    assert await ids(None) == [direct, there, *here[::-1]]  # every server, and direct messages
    assert [e.id for e in await jobs.recent(MEMBER, guild_id=GUILD, limit=2, offset=1)] == here[::-1][1:]
