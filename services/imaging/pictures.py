"""The one picture type: a picture on Discord, as an attachment or an embed, and where it lives."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Picture:
    """A picture on Discord: its (signed, expiring) URL, what Discord says it is, and its message if it has one."""

    url: str
    filename: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None
    attachment_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None
    author_id: int | None = None  # whose picture it is: the uploader, or the requester of a result

    def with_url(self, url: str) -> Picture:
        """The same picture behind a fresh URL (Discord's signed URLs expire)."""
        return dataclasses.replace(self, url=url)
