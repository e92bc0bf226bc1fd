"""A painter backend that records what it is asked, and a loopback server with the painter's routes."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from services.outside.painter_tokens import PainterClaim, PainterGrant, PainterTokens
from services.outside.painter_web import PainterAnswer, PainterDefaults, add_painter_routes
from services.storage.database import open_database
from services.text.refusal import Refusal
from services.text.words import Text
from tests.helpers import Clock

PICTURE_URL = "https://cdn.discordapp.com/attachments/222/555/photo.png?ex=1&is=2&hm=abc"
GRANT = PainterGrant(member_id=777, guild_id=111, channel_id=222, picture_url=PICTURE_URL, message_id=333, job_id=9)


def picture_png(width: int, height: int) -> bytes:
    """A picture with some structure, so that a screenshot shows where the paint went."""
    image = Image.new("RGB", (width, height), (70, 110, 160))
    for x in range(0, width, 40):
        image.paste((200, 200, 90), (x, 0, x + 20, height // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Submission:
    claim: PainterClaim
    mask_png: bytes
    prompt: str
    count: int


@dataclass
class FakeBackend:
    """Serves one picture and answers every submission with `answer` (or raises `fail`)."""

    picture: bytes
    defaults_: PainterDefaults = field(default_factory=PainterDefaults)
    answer: PainterAnswer = field(default_factory=lambda: PainterAnswer("queued", "Queued: you are first in line."))
    fail: Exception | None = None
    gone: bool = False
    hold: asyncio.Event | None = None  # when given, the picture is served once it is set (a slow download)
    fetches: int = 0
    submissions: list[Submission] = field(default_factory=list)

    async def fetch_picture(self, claim: PainterClaim) -> bytes:
        self.fetches += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.gone:
            raise Refusal(Text("The message with this picture was deleted."))
        return self.picture

    async def defaults(self, claim: PainterClaim) -> PainterDefaults:
        if self.gone:
            raise Refusal(Text("The message with this picture was deleted."))
        return self.defaults_

    async def submit(self, claim: PainterClaim, mask_png: bytes, prompt: str, count: int) -> PainterAnswer:
        self.submissions.append(Submission(claim, mask_png, prompt, count))
        if self.fail is not None:
            raise self.fail
        return self.answer


@dataclass
class Painter:
    server: TestServer
    tokens: PainterTokens
    backend: FakeBackend

    def url(self, token: str, suffix: str = "") -> str:
        return str(self.server.make_url(f"/paint/{token}{suffix}"))


@asynccontextmanager
async def painter_server(
    tmp_path: Path, backend: FakeBackend, clock: Clock, *, mount: str = ""
) -> AsyncIterator[Painter]:
    """The painter's routes on an aiohttp server at 127.0.0.1, with links made by a SQLite-backed issuer."""
    async with open_database(f"sqlite:///{tmp_path / 'painter.db'}") as db:
        tokens = await PainterTokens.open(db, clock=clock)
        app = web.Application()
        add_painter_routes(app, tokens, backend, mount=mount)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield Painter(server, tokens, backend)
        finally:
            await server.close()
