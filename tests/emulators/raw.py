"""Requests a test sends the Discord emulator itself, not through discord.py: every one says
``User-Agent: retouch-tests`` (:data:`tests.discord_payloads.TEST_USER_AGENT`), so the session check
does not count the payloads a test sends to prove they are refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from emulators.discord import DiscordEmulator
from tests.discord_payloads import TEST_USER_AGENT


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
