"""Forgetting a member and the retention rules, on both backends, down to the bytes of the database files."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.database import Database
from services.jobs import JobStore, NewJob
from services.pictures import Picture
from services.privacy import USAGE_WINDOW_SECONDS, MemberBusy, PrivacyStore
from services.quota import Period, QuotaExceeded, QuotaStore, parse_quota

DAY = 86_400
MEMBER, OTHER = 7, 8
GUILD, OTHER_GUILD = 1, 2


class Clock:
    """The time a PrivacyStore sees; tests move it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def ref(n: int, author_id: int, *, message_id: int | None = None) -> Picture:
    return Picture(
        url=f"http://127.0.0.1/cdn/attachments/5/{100 + n}/secret-{n}.png?ex=1",
        filename=f"secret-{n}.png",
        content_type="image/png",
        size=1000,
        width=64,
        height=64,
        attachment_id=100 + n,
        channel_id=5,
        message_id=message_id,
        author_id=author_id,
    )


async def edit(
    jobs: JobStore, user_id: int, prompt: str, source: Picture, *, guild_id: int = GUILD, parent: int | None = None
) -> int:
    """A finished job with one result posted in message 900 + its id."""
    job_id = await jobs.create(
        NewJob(
            guild_id=guild_id,
            channel_id=5,
            user_id=user_id,
            prompt=prompt,
            model="m",
            size="64x64",
            count=1,
            output_format="png",
            source=source,
            parent_job_id=parent,
        )
    )
    await jobs.add_results(job_id, [ref(50 + job_id, user_id, message_id=900 + job_id)])
    await jobs.finish(job_id, delivered=1)
    return job_id


async def spend(quota: QuotaStore, user_id: int, images: int, at: datetime, guild_id: int = GUILD) -> None:
    reservation = await quota.reserve(guild_id, user_id, [], images, now=at)
    await quota.settle(reservation.id, images)


def store(db: Database, clock: Clock) -> PrivacyStore:
    return PrivacyStore(db, retention_days=30, forget_guild_after_days=7, clock=clock)


def _read_all(paths: list[Path]) -> bytes:
    return b"".join(p.read_bytes() for p in paths if p.is_file())


async def file_bytes(db: Database) -> bytes:
    """Everything the database keeps on disk for this database (PostgreSQL: after a checkpoint)."""
    if db.dialect == "sqlite":
        path = Path(db.path)  # type: ignore[attr-defined]
        return await asyncio.to_thread(_read_all, [path, path.with_name(path.name + "-wal")])
    await db.execute("CHECKPOINT")  # shared buffers to the relation files
    data_directory = await db.fetch_value("SHOW data_directory")
    oid = await db.fetch_value("SELECT oid FROM pg_database WHERE datname = current_database()")
    directory = Path(data_directory, "base", str(oid))
    try:
        # Every relation of this database: tables, TOAST, indexes and the system catalogs (pg_statistic).
        return await asyncio.to_thread(lambda: _read_all(sorted(directory.iterdir())))
    except PermissionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the test process cannot read {directory}; run it as the server's user or root")


async def test_record_counts_what_is_kept_in_every_server(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    first = await edit(jobs, MEMBER, "a cat", ref(1, MEMBER))
    await edit(jobs, MEMBER, "a dog", ref(2, MEMBER), guild_id=OTHER_GUILD)
    await edit(jobs, OTHER, "their remix of it", ref(50 + first, MEMBER, message_id=900 + first), parent=first)
    await jobs.set_remix_opt_out(MEMBER, True)
    await spend(QuotaStore(database, parse_quota("10/day")), MEMBER, 3, clock.at())

    record = await store(database, clock).record(MEMBER)
    assert (record.edits, record.prompts, record.servers) == (2, 2, 2)
    # Two uploads; two results made for the member, one of them also the source of the other's remix.
    assert (record.uploads, record.results) == (3, 2)
    assert (record.images_in_window, record.usage_rows, record.remix_opt_out) == (3, 1, True)
    assert record.oldest is not None and abs(record.oldest.timestamp() - clock.now) < 60

    nobody = await store(database, clock).record(999)
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
    mine = await edit(jobs, MEMBER, "forget-me-prompt-0451", ref(1, MEMBER))
    elsewhere = await edit(jobs, MEMBER, "forget-me-prompt-0452", ref(2, MEMBER), guild_id=OTHER_GUILD)
    built_on = await edit(jobs, OTHER, "a remix", ref(50 + mine, MEMBER, message_id=900 + mine), parent=mine)
    unrelated = await edit(jobs, OTHER, "their own", ref(3, OTHER))
    await jobs.set_remix_opt_out(MEMBER, True)
    await spend(quota, MEMBER, 2, clock.at())
    await spend(quota, MEMBER, 1, datetime.fromtimestamp(clock.now - USAGE_WINDOW_SECONDS - DAY, UTC))
    await spend(quota, OTHER, 1, clock.at())
    before = await file_bytes(database)
    assert b"forget-me-prompt-0451" in before and b"secret-1.png" in before  # the check below can fail

    forgotten = await store(database, clock).forget(MEMBER)

    assert (forgotten.edits, forgotten.preferences, forgotten.usage_rows_kept) == (2, 1, 1)
    assert await jobs.get(mine) is None and await jobs.get(elsewhere) is None
    assert await jobs.find_by_result_message(900 + mine) is None
    assert await jobs.get(built_on) is None  # its source was the member's result: no longer on record
    assert (await jobs.get(unrelated)).prompt == "their own"  # type: ignore[union-attr]
    assert await jobs.remix_opt_out(MEMBER) is False
    record = await store(database, clock).record(MEMBER)
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
    purged = await store(database, clock).purge()
    assert purged.usage_rows >= 2
    assert await database.fetch_value("SELECT COUNT(*) FROM quota_usage WHERE user_id = ?", MEMBER) == 0
    await quota.reserve(GUILD, MEMBER, [], 3, now=clock.at())


async def test_forget_waits_for_an_edit_in_flight(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    job_id = await edit(jobs, MEMBER, "still here", ref(1, MEMBER))
    await QuotaStore(database, parse_quota("3/day")).reserve(GUILD, MEMBER, [], 1, now=clock.at())
    with pytest.raises(MemberBusy):
        await store(database, clock).forget(MEMBER)
    assert (await jobs.get(job_id)).prompt == "still here"  # type: ignore[union-attr]


async def test_retention_forgets_a_departed_server_after_the_grace_days(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    quota = QuotaStore(database, parse_quota("100/day"))
    privacy = store(database, clock)
    kept = await edit(jobs, MEMBER, "in the server still joined", ref(1, MEMBER))
    await spend(quota, MEMBER, 1, clock.at())
    await spend(quota, MEMBER, 1, clock.at(), guild_id=OTHER_GUILD)
    await quota.set_default(OTHER_GUILD, 5, Period.DAY)
    await edit(jobs, MEMBER, "left-server-prompt-3321", ref(2, MEMBER), guild_id=OTHER_GUILD)
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
    privacy = store(database, clock)
    old = await edit(jobs, MEMBER, "expired-prompt-7781", ref(1, MEMBER))
    recent = await edit(jobs, MEMBER, "recent", ref(2, MEMBER))
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
    privacy = store(database, clock)
    job_id = await edit(jobs, MEMBER, "kept", ref(1, MEMBER))
    await privacy.guild_left(GUILD)
    await privacy.guild_joined(GUILD)
    clock.now += 8 * DAY
    assert (await privacy.purge()).guilds == ()
    assert (await jobs.get(job_id)).prompt == "kept"  # type: ignore[union-attr]


async def test_a_server_the_bot_is_in_again_is_not_deleted_even_if_the_return_was_missed(database: Database) -> None:
    clock, jobs = Clock(), JobStore(database)
    privacy = store(database, clock)
    job_id = await edit(jobs, MEMBER, "kept", ref(1, MEMBER))
    await privacy.guild_left(GUILD)  # then added back while the bot was offline: no join event
    clock.now += 8 * DAY
    assert (await privacy.purge(present_guilds=[GUILD])).guilds == ()
    assert await database.fetch_value("SELECT COUNT(*) FROM guild_departures") == 0
    assert (await jobs.get(job_id)).prompt == "kept"  # type: ignore[union-attr]


async def test_postgresql_keeps_no_statistics_of_prompts(postgres_url: str) -> None:
    from services.database import open_database

    async with open_database(postgres_url) as db:
        jobs = JobStore(db)
        for n in range(5):
            await edit(jobs, MEMBER, "a very common prompt", ref(n, MEMBER))
        await db.execute("ANALYZE")
        columns = {r[0] for r in await db.fetch_all("SELECT attname FROM pg_stats WHERE tablename = 'jobs'")}
        assert "model" in columns and "prompt" not in columns


async def test_sqlite_overwrites_deleted_rows_and_the_file_scan_would_see_them_otherwise(tmp_path: Path) -> None:
    from services.database import open_database

    async with open_database(f"sqlite:///{tmp_path / 'retouch.db'}") as db:
        # Many builds (Debian's among them) default to on; Retouch sets it on every connection regardless.
        assert await db.fetch_value("PRAGMA secure_delete") == 1
        # The control: with it off, the forgotten prompt stays readable in the file after a forget.
        await db.execute("PRAGMA secure_delete = OFF")
        await edit(JobStore(db), MEMBER, "control-prompt-9911", ref(1, MEMBER))
        await store(db, Clock()).forget(MEMBER)
        assert await db.fetch_value("SELECT COUNT(*) FROM jobs") == 0
        assert b"control-prompt-9911" in await file_bytes(db)
