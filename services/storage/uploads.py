"""Members' uploads that region panels and painter links refer to, shared by every process.

A bot without the MESSAGE_CONTENT intent cannot read a member's message again, so the upload a panel was
opened on is remembered here (not in one process's memory): any process behind PUBLIC_URL, or after a
restart, serves its panel and painter links. A record holds a signed attachment URL and whose picture it
is, so it lasts `KEEP_SECONDS` (purged as new ones come) and `/privacy forget` removes the member's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.imaging.pictures import Picture
from services.storage.database import Database

# Longer than a panel is used in one sitting; a panel clicked later says it no longer knows the picture.
KEEP_SECONDS = 24 * 3600.0
_COLUMNS = ("channel_id", "author_id", "url", "filename", "content_type", "size", "width", "height")


class UploadStore:
    """`remember` a member's upload; `find` it by message and attachment, from any process."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def remember(self, picture: Picture) -> None:
        """Keep `picture` (which must name its message, attachment, channel and author), and purge old ones."""
        if None in (picture.message_id, picture.attachment_id, picture.channel_id, picture.author_id):
            raise ValueError("an upload to remember names its message, attachment, channel and author")
        now = self._clock()
        await self._db.execute("DELETE FROM region_uploads WHERE created_at < ?", now - KEEP_SECONDS)
        values = {column: getattr(picture, column) for column in _COLUMNS}
        await self._db.upsert(
            "region_uploads",
            {"message_id": picture.message_id, "attachment_id": picture.attachment_id},
            {**values, "created_at": now},
        )

    async def find(self, message_id: int, attachment_id: int) -> Picture | None:
        """The upload, while it is kept."""
        row = await self._db.fetch_one(
            f"SELECT {', '.join(_COLUMNS)} FROM region_uploads"
            " WHERE message_id = ? AND attachment_id = ? AND created_at >= ?",
            message_id,
            attachment_id,
            self._clock() - KEEP_SECONDS,
        )
        if row is None:
            return None
        found = dict(zip(_COLUMNS, row, strict=True))
        return Picture(message_id=message_id, attachment_id=attachment_id, **found)
