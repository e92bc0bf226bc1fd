"""`/privacy` and `/remixing` where the bot has no channel of its own: in its DM (context 1), from a user
install in a server the bot is not in (context 0, authorised by the user alone), and in a group DM
(context 2).  They answer ephemerally, and the bot reads and posts in no channel there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from emulators.discord import InteractionContext, InteractionRecord
from tests.protocol import EPHEMERAL
from tests.stack import Stack

FORGOTTEN = (
    "Done: Retouch no longer keeps your prompts or picture references. Your remixing choice stays, and the "
    "entries moderators' audit-log channels received stay with them."
)
STOPPED = "Other members can no longer remix or reroll your uploads and results; you still can."


@dataclass
class Place:
    """Where a user runs the commands, and how the app reaches them there."""

    name: str
    user: dict
    channel_id: int
    user_install: bool
    context: InteractionContext
    owners: dict[str, str]


def bots_dm(stack: Stack) -> Place:
    user = stack.discord.member
    dm = stack.discord.add_dm_channel(user)
    return Place("the bot's DM", user, dm, False, InteractionContext.BOT_DM, {"0": "0"})


def server_without_the_bot(stack: Stack) -> Place:
    guild = stack.discord.add_guild(name="elsewhere", with_bot=False)
    user = stack.discord.add_member(name="visitor", guild_id=guild.id)
    channel = stack.discord.add_channel("chat", guild_id=guild.id)
    return Place("a server without the bot", user, channel, True, InteractionContext.GUILD, {"1": user["id"]})


def group_dm(stack: Stack) -> Place:
    user = stack.discord.member
    group = stack.discord.add_private_channel([user, stack.discord.other_member, stack.discord.moderator])
    return Place("a group DM", user, group, True, InteractionContext.PRIVATE_CHANNEL, {"1": user["id"]})


PLACES: list[Callable[[Stack], Place]] = [bots_dm, server_without_the_bot, group_dm]


async def run(stack: Stack, place: Place, name: str, options: dict | None = None, **kwargs) -> InteractionRecord:
    record = await stack.discord.slash(
        name, options or {}, user=place.user, channel_id=place.channel_id, user_install=place.user_install, **kwargs
    )
    assert record.payload["context"] == place.context
    assert record.payload["authorizing_integration_owners"] == place.owners
    return record


async def answered(record: InteractionRecord) -> str:
    """The ephemeral message the command answered with."""
    response = await record.wait_response()
    assert response["type"] == 4 and response["data"]["flags"] & EPHEMERAL, response
    return response["data"]["content"]


def no_channel_traffic(stack: Stack, since: int) -> None:
    """Nothing but the interactions' own endpoints was called, and nothing was refused."""
    calls = stack.discord.calls[since:]
    assert calls, "the bot answered nothing"
    assert [f"{c.method} {c.path}" for c in calls if not c.path.startswith(("/interactions/", "/webhooks/"))] == []
    assert [c.status for c in calls if c.status >= 400] == []


@pytest.mark.parametrize("where", PLACES, ids=lambda where: where.__name__)
async def test_privacy_show_outside_the_bots_servers(global_stack: Stack, where: Callable[[Stack], Place]) -> None:
    place, since = where(global_stack), len(global_stack.discord.calls)
    shown = await answered(await run(global_stack, place, "privacy", subcommand="show"))
    assert shown.startswith("**What Retouch keeps about you**, across every server it shares with you (0 so far):")
    assert "- 0 edits on record, 0 of them with the prompt you wrote" in shown
    assert "- Others remixing your pictures: allowed" in shown
    no_channel_traffic(global_stack, since)


@pytest.mark.parametrize("where", PLACES, ids=lambda where: where.__name__)
async def test_remixing_off_outside_the_bots_servers(global_stack: Stack, where: Callable[[Stack], Place]) -> None:
    place, since = where(global_stack), len(global_stack.discord.calls)
    assert await answered(await run(global_stack, place, "remixing", {"allow": False})) == STOPPED
    assert await global_stack.bot.jobs.remix_opt_out(int(place.user["id"]))
    shown = await answered(await run(global_stack, place, "privacy", subcommand="show"))
    assert "- Others remixing your pictures: not allowed (you opted out)" in shown
    no_channel_traffic(global_stack, since)


@pytest.mark.parametrize("where", PLACES, ids=lambda where: where.__name__)
async def test_privacy_forget_with_its_confirmation_outside_the_bots_servers(
    global_stack: Stack, where: Callable[[Stack], Place]
) -> None:
    place, since = where(global_stack), len(global_stack.discord.calls)
    await answered(await run(global_stack, place, "remixing", {"allow": False}))
    asked = await run(global_stack, place, "privacy", subcommand="forget")
    warning = await answered(asked)
    assert "(0 edits, 0 picture references)" in warning and "so that limits still hold" in warning
    assert asked.original is not None and asked.original["channel_id"] == str(place.channel_id)
    [forget] = [
        c["custom_id"] for row in asked.original["components"] for c in row["components"] if c["label"] == "Forget me"
    ]
    clicked = await global_stack.discord.click(asked.original, forget, user=place.user)
    assert clicked.payload["authorizing_integration_owners"] == place.owners
    await clicked.wait_for(lambda r: FORGOTTEN in r.texts(), timeout=20)
    confirmation = global_stack.discord.messages[int(asked.original["id"])]
    assert confirmation["content"] == FORGOTTEN and confirmation["components"] == []
    assert confirmation["flags"] & EPHEMERAL
    assert await global_stack.bot.jobs.remix_opt_out(int(place.user["id"]))  # the opt-out is consent: it stays
    no_channel_traffic(global_stack, since)


async def test_server_commands_are_not_offered_outside_servers(global_stack: Stack) -> None:
    """What Discord would not show in the bot's DM cannot be run there (the emulator refuses to inject it)."""
    place = bots_dm(global_stack)
    for name in ("quota", "retouch"):
        with pytest.raises(ValueError, match="cannot be used in context BOT_DM"):
            await run(global_stack, place, name, subcommand="show")
