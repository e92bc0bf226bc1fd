"""Members' uploads behind region panels and painter links: in the database for every process, for a day."""

from __future__ import annotations

import dataclasses

from services.storage.database import Database, open_database
from services.storage.uploads import KEEP_SECONDS, UploadStore
from tests.helpers import Clock, cat_upload, privacy_store

UPLOAD = cat_upload("http://127.0.0.1/cdn/attachments/5/77/cat.png?ex=1&hm=2")


async def test_an_upload_remembered_by_one_process_is_found_by_another(database_url: str) -> None:
    clock = Clock()
    async with open_database(database_url) as first, open_database(database_url) as second:
        await UploadStore(first, clock=clock).remember(UPLOAD)
        assert await UploadStore(second, clock=clock).find(66, 77) == UPLOAD
        assert await UploadStore(second, clock=clock).find(66, 78) is None


async def test_an_upload_is_kept_a_day(database: Database) -> None:
    clock = Clock()
    uploads = UploadStore(database, clock=clock)
    await uploads.remember(UPLOAD)
    clock.now += KEEP_SECONDS
    assert await uploads.find(66, 77) == UPLOAD
    clock.now += 1
    assert await uploads.find(66, 77) is None
    await uploads.remember(dataclasses.replace(UPLOAD, message_id=67))  # purges the old one
    assert await database.fetch_value("SELECT COUNT(*) FROM region_uploads") == 1


async def test_forgetting_a_member_forgets_their_uploads(database: Database) -> None:
    clock = Clock()
    uploads = UploadStore(database, clock=clock)
    await uploads.remember(UPLOAD)
    await uploads.remember(dataclasses.replace(UPLOAD, message_id=68, author_id=43))
    forgotten = await privacy_store(database, clock).forget(42)
    assert forgotten.pictures == 1
    assert await uploads.find(66, 77) is None and await uploads.find(68, 77) is not None
