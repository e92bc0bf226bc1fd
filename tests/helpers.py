"""What tests share, in one place: waiting on state, reading messages and their components, driving a running
stack (what the member was told, pixels, usage), and job records for the store tests.

Test modules import from here (and from the other helper modules: stack, harness, images, db_fixtures, …),
never from each other; import-linter enforces it (pyproject.toml).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from PIL import Image

from services.imaging.pictures import Picture
from services.outside.config import load_config
from services.storage.database import Database, lock_key
from services.storage.jobs import JobStore, NewJob
from services.storage.privacy import PrivacyStore
from tests.discord_payloads import TEST_USER_AGENT
from tests.images import png_bytes
from tests.protocol import BUTTON, EPHEMERAL, LABEL, MODAL, STRING_SELECT, TEXT_DISPLAY, TEXT_INPUT

if TYPE_CHECKING:  # tests.stack imports tests.harness, which waits with `until` from here
    from emulators.discord import DiscordEmulator
    from tests.stack import Stack

DAY = 86_400


def read_variables(env: dict[str, str]) -> set[str]:
    """Every environment variable the configuration asks `env` for (services/outside/config.py's load_config)."""
    asked: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
            asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> str:
            asked.add(key)
            return super().__getitem__(key)

    load_config(Recording(env))
    return asked


# ----------------------------------------------------------------------------- waiting on state


async def until(condition: Callable[[], object], timeout: float = 10, what: str = "the condition") -> None:
    """Return once `condition()` (a value, or an awaitable of one) is true; fail naming `what` after `timeout` s.

    It polls state another task (or process) owns: the emulators' records, the bot's queue, the database.
    """

    async def holds() -> bool:
        result = condition()
        return bool(await result if inspect.isawaitable(result) else result)

    async def poll() -> None:
        while not await holds():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None


# ----------------------------------------------------------------------------- messages and components


def walk(components: list[dict]) -> Iterator[dict]:
    """Every component of a message, inside containers and rows too."""
    for component in components:
        yield component
        yield from walk(component.get("components") or [])


def button(message: dict, label: str) -> str:
    """The custom id of the message's one button labelled `label`."""
    [custom_id] = [c["custom_id"] for c in walk(message["components"]) if c.get("label") == label]
    return custom_id


def labels_of(message: dict) -> list[str]:
    """The labels of the message's buttons, in order (None for a button that shows an emoji only)."""
    return [c.get("label") for c in walk(message["components"]) if c["type"] == BUTTON]


def file_of(message: dict, index: int = 0) -> bytes:
    return message["files"][index].data


def pixels(data: bytes) -> bytes:
    """A picture's RGB pixels, whatever its file format."""
    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


def uploaded(record) -> list:
    """Every file the bot posted in followups to this interaction."""
    return [file for followup in record.followups for file in followup["files"]]


# ----------------------------------------------------------------------------- a running stack


async def told(record, words: str = "Done", timeout: float = 20) -> str:
    """Wait until the member has been told `words`; return everything they saw."""
    await record.wait_for(lambda r: any(words in text for text in r.texts()), timeout=timeout)
    return "\n".join(record.texts())


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


async def posted_edit(stack: Stack, *, user: dict | None = None, count: int = 1) -> tuple[bytes, dict]:
    """A member's /edit of a fresh 64x64 picture; returns the source bytes and the (first) result message."""
    source, image = picture(stack, 64, 64)
    record = await stack.discord.slash(
        "edit", {"image": image, "prompt": "invert it", "size": "64x64", "count": count}, user=user
    )
    await told(record, "Done")
    return source, record.followups[0]


async def results_of(record, count: int = 1) -> list[dict]:
    """The public result messages an interaction posted (after its ephemeral progress message)."""
    await told(record, "Done")
    public = [m for m in record.followups if not m["flags"] & EPHEMERAL]
    assert len(public) == count
    return public


async def modal_of(record) -> dict:
    response = await record.wait_response()
    assert response["type"] == MODAL, response
    return response["data"]


async def submit(
    stack: Stack, modal: dict, answers: dict[str, Any], *, user: dict | None = None, message: dict | None = None
):
    """Fill the modal by its labels (text, the chosen option's value, or an attachment dict) and submit it."""
    components, attachments = [], []
    for label in modal["components"]:
        inner, answer = label["component"], answers.get(label["label"])
        part: dict[str, Any] = {"type": inner["type"], "custom_id": inner["custom_id"]}
        if inner["type"] == TEXT_INPUT:
            part["value"] = answer if answer is not None else inner.get("value", "")
        elif inner["type"] == STRING_SELECT:
            default = [o["value"] for o in inner["options"] if o.get("default")]
            part["values"] = [answer] if answer is not None else default
        else:
            part["values"] = [answer["id"]] if answer else []
            attachments += [answer] if answer else []
        components.append({"type": LABEL, "component": part})
    return await stack.discord.submit_modal(
        modal["custom_id"], components, user=user, resolved_attachments=attachments, message=message
    )


async def moderator(stack: Stack, subcommand: str, options: dict | None = None, *, group: str = "quota") -> str:
    """A moderator's `/group subcommand`; everything they were told."""
    record = await stack.discord.slash(group, options or {}, subcommand=subcommand, user=stack.discord.moderator)
    await record.wait_for(lambda r: bool(r.texts()))
    return "\n".join(record.texts())


async def panel_of(record) -> dict:
    """The ephemeral region panel an interaction drew (its @original once the preview is attached); words
    instead (an apology when Discord refused the panel) fail at once."""
    await record.wait_for(
        lambda r: (r.original is not None and bool(r.original.get("files"))) or bool(r.texts()), timeout=20
    )
    assert not record.texts(), f"no panel, but {record.texts()}"
    panel = record.original
    assert panel["flags"] & EPHEMERAL
    return panel


def paint_link(panel: dict) -> str:
    """The region panel's "Paint in browser" link."""
    [url] = [c["url"] for c in walk(panel["components"]) if c.get("label") == "Paint in browser"]
    return url


async def redrawn(stack: Stack, panel: dict, record) -> dict:
    """The panel after a click on it: the same message, edited with a new preview (not words instead)."""
    await record.wait_for(lambda r: bool(r.original_edits) or bool(r.texts()), timeout=20)
    assert not record.texts(), f"not redrawn, but {record.texts()}"
    return stack.discord.messages[int(panel["id"])]


def select_of(panel: dict) -> dict:
    [select] = [c for c in walk(panel["components"]) if c["type"] == STRING_SELECT]
    return select


def text_of(panel: dict) -> str:
    return "\n".join(c["content"] for c in walk(panel["components"]) if c["type"] == TEXT_DISPLAY)


def watch_commands(stack: Stack) -> set[int]:
    """The ids of the application commands the bot finishes handling from now on (discord.py's own event)."""
    finished: set[int] = set()

    async def completed(interaction, command) -> None:
        finished.add(interaction.id)

    stack.bot.add_listener(completed, "on_app_command_completion")
    return finished


async def settled(stack: Stack) -> None:
    """Every edit the bot admitted has ended: nothing it does for them (progress, delivery) is still to come."""
    await until(lambda: stack.bot.queue.in_line == 0, 30, "every admitted edit to end")


# ----------------------------------------------------------------------------- the Discord emulator, raw

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(56))  # not decodable, just bytes with a PNG signature


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the JSON answer; else its text, or None when empty
    headers: Mapping[str, str]


async def answer(
    emu: DiscordEmulator,
    method: str,
    path: str,
    *,
    token: bool = True,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Answer:
    """One request to the emulator's REST API (``path`` under ``/api/v10``), with the bot's token unless
    ``token`` is False; ``kwargs`` are aiohttp's (``json``, ``data``, ``params``)."""
    sent = {"User-Agent": TEST_USER_AGENT, **({"Authorization": f"Bot {emu.token}"} if token else {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, emu.rest_base + path, headers={**sent, **(headers or {})}, **kwargs) as response,
    ):
        text = await response.text()
        body = json.loads(text) if text and response.content_type == "application/json" else text or None
        return Answer(response.status, body, dict(response.headers))


async def raw(emu: DiscordEmulator, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """:func:`answer`'s status and body."""
    got = await answer(emu, method, path, **kwargs)
    return got.status, got.body


def multipart(payload: Any, files: Mapping[str, bytes]) -> aiohttp.FormData:
    """A body as discord.py sends one with files: ``payload_json``, then ``files[n]`` in order."""
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for index, (filename, data) in enumerate(files.items()):
        form.add_field(f"files[{index}]", data, filename=filename, content_type="application/octet-stream")
    return form


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


# ----------------------------------------------------------------------------- job records and time

MEMBER, OTHER = 7, 8
GUILD, OTHER_GUILD = 1, 2


class Clock:
    """Time that moves only when a test says so (by default it starts at the real time)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """A sleep that returns at once, having moved the time on by `seconds`."""
        self.slept.append(seconds)
        self.now += seconds

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def stored_picture(n: int, author_id: int = MEMBER, *, message_id: int | None = None) -> Picture:
    """A picture on record: number `n`'s attachment in channel 5 (in message `message_id` when it was posted)."""
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


def cat_upload(url: str) -> Picture:
    """Member 42's cat.png (attachment 77 of message 66 in channel 5, 64x48, 1234 bytes), behind `url`."""
    return Picture(
        url, "cat.png", "image/png", 1234, 64, 48, attachment_id=77, channel_id=5, message_id=66, author_id=42
    )


def new_job(**changes: Any) -> NewJob:
    """One 64x64 PNG edit by MEMBER of picture 1 in channel 5 of GUILD, with `changes`."""
    fields: dict[str, Any] = dict(
        guild_id=GUILD,
        channel_id=5,
        user_id=MEMBER,
        prompt="a cat",
        model="m",
        size="64x64",
        count=1,
        output_format="png",
        source=stored_picture(1),
    )
    return NewJob(**(fields | changes))


async def finished_job(jobs: JobStore, user_id: int, prompt: str, source: Picture, **changes: Any) -> int:
    """A finished job with one result posted in message 900 + its id."""
    job_id = await jobs.create(new_job(user_id=user_id, prompt=prompt, source=source, **changes))
    await jobs.add_results(job_id, [stored_picture(50 + job_id, user_id, message_id=900 + job_id)])
    await jobs.finish(job_id, delivered=1)
    return job_id


def privacy_store(db: Database, clock: Clock) -> PrivacyStore:
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


async def liveness_backends(db: Database, instance_id: str) -> list[int]:
    """The PostgreSQL backends holding the liveness lock of the bot process (or store) that is `instance_id`."""
    key = lock_key(f"instance:{instance_id}") & 0xFFFF_FFFF_FFFF_FFFF  # a bigint key is two 32-bit halves
    rows = await db.fetch_all(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid::bigint = ? AND objid::bigint = ?",
        key >> 32,
        key & 0xFFFF_FFFF,
    )
    return [row[0] for row in rows]


class CuttableProxy:
    """A loopback TCP proxy to `port` that a test can cut: every connection dropped, new ones closed at once.

    Stands for the network between the bot and its database: `cut()` makes the database unreachable,
    `restore()` reachable again. `refused` counts connections turned away while cut.
    """

    def __init__(self, port: int) -> None:
        self.target_port = port
        self.port = 0
        self.refused = 0
        self._cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self._drop_all()
        await self._server.wait_closed()

    def cut(self) -> None:
        self._cut = True
        self._drop_all()

    def restore(self) -> None:
        self._cut = False

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, RuntimeError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}
