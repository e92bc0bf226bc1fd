"""Forgetting a member and the retention rules, on both backends, down to the bytes of the database files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.storage.database import Database
from services.storage.jobs import JobStore
from services.storage.privacy import USAGE_WINDOW_SECONDS, MemberBusy
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


async def test_forget_deletes_prompts_pictures_and_preferences_but_the_quota_still_holds(database: Database) -> None:
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

    assert (forgotten.edits, forgotten.preferences, forgotten.usage_rows_kept) == (2, 1, 1)
    assert await jobs.get(mine) is None and await jobs.get(elsewhere) is None
    assert await jobs.find_by_result_message(900 + mine) is None
    assert await jobs.get(built_on) is None  # its source was the member's result: no longer on record
    assert (await jobs.get(unrelated)).prompt == "their own"  # type: ignore[union-attr]
    assert await jobs.remix_opt_out(MEMBER) is False
    record = await privacy_store(database, clock).record(MEMBER)
    assert (record.edits, record.uploads, record.results, record.remix_opt_out) == (0, 0, 0, False)
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

    # Once the window has passed, the last rows go and the member starts afresh.
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
    from services.storage.database import open_database

    async with open_database(postgres_url) as db:
        jobs = JobStore(db)
        for n in range(5):
            await finished_job(jobs, MEMBER, "a very common prompt", stored_picture(n, MEMBER))
        await db.execute("ANALYZE")
        columns = {r[0] for r in await db.fetch_all("SELECT attname FROM pg_stats WHERE tablename = 'jobs'")}
        assert "model" in columns and "prompt" not in columns


async def test_sqlite_overwrites_deleted_rows_and_the_file_scan_would_see_them_otherwise(tmp_path: Path) -> None:
    from services.storage.database import open_database

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
