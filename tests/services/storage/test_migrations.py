"""Schema migrations on both backends: a database left by an earlier release upgrades in place, a new one is current."""

from __future__ import annotations

from services.imaging.pictures import Picture
from services.storage.database import open_database
from services.storage.jobs import JobStore
from services.storage.migrations import MIGRATIONS
from services.storage.quota import QuotaRule, QuotaStore, parse_quota
from tests.helpers import new_job

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
        job_id = await JobStore(db).create(new_job(channel_id=2, prompt="kept across the upgrade", source=picture()))
        await QuotaStore(db, parse_quota("5/day")).reserve(1, 7, [], 2)
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
