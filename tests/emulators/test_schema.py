"""The Discord emulator validates every request body against Discord's OpenAPI document at every
depth, answers what Discord answers, records what it refused or would ignore, and the test session
fails when the bot (discord.py) sent such a request."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest

from emulators.discord import DiscordEmulator, InteractionRecord, MessageFlag, check_request, schema
from tests.helpers import multipart, raw

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(56))


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


@pytest.fixture
async def client(emu: DiscordEmulator) -> AsyncIterator[discord.Client]:
    """A logged-in discord.py client with no commands of its own: interactions stay unanswered."""
    bot = discord.Client(intents=discord.Intents.default())
    with emu.patch_discord():
        task = asyncio.create_task(bot.start(emu.token))
        await asyncio.wait_for(emu.ready.wait(), 10)
        yield bot
        await bot.close()
        await asyncio.wait_for(task, 10)


def error_at(*where: str | int, code: str, message: str) -> dict:
    """Discord's error tree with one error at the field path ``where``."""
    tree: dict = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(where):
        tree = {str(key): tree}
    return tree


async def unanswered_interaction(emu: DiscordEmulator) -> InteractionRecord:
    """A slash interaction the client does not answer (its command was registered behind its back)."""
    command = {"name": "raw", "description": "Registered by the test", "type": 1}
    assert (await raw(emu, "PUT", f"/applications/{emu.application_id}/commands", json=[command]))[0] == 200
    return await emu.slash("raw")


def select(**overrides: Any) -> dict:
    return {"type": 3, "custom_id": "pick", "options": [{"label": "a", "value": "a"}], **overrides}


async def test_a_select_three_levels_deep_in_a_container_is_refused_with_its_path(emu: DiscordEmulator) -> None:
    container = {"type": 17, "components": [{"type": 1, "components": [select(max_values=26)]}]}
    body = {"flags": MessageFlag.IS_COMPONENTS_V2, "components": [{"type": 10, "content": "Pick"}, container]}
    status, answer = await raw(emu, "POST", f"/channels/{emu.channel_id}/messages", json=body)
    rule = ("components", 1, "components", 0, "components", 0, "max_values")
    assert (status, answer) == (
        400,
        {
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": error_at(*rule, code="NUMBER_TYPE_MAX", message="int value should be less than or equal to 25."),
        },
    )
    assert emu.calls[-1].refusal == (
        "NUMBER_TYPE_MAX at components.1.components.0.components.0.max_values: "
        "int value should be less than or equal to 25."
    )
    assert emu.messages == {}


async def test_a_component_of_a_type_not_taken_there_is_refused_at_the_component(emu: DiscordEmulator) -> None:
    # Discord's answer, at the component and not at its `type`, the types a row takes in ascending order:
    # quoted from a real callback's DiscordAPIError (see emulators/discord/protocol.py, union_type_error).
    for kind in (99, 4):  # no component at all; a text input, which only a modal's row takes
        row = {"type": 1, "components": [{"type": kind, "custom_id": "x", "style": 1, "label": "x"}]}
        status, answer = await raw(emu, "POST", f"/channels/{emu.channel_id}/messages", json={"components": [row]})
        assert (status, answer["errors"]) == (
            400,
            error_at(
                "components",
                0,
                "components",
                0,
                code="UNION_TYPE_CHOICES",
                message='Value of field "type" must be one of (2, 3, 5, 6, 7, 8).',
            ),
        )


async def test_a_bots_content_is_held_to_2000_characters_not_the_documents_4000(emu: DiscordEmulator) -> None:
    # The OpenAPI document allows users with Nitro 4000; a bot gets Discord's 2000 answer on create and edit.
    path = f"/channels/{emu.channel_id}/messages"
    too_long = error_at("content", code="BASE_TYPE_MAX_LENGTH", message="Must be 2000 or fewer in length.")
    status, answer = await raw(emu, "POST", path, json={"content": "x" * 4001})
    assert (status, answer["errors"]) == (400, too_long)
    status, message = await raw(emu, "POST", path, json={"content": "x" * 2000})
    assert status == 200
    status, answer = await raw(emu, "PATCH", f"{path}/{message['id']}", json={"content": "x" * 4001})
    assert (status, answer["errors"]) == (400, too_long)


async def test_a_bad_type_deep_in_a_modal_callback_is_refused(emu: DiscordEmulator, client: discord.Client) -> None:
    record = await unanswered_interaction(emu)
    text_input = {"type": 4, "custom_id": "prompt", "style": "paragraph"}
    label = {"type": 18, "label": "Prompt", "component": text_input}
    modal = {"custom_id": "describe", "title": "Describe", "components": [label]}
    callback = f"/interactions/{record.id}/{record.token}/callback"
    status, answer = await raw(emu, "POST", callback, json={"type": 9, "data": modal})
    assert (status, answer["errors"]) == (
        400,
        error_at(
            *("data", "components", 0, "component", "style"),
            code="NUMBER_TYPE_COERCE",
            message='Value "paragraph" is not int.',
        ),
    )
    assert not record.acknowledged
    text_input["style"] = 2
    assert (await raw(emu, "POST", callback, json={"type": 9, "data": modal}))[0] == 204


async def test_a_long_option_description_in_a_subcommand_group_is_refused(emu: DiscordEmulator) -> None:
    grant = {"type": 1, "name": "grant", "description": "x" * 101}
    limits = {"type": 2, "name": "limits", "description": "Quotas", "options": [grant]}
    command = {"type": 1, "name": "admin", "description": "Moderation", "options": [limits]}
    for path in (
        f"/applications/{emu.application_id}/commands",
        f"/applications/{emu.application_id}/guilds/{emu.guild_id}/commands",
    ):
        status, answer = await raw(emu, "PUT", path, json=[command])
        assert (status, answer["errors"]) == (
            400,
            error_at(
                0,
                "options",
                0,
                "options",
                0,
                "description",
                code="BASE_TYPE_BAD_LENGTH",
                message="Must be between 1 and 100 in length.",
            ),
        )
    assert emu.commands == {}


async def test_a_multipart_followups_payload_json_is_validated(emu: DiscordEmulator, client: discord.Client) -> None:
    record = await unanswered_interaction(emu)
    callback = f"/interactions/{record.id}/{record.token}/callback"
    assert (await raw(emu, "POST", callback, json={"type": 5}))[0] == 204

    webhook = f"/webhooks/{emu.application_id}/{record.token}"
    bad = {"content": "done", "attachments": [{"id": 0, "filename": "edited.png", "description": "x" * 1025}]}
    status, answer = await raw(emu, "POST", webhook, params={"wait": "1"}, data=multipart(bad, {"edited.png": PNG}))
    assert (status, answer["errors"]) == (
        400,
        error_at(
            "attachments", 0, "description", code="BASE_TYPE_MAX_LENGTH", message="Must be 1024 or fewer in length."
        ),
    )
    assert record.followups == []
    # Upload ids as integers, as discord.py sends them: Discord takes a snowflake as a number too.
    good = {"content": "done", "attachments": [{"id": 0, "filename": "edited.png"}]}
    status, message = await raw(emu, "POST", webhook, params={"wait": "1"}, data=multipart(good, {"edited.png": PNG}))
    assert (status, message["content"], emu.calls[-1].offences) == (200, "done", [])


async def test_an_integer_snowflake_is_taken(emu: DiscordEmulator) -> None:
    path = f"/channels/{emu.channel_id}/messages"
    status, first = await raw(emu, "POST", path, json={"content": "first"})
    assert status == 200
    reply = {"content": "second", "message_reference": {"message_id": int(first["id"])}}
    assert (await raw(emu, "POST", path, json=reply))[0] == 200
    assert emu.calls[-1].offences == []
    status, answer = await raw(emu, "POST", path, json={"content": "x", "message_reference": {"message_id": -1}})
    assert (status, answer["errors"]) == (
        400,
        error_at(
            "message_reference",
            "message_id",
            code="NUMBER_TYPE_MIN",
            message="int value should be greater than or equal to 0.",
        ),
    )


async def test_an_unknown_key_at_any_depth_is_recorded_not_refused(emu: DiscordEmulator) -> None:
    display = {"type": 10, "content": "Hello", "colour": "red"}
    body = {"flags": MessageFlag.IS_COMPONENTS_V2, "components": [{"type": 17, "components": [display]}]}
    status, _ = await raw(emu, "POST", f"/channels/{emu.channel_id}/messages", params={"silent": "1"}, json=body)
    assert status == 200
    assert (emu.calls[-1].refusal, emu.calls[-1].violations) == (
        None,
        [
            "unknown query parameter 'silent'",
            "body key components.0.components.0.colour is not in the request schema (Discord ignores it)",
        ],
    )


async def test_refusals_are_recorded_for_every_rule_but_not_for_other_answers(emu: DiscordEmulator) -> None:
    path = f"/channels/{emu.channel_id}/messages"
    await raw(emu, "POST", path, json={"content": ""})  # validation.py's rule, not the schema's
    await raw(emu, "POST", path, json={"content": "x" * 2001})
    await raw(emu, "POST", path, data=b"{", headers={"Content-Type": "application/json"})
    await raw(emu, "POST", f"/channels/{emu.other_channel_id}0/messages", json={"content": "hi"})  # no such channel
    emu.fail_next("POST", "/messages$", 400, {"code": 50035, "message": "Invalid Form Body", "errors": {}})
    await raw(emu, "POST", path, json={"content": "hi"})
    emu.request_size_limit = 10
    await raw(emu, "POST", path, json={"content": "too long for the limit"})
    assert [(call.status, call.refusal) for call in emu.calls] == [
        (400, "EMPTY_MESSAGE (50006): Cannot send an empty message"),
        (400, "BASE_TYPE_MAX_LENGTH at content: Must be 2000 or fewer in length."),
        (400, "INVALID_JSON (50109): The request body contains invalid JSON."),
        (404, None),
        (400, None),
        (413, "REQUEST_ENTITY_TOO_LARGE (40005): Request entity too large"),
    ]


def test_validators_are_built_once_per_operation() -> None:
    body = {"content": "Done", "attachments": [{"id": 0, "filename": "edited.png"}], "flags": 0}
    check_request("POST", "/webhooks/1/token", ["wait"], body)
    built = schema._operation.cache_info().misses
    for token in ("a", "b", "c"):
        assert check_request("POST", f"/webhooks/1/{token}", ["wait"], body).violations == []
    assert schema._operation.cache_info().misses == built


# ---------------------------------------------------------------------- the end-of-session check

BAD_PAYLOADS_TEST = """
import aiohttp
import discord
import pytest

from emulators.discord import DiscordEmulator


async def send_bad_payloads():
    # Through discord.py's REST client (User-Agent "DiscordBot …") and its webhook adapter, which
    # sends interaction responses and followups (aiohttp's default User-Agent).
    async with DiscordEmulator() as emu, aiohttp.ClientSession() as session:
        with emu.patch_discord():
            client = discord.Client(intents=discord.Intents.none())
            await client.login(emu.token)
            view = discord.ui.View()
            view.add_item(discord.ui.Select(custom_id="pick", max_values=26, options=[discord.SelectOption(label="a")]))
            followups = discord.Webhook.partial(emu.application_id, "token", session=session)
            try:
                with pytest.raises(discord.HTTPException):
                    await client.get_partial_messageable(emu.channel_id).send("Pick", view=view)
                with pytest.raises(discord.HTTPException):
                    await followups.send("x" * 2001)
            finally:
                await client.close()


async def test_bot_sends_them():
    await send_bad_payloads()


@pytest.mark.refusals_expected
async def test_bot_sends_them_on_purpose():
    await send_bad_payloads()
"""


def run_pytest(tmp_path: Path, selected: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_bad_payloads.py").write_text(textwrap.dedent(BAD_PAYLOADS_TEST))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nmarkers =\n    refusals_expected: sent on purpose\n"
    )
    command = [sys.executable, "-m", "pytest", "-p", "tests.discord_payloads", "-p", "no:cacheprovider"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*command, "-q", "-k", selected, str(tmp_path)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_session_fails_naming_the_test_and_the_rule_when_the_bot_sent_a_refused_payload(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "test_bot_sends_them and not on_purpose")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    # The inner run's emulator made up its snowflakes.
    offences = [re.sub(r"\d{15,}", "N", line) for line in run.stdout.splitlines() if line.startswith("test_bad_")]
    assert offences == [
        "test_bad_payloads.py::test_bot_sends_them: POST /channels/N/messages: NUMBER_TYPE_MAX at "
        "components.0.components.0.max_values: int value should be less than or equal to 25.",
        "test_bad_payloads.py::test_bot_sends_them: POST /webhooks/N/token: BASE_TYPE_MAX_LENGTH at content: "
        "Must be 2000 or fewer in length.",
    ]


def test_the_session_passes_when_the_test_expects_the_refusal(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "on_purpose")
    assert run.returncode == pytest.ExitCode.OK, run.stdout + run.stderr
    assert "test_bad_payloads.py::" not in run.stdout
