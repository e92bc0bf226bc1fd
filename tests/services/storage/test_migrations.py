"""Schema migrations on both backends: a database left by an earlier release upgrades in place, a new one is current."""

from __future__ import annotations

import time

from services.imaging.pictures import Picture
from services.storage.database import open_database
from services.storage.jobs import JobStore
from services.storage.migrations import MIGRATIONS
from services.storage.quota import QuotaRule, QuotaStore, parse_quota

# The last schema version released before the privacy step (4) was added.
BEFORE_PRIVACY = 3


def picture() -> Picture:
    return Picture(url="http://127.0.0.1/cdn/1.png", filename="1.png", content_type="image/png", size=10, author_id=7)


def test_versions_are_numbered_one_by_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len({m.description for m in MIGRATIONS}) == len(MIGRATIONS)


async def test_a_database_of_the_previous_release_upgrades_and_keeps_its_rows(database_url: str) -> None:
    old_release = [m for m in MIGRATIONS if m.version <= BEFORE_PRIVACY]
    async with open_database(database_url, migrations=old_release) as db:
        assert await db.schema_version() == BEFORE_PRIVACY
        # As that release wrote a job (the store of today writes columns later steps added).
        job_id = await db.fetch_value(
            "INSERT INTO jobs (guild_id, channel_id, user_id, created_at, prompt, model, size, count, output_format,"
            " source_url, status) VALUES (1, 2, 7, 0, 'kept across the upgrade', 'm', '64x64', 1, 'png', ?, 'done')"
            " RETURNING id",
            picture().url,
        )
        await db.execute(
            "INSERT INTO job_pictures (job_id, role, position, author_id, url, filename, size)"
            " VALUES (?, 'source', 0, 7, ?, '1.png', 10)",
            job_id,
            picture().url,
        )
        now = time.time()
        await db.execute(
            "INSERT INTO quota_usage (guild_id, user_id, created_at, created_day, reserved, images, status,"
            " instance_id) VALUES (1, 7, ?, ?, 2, 2, 'pending', ?)",
            now,
            int(now // 86_400),
            db.instance_id,
        )
        assert await db.fetch_value("SELECT COUNT(*) FROM schema_version") == BEFORE_PRIVACY

    async with open_database(database_url) as db:
        assert await db.schema_version() == MIGRATIONS[-1].version
        assert [r[0] for r in await db.fetch_all("SELECT version FROM schema_version ORDER BY version")] == [
            m.version for m in MIGRATIONS
        ]
        job = await JobStore(db).get(job_id)
        assert job is not None and job.prompt == "kept across the upgrade"
        status = await QuotaStore(db, QuotaRule(5, parse_quota("5/day").period)).explain(1, 7, [])
        assert status.used == 2
        # The step's table works.
        await db.execute("INSERT INTO guild_departures (guild_id, left_at) VALUES (?, ?)", 1, 1.0)
        assert await db.fetch_value("SELECT left_at FROM guild_departures WHERE guild_id = ?", 1) == 1.0


async def test_a_new_database_has_every_table_and_index_of_the_latest_schema(database_url: str) -> None:
    async with open_database(database_url) as db:
        assert await db.schema_version() == MIGRATIONS[-1].version
        if db.dialect == "sqlite":
            names = {
                r[0] for r in await db.fetch_all("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
            }
        else:
            names = {
                r[0]
                for r in await db.fetch_all(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " UNION SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
                )
            }
        assert {"guild_departures", "jobs_member", "jobs_created", "job_pictures_author", "quota_usage_user"} <= names


async def test_rerolls_recorded_before_step_8_name_the_member_whose_words_they_copied(database_url: str) -> None:
    before = [m for m in MIGRATIONS if m.version < 8]
    insert = (
        "INSERT INTO jobs (id, guild_id, channel_id, user_id, created_at, prompt, model, size, count, output_format,"
        " parent_job_id, status) VALUES (?, 1, 5, ?, 0, ?, 'm', '64x64', 1, 'png', ?, 'done')"
    )
    async with open_database(database_url, migrations=before) as db:
        await db.execute(insert, 1, 10, "the first member's words", None)
        await db.execute(insert, 2, 20, "the first member's words", 1)  # a Reroll of it
        await db.execute(insert, 3, 30, "the first member's words", 2)  # a Reroll of the Reroll
        await db.execute(insert, 4, 40, "a remix's own words", 1)
        await db.execute(insert, 5, 50, "", None)  # expired
        await db.execute(insert, 6, 60, "", 5)
    async with open_database(database_url) as db:
        rows = await db.fetch_all("SELECT id, prompt_author_id FROM jobs ORDER BY id")
        assert [tuple(row) for row in rows] == [(1, None), (2, 10), (3, 10), (4, None), (5, None), (6, None)]
