"""What the end-to-end tests ask of a running stack, in one place: what the member was told, pixels, usage."""

from __future__ import annotations

import io

from PIL import Image

from tests.images import png_bytes
from tests.stack import Stack


async def told(record, words: str = "Done", timeout: float = 20) -> str:
    """Wait until the member has been told `words`; return everything they saw."""
    await record.wait_for(lambda r: any(words in text for text in r.texts()), timeout=timeout)
    return "\n".join(record.texts())


def pixels(data: bytes) -> bytes:
    """A picture's RGB pixels, whatever its file format."""
    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


async def used(stack: Stack, user: dict | None = None) -> int:
    """Images the member has used in the current window, under the rules of their roles."""
    user = user or stack.discord.member
    guild = stack.bot.get_guild(stack.discord.guild_id)
    member = guild.get_member(int(user["id"])) if guild else None
    role_ids = [role.id for role in member.roles] if member else []
    return (await stack.bot.quota.explain(stack.discord.guild_id, int(user["id"]), role_ids)).used


def picture(stack: Stack, width: int, height: int, **kwargs) -> tuple[bytes, dict]:
    """A PNG uploaded as a command's attachment: its bytes and the attachment."""
    data = png_bytes(width, height)
    return data, stack.discord.add_attachment(data, "photo.png", "image/png", width=width, height=height, **kwargs)


def uploaded(record) -> list:
    """Every file the bot posted in followups to this interaction."""
    return [file for followup in record.followups for file in followup["files"]]
