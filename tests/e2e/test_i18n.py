"""German end to end: the command picker, a refusal, the quota, progress and the public result, through the emulator.

Replies follow the member's Discord language (`locale`), public messages the server's (`guild_locale`).
"""

from __future__ import annotations

import re

from emulators.modelhub import Fault
from tests.helpers import picture, told
from tests.protocol import EPHEMERAL
from tests.stack import Stack


def speak(stack: Stack, *, member: str, server: str) -> None:
    stack.discord.member_locale = member
    stack.discord.guild().preferred_locale = server


def options_of(command: dict) -> list[dict]:
    """Every option of a command, through its subcommand groups and subcommands."""
    found = []
    for option in command.get("options") or []:
        found.append(option)
        found += options_of(option)
    return found


async def test_the_command_picker_is_german_and_names_stay_as_they_are(stack):
    edit = stack.discord.commands["edit"]
    assert edit["name"] == "edit" and not edit.get("name_localizations")
    assert edit["description_localizations"] == {
        "de": "Bearbeite ein Bild mit einem KI-Modell: Beschreib die Änderung, optional mit einer Maske."
    }
    options = {option["name"]: option for option in edit["options"]}
    assert options["prompt"]["description"] == "What should change (up to 1000 characters)"
    assert options["prompt"]["description_localizations"] == {"de": "Was sich ändern soll (bis zu 1000 Zeichen)"}
    assert all(not option.get("name_localizations") for option in options.values())
    period = next(o for o in options_of(stack.discord.commands["quota"]) if o["name"] == "period")
    assert {c["name"]: c.get("name_localizations") for c in period["choices"]}["day"] == {"de": "Tag"}
    for command in stack.discord.commands.values():
        if command["type"] != 1:  # the message menu has a name only, and names stay English
            assert not command.get("name_localizations")
            continue
        for item in [command, *options_of(command)]:
            german = item.get("description_localizations", {}).get("de")
            assert german and len(german) <= 100, (item["name"], german)  # Discord's limit, as for English
            assert not item.get("name_localizations"), item["name"]


async def test_a_refusal_is_in_the_members_language(stack):
    speak(stack, member="de", server="en-US")
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine", "size": "abc"})
    assert await told(record, "`size`") == (
        "`size` muss `auto` oder BREITExHÖHE sein, beide Seiten Vielfache von 16 zwischen 64 und 2048"
        " (z. B. 1024x1024); angegeben war `abc`."
    )
    assert record.ephemeral
    assert stack.hub.requests == []


async def test_usage_and_a_quota_refusal_in_german(stack):
    speak(stack, member="de", server="de")
    moderator = await stack.discord.slash(
        "quota", {"limit": 1, "period": "day"}, subcommand="default", user=stack.discord.moderator
    )
    assert await told(moderator, "gesetzt") == "Serverstandard auf 1 Bild pro Tag gesetzt."
    _, image = picture(stack, 64, 64)
    await told(await stack.discord.slash("edit", {"image": image, "prompt": "first"}), "Fertig")
    _, image = picture(stack, 64, 64)
    said = await told(await stack.discord.slash("edit", {"image": image, "prompt": "second"}), "übrig")
    assert re.search(
        r"Du hast noch 0 von 1 Bild pro Tag übrig und wolltest 1\. Das nächste wird <t:\d+:R> frei\.", said
    )
    usage = await (await stack.discord.slash("usage", {})).wait_response()
    assert usage["data"]["flags"] & EPHEMERAL
    lines = usage["data"]["content"].split("\n")
    assert lines[0] == "Du hast noch **0 von 1** Bild pro Tag übrig (1 verbraucht)."
    assert re.fullmatch(r"Das nächste wird <t:\d+:R> frei\.", lines[1])
    assert lines[2] == "Andere dürfen deine Bilder remixen (`/remixing allow:False` verbietet es)."
    report = await stack.discord.slash("quota", {"days": 3}, subcommand="report", user=stack.discord.moderator)
    said = await told(report, "Pro Tag")
    assert "**1 Bild** in den letzten 3 Tagen." in said
    assert re.search(r"^Pro Tag: \d+\. \w+\.?: [01], \d+\. \w+\.?: [01], \d+\. \w+\.?: 1$", said, re.MULTILINE), said


async def test_progress_and_the_summary_follow_the_member_and_the_caption_the_server(stack):
    speak(stack, member="de", server="en-US")
    _, image = picture(stack, 64, 64)
    stack.hub.inject(Fault(delay=1))  # progress is shown every 0.2 s in tests
    record = await stack.discord.slash("edit", {"image": image, "prompt": "a red hat"})
    said = await told(record, "Fertig")
    assert "Dein Bild wird geprüft…" in said
    assert re.search(r"^1 Bild wird bearbeitet… \d+ s$", said, re.MULTILINE)
    assert re.search(r"^Fertig: 1 Bild in \d+ s unten gepostet\.$", said, re.MULTILINE)
    [result] = record.followups
    member = stack.discord.member["id"]
    assert result["content"].startswith(f"> a red hat\nRequested by <@{member}> · `")
    labels = [button.get("label") for row in result["components"] for button in row["components"]]
    assert labels == ["Reroll", "Remix", "Region", "Delete", "Zoom out", None, None, None, None]


async def test_the_result_caption_buttons_and_audit_entry_are_in_the_servers_language(stack):
    speak(stack, member="en-US", server="de")
    audit_channel = stack.discord.other_channel_id
    moderator = await stack.discord.slash(
        "retouch", {"channel": audit_channel}, subcommand="audit-log", user=stack.discord.moderator
    )
    assert f"Audit log: <#{audit_channel}>" in await told(moderator, "Saved")  # the moderator reads English
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "a red hat", "size": "64x64"})
    assert "Done: 1 picture posted below" in await told(record, "Done")
    [result] = record.followups
    member = stack.discord.member["id"]
    assert re.fullmatch(rf"> a red hat\nAngefordert von <@{member}> · `[^`]+` · 64x64", result["content"])
    labels = [button.get("label") for row in result["components"] for button in row["components"]]
    assert labels == ["Neu würfeln", "Remixen", "Bereich", "Löschen", "Herauszoomen", None, None, None, None]
    [entry] = [m for m in stack.discord.messages.values() if int(m["channel_id"]) == audit_channel]
    assert entry["content"].startswith(f"<@{member}> hat in <#{stack.discord.channel_id}> bearbeitet · `")
    assert " · 1 von 1 gepostet · https://discord.com/channels/" in entry["content"]
