"""Forgetting a member and the retention rules, on both backends, down to the bytes of the database files."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.storage.database import Database, open_database
from services.storage.jobs import JobStore
from services.storage.privacy import (
    FORGET_INTERVAL_SECONDS,
    SCRUB_INTERVAL_SECONDS,
    USAGE_WINDOW_SECONDS,
    ForgetTooSoon,
    MemberBusy,
)
from services.storage.quota import Period, QuotaExceeded, QuotaStore, parse_quota
from tests.helpers import (
    DAY,
    GUILD,
    MEMBER,
    OTHER,
    OTHER_GUILD,
    Clock,
    file_bytes,
    finished_job,
    privacy_store,
    stored_picture,
)


async def spend(quota: QuotaStore, user_id: int, images: int, at: datetime, guild_id: int = GUILD) -> None:
    reservation = await quota.reserve(guild_id, user_id, [], images, now=at)
    await quota.settle(reservation.id, images)


async def test_record_counts_what_is_kept_in_every_server(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    first = await finished_job(jobs, MEMBER, "a cat", stored_picture(1, MEMBER))
    await finished_job(jobs, MEMBER, "a dog", stored_picture(2, MEMBER), guild_id=OTHER_GUILD)
    await finished_job(
        jobs,
        OTHER,
        "their remix of it",
        stored_picture(50 + first, MEMBER, message_id=900 + first),
        parent_job_id=first,
    )
    await jobs.set_remix_opt_out(MEMBER, True)
    await spend(QuotaStore(database, parse_quota("10/day")), MEMBER, 3, clock.at())

    record = await privacy_store(database, clock).record(MEMBER)
    assert (record.edits, record.prompts, record.servers) == (2, 2, 2)
    # Two uploads; two results made for the member, one of them also the source of the other's remix.
    assert (record.uploads, record.results) == (3, 2)
    assert (record.images_in_window, record.usage_rows, record.remix_opt_out) == (3, 1, True)
    assert record.oldest is not None and abs(record.oldest.timestamp() - clock.now) < 60

    nobody = await privacy_store(database, clock).record(999)
    assert (nobody.edits, nobody.uploads, nobody.results, nobody.usage_rows, nobody.remix_opt_out) == (
        0,
        0,
        0,
        0,
        False,
    )
    assert nobody.oldest is None


async def test_forget_deletes_prompts_and_pictures_but_the_quota_and_the_opt_out_still_hold(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    quota = QuotaStore(database, parse_quota("3/day"))
    mine = await finished_job(jobs, MEMBER, "forget-me-prompt-0451", stored_picture(1, MEMBER))
    elsewhere = await finished_job(
        jobs, MEMBER, "forget-me-prompt-0452", stored_picture(2, MEMBER), guild_id=OTHER_GUILD
    )
    built_on = await finished_job(
        jobs, OTHER, "a remix", stored_picture(50 + mine, MEMBER, message_id=900 + mine), parent_job_id=mine
    )
    unrelated = await finished_job(jobs, OTHER, "their own", stored_picture(3, OTHER))
    await jobs.set_remix_opt_out(MEMBER, True)
    await spend(quota, MEMBER, 2, clock.at())
    await spend(quota, MEMBER, 1, datetime.fromtimestamp(clock.now - USAGE_WINDOW_SECONDS - DAY, UTC))
    await spend(quota, OTHER, 1, clock.at())
    before = await file_bytes(database)
    assert b"forget-me-prompt-0451" in before and b"secret-1.png" in before  # the check below can fail

    forgotten = await privacy_store(database, clock).forget(MEMBER)

    assert (forgotten.edits, forgotten.prompts_in_rerolls, forgotten.usage_rows_kept) == (2, 0, 1)
    assert await jobs.get(mine) is None and await jobs.get(elsewhere) is None
    assert await jobs.find_by_result_message(900 + mine) is None
    assert await jobs.get(built_on) is None  # its source was the member's result: no longer on record
    assert (await jobs.get(unrelated)).prompt == "their own"  # type: ignore[union-attr]
    assert await jobs.remix_opt_out(MEMBER) is True  # consent outlives the forget (issue 17 item 17)
    record = await privacy_store(database, clock).record(MEMBER)
    assert (record.edits, record.uploads, record.results, record.remix_opt_out) == (0, 0, 0, True)
    # The usage of this window still counts: 2 of 3 used, so 2 more are refused and 1 fits.
    assert (await quota.explain(GUILD, MEMBER, [], now=clock.at())).used == 2
    with pytest.raises(QuotaExceeded):
        await quota.reserve(GUILD, MEMBER, [], 2, now=clock.at())
    # …but moderators' reports no longer name the member.
    report = await quota.usage_report(GUILD, days=2, now=clock.at())
    assert dict(report.top_users) == {OTHER: 1}

    after = await file_bytes(database)
    for secret in (b"forget-me-prompt-0451", b"forget-me-prompt-0452", b"secret-1.png", b"secret-2.png"):
        assert secret not in after
    assert b"their own" in after

    # Once the window has passed, the last rows go and the member starts afresh (but for the opt-out).
    clock.now += USAGE_WINDOW_SECONDS + 1
    purged = await privacy_store(database, clock).purge()
    assert purged.usage_rows >= 2
    assert await database.fetch_value("SELECT COUNT(*) FROM quota_usage WHERE user_id = ?", MEMBER) == 0
    await quota.reserve(GUILD, MEMBER, [], 3, now=clock.at())


async def test_forget_waits_for_an_edit_in_flight(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    job_id = await finished_job(jobs, MEMBER, "still here", stored_picture(1, MEMBER))
    await QuotaStore(database, parse_quota("3/day")).reserve(GUILD, MEMBER, [], 1, now=clock.at())
    with pytest.raises(MemberBusy):
        await privacy_store(database, clock).forget(MEMBER)
    assert (await jobs.get(job_id)).prompt == "still here"  # type: ignore[union-attr]


async def test_retention_forgets_a_departed_server_after_the_grace_days(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    quota = QuotaStore(database, parse_quota("100/day"))
    privacy = privacy_store(database, clock)
    kept = await finished_job(jobs, MEMBER, "in the server still joined", stored_picture(1, MEMBER))
    await spend(quota, MEMBER, 1, clock.at())
    await spend(quota, MEMBER, 1, clock.at(), guild_id=OTHER_GUILD)
    await quota.set_default(OTHER_GUILD, 5, Period.DAY)
    await finished_job(jobs, MEMBER, "left-server-prompt-3321", stored_picture(2, MEMBER), guild_id=OTHER_GUILD)
    await privacy.guild_left(OTHER_GUILD)
    assert (await privacy.purge()).anything is False  # nothing is old yet

    clock.now += 6 * DAY
    assert (await privacy.purge()).guilds == ()  # left 6 days ago; 7 are allowed
    assert b"left-server-prompt-3321" in await file_bytes(database)
    clock.now += 2 * DAY
    assert (await privacy.purge()).guilds == (OTHER_GUILD,)
    for table in ("jobs", "quota_usage", "quota_rules", "guild_departures"):
        assert await database.fetch_value(f"SELECT COUNT(*) FROM {table} WHERE guild_id = ?", OTHER_GUILD) == 0
    assert b"left-server-prompt-3321" not in await file_bytes(database)
    assert (await jobs.get(kept)).prompt == "in the server still joined"  # type: ignore[union-attr]
    assert await database.fetch_value("SELECT COUNT(*) FROM quota_usage WHERE guild_id = ?", GUILD) == 1
    assert (await privacy.purge()).anything is False  # a second run finds nothing


async def test_retention_expires_jobs_older_than_the_retention_days_and_usage_past_every_window(
    database: Database,
) -> None:
    clock, jobs = Clock(), JobStore(database)
    quota = QuotaStore(database, parse_quota("100/day"))
    privacy = privacy_store(database, clock)
    old = await finished_job(jobs, MEMBER, "expired-prompt-7781", stored_picture(1, MEMBER))
    recent = await finished_job(jobs, MEMBER, "recent", stored_picture(2, MEMBER))
    await spend(quota, MEMBER, 1, datetime.fromtimestamp(clock.now - USAGE_WINDOW_SECONDS - 60, UTC))
    await spend(quota, MEMBER, 1, datetime.fromtimestamp(clock.now - USAGE_WINDOW_SECONDS + 60, UTC))
    # Written by a run of the bot a month ago (JobStore stamps jobs with the real time).
    await database.execute("UPDATE jobs SET created_at = created_at - ? WHERE id = ?", 31 * DAY, old)
    assert b"expired-prompt-7781" in await file_bytes(database)

    purged = await privacy.purge()
    assert (purged.jobs_expired, purged.usage_rows, purged.guilds) == (1, 1, ())
    assert await jobs.get(old) is None  # its buttons: no longer on record
    assert await jobs.find_by_result_message(900 + old) is None
    row = await database.fetch_one("SELECT prompt, source_url, result_message_id, model FROM jobs WHERE id = ?", old)
    assert tuple(row) == ("", None, None, "m")  # type: ignore[arg-type]
    assert (await jobs.get(recent)).prompt == "recent"  # type: ignore[union-attr]
    assert b"expired-prompt-7781" not in await file_bytes(database)
    assert await database.fetch_value("SELECT COUNT(*) FROM quota_usage") == 1
    assert (await privacy.purge()).anything is False  # a second run finds nothing


async def test_returning_to_a_server_cancels_its_deletion(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    privacy = privacy_store(database, clock)
    job_id = await finished_job(jobs, MEMBER, "kept", stored_picture(1, MEMBER))
    await privacy.guild_left(GUILD)
    await privacy.guild_joined(GUILD)
    clock.now += 8 * DAY
    assert (await privacy.purge()).guilds == ()
    assert (await jobs.get(job_id)).prompt == "kept"  # type: ignore[union-attr]


async def test_a_server_the_bot_is_in_again_is_not_deleted_even_if_the_return_was_missed(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    privacy = privacy_store(database, clock)
    job_id = await finished_job(jobs, MEMBER, "kept", stored_picture(1, MEMBER))
    await privacy.guild_left(GUILD)  # then added back while the bot was offline: no join event
    clock.now += 8 * DAY
    assert (await privacy.purge(present_guilds=[GUILD])).guilds == ()
    assert await database.fetch_value("SELECT COUNT(*) FROM guild_departures") == 0
    assert (await jobs.get(job_id)).prompt == "kept"  # type: ignore[union-attr]


async def test_postgresql_keeps_no_statistics_of_prompts(postgres_url: str) -> None:
    async with open_database(postgres_url) as db:
        jobs = JobStore(db)
        for n in range(5):
            await finished_job(jobs, MEMBER, "a very common prompt", stored_picture(n, MEMBER))
        await db.execute("ANALYZE")
        columns = {r[0] for r in await db.fetch_all("SELECT attname FROM pg_stats WHERE tablename = 'jobs'")}
        assert "model" in columns and "prompt" not in columns


async def test_sqlite_overwrites_deleted_rows_and_the_file_scan_would_see_them_otherwise(tmp_path: Path) -> None:
    async with open_database(f"sqlite:///{tmp_path / 'retouch.db'}") as db:
        # Many builds (Debian's among them) default to on; Retouch sets it on every connection regardless.
        assert await db.fetch_value("PRAGMA secure_delete") == 1
        # The control: with it off, the forgotten prompt stays readable in the file after a forget.
        await db.execute("PRAGMA secure_delete = OFF")
        await finished_job(JobStore(db), MEMBER, "control-prompt-9911", stored_picture(1, MEMBER))
        await privacy_store(db, Clock()).forget(MEMBER)
        assert await db.fetch_value("SELECT COUNT(*) FROM jobs") == 0
        assert b"control-prompt-9911" in await file_bytes(db)


async def test_record_tells_edits_prompts_and_servers_apart(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    await finished_job(jobs, MEMBER, "a cat", stored_picture(1, MEMBER))
    await finished_job(jobs, MEMBER, "", stored_picture(2, MEMBER))  # a prompt already expired
    await finished_job(jobs, MEMBER, "a dog", stored_picture(3, MEMBER))
    await finished_job(jobs, MEMBER, "a bird", stored_picture(4, MEMBER), guild_id=OTHER_GUILD)
    record = await privacy_store(database, clock).record(MEMBER)
    assert (record.edits, record.prompts, record.servers) == (4, 3, 2)
    assert record.oldest is not None and record.oldest.tzinfo is UTC


# --- issue 17: what forgetting keeps, what it reaches, and what it costs ------------------------------


async def test_an_opt_out_survives_forgetting_and_an_allowed_member_leaves_nothing_behind(database: Database) -> None:
    """Item 17: the opt-out is consent, not data about the member; forgetting must not turn it into "allowed"."""
    clock, jobs = Clock(), JobStore(database)
    privacy = privacy_store(database, clock)
    await jobs.set_remix_opt_out(MEMBER, True)
    await jobs.set_remix_opt_out(OTHER, False)
    await privacy.forget(MEMBER)
    await privacy.forget(OTHER)
    assert await jobs.remix_opt_out(MEMBER) is True and await jobs.remix_opt_out(OTHER) is False
    # Once they may ask again, a row without an opt-out holds nothing worth keeping.
    clock.now += FORGET_INTERVAL_SECONDS + 1
    await privacy.purge()
    rows = await database.fetch_all("SELECT user_id, remix_opt_out FROM member_preferences ORDER BY user_id")
    assert [(row[0], bool(row[1])) for row in rows] == [(MEMBER, True)]


async def test_forget_blanks_the_prompt_another_member_rerolled_and_keeps_their_pictures(database: Database) -> None:
    """Item 18: a Reroll copies the prompt; forgetting its writer blanks it there too, down to the files."""
    clock, jobs = Clock(), JobStore(database)
    third = 9
    # The member's edit of a third member's upload, rerolled by another member, and that Reroll rerolled again.
    mine = await finished_job(jobs, MEMBER, "rerolled-words-8123", stored_picture(1, third))
    rerolled = await finished_job(jobs, OTHER, "rerolled-words-8123", stored_picture(1, third), parent_job_id=mine)
    again = await finished_job(jobs, third, "rerolled-words-8123", stored_picture(1, third), parent_job_id=rerolled)
    own = await finished_job(jobs, OTHER, "their own words", stored_picture(2, OTHER), parent_job_id=mine)
    authors = [(await jobs.get(i)).prompt_author_id for i in (mine, rerolled, again, own)]  # type: ignore[union-attr]
    assert authors == [None, MEMBER, MEMBER, None]  # None: the requester's own words
    assert b"rerolled-words-8123" in await file_bytes(database)  # so that the check below can fail

    forgotten = await privacy_store(database, clock).forget(MEMBER)

    assert forgotten.prompts_in_rerolls == 2
    for job_id in (rerolled, again):
        job = await jobs.get(job_id)
        assert job is not None and job.prompt == "" and job.prompt_author_id is None and len(job.results) == 1
    assert (await jobs.get(own)).prompt == "their own words"  # type: ignore[union-attr]
    assert b"rerolled-words-8123" not in await file_bytes(database)


async def relation_file(db: Database, table: str) -> int:
    """Which file holds the table now (PostgreSQL; a VACUUM FULL writes a new one)."""
    return int(await db.fetch_value("SELECT relfilenode FROM pg_class WHERE relname = ?", table))


async def test_forgetting_nothing_rewrites_no_table_and_forgetting_is_rate_limited(database: Database) -> None:
    """Item 19: only what a forget changed is scrubbed, and a member cannot have themself forgotten at will."""
    clock, jobs = Clock(), JobStore(database)
    privacy = privacy_store(database, clock)
    await finished_job(jobs, MEMBER, "a cat", stored_picture(1, MEMBER))
    rewritten = database.dialect == "postgresql"
    before = await relation_file(database, "jobs") if rewritten else 0

    await privacy.forget(OTHER)  # nothing on record
    assert await database.fetch_value("SELECT COUNT(*) FROM scrub_pending") == 0
    if rewritten:
        assert await relation_file(database, "jobs") == before

    await privacy.forget(MEMBER)  # the control: this one deletes, and its tables are scrubbed at once
    assert await database.fetch_value("SELECT COUNT(*) FROM scrub_pending") == 0
    if rewritten:
        assert await relation_file(database, "jobs") != before

    with pytest.raises(ForgetTooSoon) as refused:
        await privacy.forget(MEMBER)
    assert refused.value.next_allowed.timestamp() == pytest.approx(clock.now + FORGET_INTERVAL_SECONDS)
    with pytest.raises(ForgetTooSoon):
        await privacy.forget_allowed(MEMBER)
    clock.now += FORGET_INTERVAL_SECONDS
    await privacy.forget_allowed(MEMBER)


async def test_a_table_is_rewritten_at_most_once_in_the_interval_and_then_what_waited(database: Database) -> None:
    """Item 19: many members forgetting at once cost one rewrite per table per interval, and nothing is left."""
    clock, jobs = Clock(), JobStore(database)
    privacy = privacy_store(database, clock)
    await finished_job(jobs, MEMBER, "first-forgotten-1188", stored_picture(1, MEMBER))
    await finished_job(jobs, OTHER, "second-forgotten-2299", stored_picture(2, OTHER))
    await privacy.forget(MEMBER)
    await privacy.forget(OTHER)  # within the interval: marked, not rewritten yet (SQLite's checkpoint is cheap)
    pending = {row[0] for row in await database.fetch_all("SELECT table_name FROM scrub_pending")}
    if database.scrub_rewrites:
        assert pending == {"jobs", "job_pictures"}
        assert await privacy.scrub_due() == ()
        clock.now += SCRUB_INTERVAL_SECONDS
        assert set(await privacy.scrub_due()) == pending
    else:
        assert pending == set()
    assert await database.fetch_value("SELECT COUNT(*) FROM scrub_pending") == 0
    after = await file_bytes(database)
    assert b"first-forgotten-1188" not in after and b"second-forgotten-2299" not in after


async def test_a_scrub_never_waits_in_line_for_a_table_in_use_on_postgresql(postgres_url: str) -> None:
    """Item 19: a VACUUM FULL queued behind a long reader would hold up every edit behind it; it waits for later."""
    async with open_database(postgres_url) as database:
        clock, jobs = Clock(), JobStore(database)
        privacy = privacy_store(database, clock)
        await finished_job(jobs, MEMBER, "held-back-3377", stored_picture(1, MEMBER))
        before = await relation_file(database, "jobs")
        reader = await asyncpg.connect(postgres_url)
        try:
            async with reader.transaction():
                await reader.fetch("SELECT * FROM jobs")  # holds its share of the table until it ends
                # Under a minute's guard only so that a regression fails instead of hanging: it returns at once.
                await asyncio.wait_for(privacy.forget(MEMBER), 60)
                assert await relation_file(database, "jobs") == before
                assert await database.fetch_value("SELECT COUNT(*) FROM scrub_pending WHERE table_name = 'jobs'") == 1
                # Edits read and write the table meanwhile, as if no scrub had been asked for.
                await asyncio.wait_for(finished_job(jobs, OTHER, "an edit meanwhile", stored_picture(2, OTHER)), 60)
        finally:
            await reader.close()
        clock.now += SCRUB_INTERVAL_SECONDS
        assert "jobs" in await privacy.scrub_due()
        assert b"held-back-3377" not in await file_bytes(database)


async def test_a_departed_server_on_another_process_shard_is_left_to_that_process(database: Database) -> None:
    """Item 22: only the process serving a server's shard can tell whether the bot is back in it."""
    clock, jobs = Clock(), JobStore(database)
    privacy = privacy_store(database, clock)
    theirs = await finished_job(jobs, MEMBER, "on the other shard", stored_picture(1, MEMBER), guild_id=OTHER_GUILD)
    ours = await finished_job(jobs, MEMBER, "on this shard", stored_picture(2, MEMBER), guild_id=GUILD)
    await privacy.guild_left(OTHER_GUILD)
    await privacy.guild_left(GUILD)
    clock.now += 8 * DAY
    purged = await privacy.purge(present_guilds=[], serves=lambda guild_id: guild_id == GUILD)
    assert purged.guilds == (GUILD,)
    assert await jobs.get(ours) is None
    assert (await jobs.get(theirs)).prompt == "on the other shard"  # type: ignore[union-attr]
    # Its departure stays on record for the process that serves it to act on.
    assert await database.fetch_value("SELECT COUNT(*) FROM guild_departures WHERE guild_id = ?", OTHER_GUILD) == 1
