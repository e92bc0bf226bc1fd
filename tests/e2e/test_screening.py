"""Issue 19: screening with appeal, through the real bot and both emulators."""

from __future__ import annotations

from emulators.discord import DiscordEmulator
from emulators.modelhub import Fault, ModelHubEmulator
from tests.harness import make_config, running_bot
from tests.helpers import button, labels_of, moderator, picture, told, until, used
from tests.protocol import EPHEMERAL
from tests.stack import assert_nothing_leaked, loopback_stack

REASON = "The prompt asks for a violent scene, which this server does not allow."


async def screening(stack, options: dict) -> str:
    return await moderator(stack, "screening", options, group="retouch")


def in_channel(discord, channel_id: int) -> list[dict]:
    """The bot's own channel messages (not interaction followups), in posting order."""
    return [
        m
        for _, m in sorted(discord.messages.items())
        if int(m["channel_id"]) == channel_id and m.get("webhook_id") is None and m["author"]["bot"]
    ]


async def refused_edit(stack, prompt: str = "a fight"):
    """A member's /edit that the screening model refuses; the record of the interaction."""
    stack.hub.verdict(False, "violence", REASON)
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": prompt, "size": "64x64"})
    await record.wait_for(lambda r: r.original is not None and bool(r.original.get("components")), timeout=20)
    return record


async def test_the_setting_is_shown_saved_and_read_back(stack):
    said = await screening(stack, {"mode": "pictures", "policy": "No-Nudity"})
    assert "Screening: prompts and pictures; policy: no nudity; when a check fails: refuse" in said
    said = await screening(stack, {"mode": "prompts", "policy": "Only cats, please.", "on_failure": "allow"})
    assert "Screening: prompts; policy: your own words: “Only cats, please.”; when a check fails: allow" in said
    shown = await moderator(stack, "show", group="retouch")
    assert "Screening: prompts; policy: your own words: “Only cats, please.”; when a check fails: allow" in shown
    stored = await stack.bot.database.fetch_one(
        "SELECT screening_mode, screening_policy FROM guild_settings WHERE guild_id = ?", stack.discord.guild_id
    )
    assert tuple(stored) == ("prompts", "Only cats, please.")
    said = await screening(stack, {"mode": "off", "policy": "anything"})  # the preset's default: allow
    assert "Screening: off; policy: anything the Model Hub allows; when a check fails: allow" in said


async def test_off_by_default_no_check_is_made(stack):
    _, image = picture(stack, 64, 64)
    await told(await stack.discord.slash("edit", {"image": image, "prompt": "a fight", "size": "64x64"}))
    assert stack.hub.chat_requests == []
    shown = await moderator(stack, "show", group="retouch")
    assert "Screening: off; policy: all ages; when a check fails: refuse" in shown


async def test_a_refused_prompt_costs_no_image_call_and_no_quota(stack):
    await screening(stack, {"mode": "prompts", "policy": "all-ages"})
    record = await refused_edit(stack)
    said = "\n".join(record.texts())
    assert f"This server's screening refused your edit: {REASON} Nothing was charged." in said
    assert record.original["flags"] & EPHEMERAL and labels_of(record.original) == ["Appeal"]
    assert stack.hub.requests == [] and await used(stack) == 0  # no image call, no quota
    [check] = stack.hub.chat_requests
    assert check.status == 200 and check.body["model"] == "mistralai/Mistral-Small-24B-Instruct"
    assert "a fight" in check.text and check.image_urls == []  # prompts only: no picture goes
    assert "children included" in check.system and "in English" in check.system
    metrics = stack.bot.metrics
    assert metrics.screenings.labels("input", "refused")._value.get() == 1
    assert metrics.edits.labels("refused_screening")._value.get() == 1


async def test_an_allowed_edit_is_screened_once_per_check_and_delivered(stack):
    await screening(stack, {"mode": "pictures"})
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "a hat", "size": "64x64", "count": 2})
    await told(record, "Done")
    assert await used(stack) == 2
    # The prompt with the input, then each result: 1 + count chat completions, each with one downsized picture.
    assert len(stack.hub.chat_requests) == 3
    assert all(
        len(c.image_urls) == 1 and c.image_urls[0].startswith("data:image/jpeg;base64,")
        for c in stack.hub.chat_requests
    )


async def test_a_refused_result_is_not_posted_nor_charged(stack):
    await screening(stack, {"mode": "pictures"})
    stack.hub.verdict(True)  # the prompt and the input
    stack.hub.verdict(False, "nudity", "The picture shows nudity.")  # the result
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "a beach", "size": "64x64"})
    said = await told(record, "held back")
    assert "This server's screening held back 1 of the 1 picture(s) made for you: The picture shows nudity." in said
    assert [m for m in record.followups if not m["flags"] & EPHEMERAL] == []  # nothing posted
    assert len(stack.hub.requests) == 1 and await used(stack) == 0  # made upstream, not charged
    assert stack.bot.metrics.screenings.labels("result", "refused")._value.get() == 1


async def test_fail_closed_then_fail_open_on_a_timeout(tmp_path):
    async with loopback_stack(tmp_path, screening_timeout_seconds=1) as stack:
        await screening(stack, {"mode": "prompts", "policy": "all-ages"})  # all ages: closed by default
        stack.hub.inject_chat(Fault(delay=3))
        _, image = picture(stack, 64, 64)
        record = await stack.discord.slash("edit", {"image": image, "prompt": "a hat", "size": "64x64"})
        said = await told(record, "could not be screened")
        assert "this server refuses what it cannot check. Nothing was charged." in said
        assert stack.hub.requests == [] and await used(stack) == 0
        assert stack.bot.metrics.screenings.labels("input", "failed_closed")._value.get() == 1

        await screening(stack, {"mode": "prompts", "on_failure": "allow"})
        stack.hub.inject_chat(Fault(delay=3))
        record = await stack.discord.slash("edit", {"image": image, "prompt": "a hat", "size": "64x64"})
        await told(record, "Done")
        assert len(stack.hub.requests) == 1 and await used(stack) == 1
        assert stack.bot.metrics.screenings.labels("input", "failed_open")._value.get() == 1
        assert_nothing_leaked(stack)


async def test_a_malformed_answer_is_a_failed_check(stack):
    await screening(stack, {"mode": "prompts"})
    stack.hub.inject_chat(Fault(content="Sure! The prompt looks fine to me."))
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "a hat", "size": "64x64"})
    await told(record, "could not be screened")
    assert stack.hub.requests == []


async def appealed(stack, record) -> dict:
    """The member appeals; the case as the moderators see it in the audit channel."""
    audit = stack.discord.other_channel_id
    appeal = await stack.discord.click(record.original, button(record.original, "Appeal"))
    assert "Your appeal is with the moderators." in await told(appeal, "appeal")
    await until(lambda: in_channel(stack.discord, audit), 10, "the appeal in the audit channel")
    [case] = in_channel(stack.discord, audit)
    return case


async def test_an_approved_appeal_runs_and_posts_the_edit_charged_to_the_member(stack):
    await moderator(stack, "audit-log", {"channel": stack.discord.other_channel_id}, group="retouch")
    await screening(stack, {"mode": "prompts"})
    record = await refused_edit(stack, "a sword fight")
    case = await appealed(stack, record)
    member = stack.discord.member["id"]
    assert case["content"].startswith(f"**Appeal** from <@{member}> in <#{stack.discord.channel_id}>")
    assert f"Category: violence. Reason given: {REASON}\n> a sword fight" in case["content"]
    assert [f.filename for f in case["files"]] == ["input.png"] and labels_of(case) == ["Approve", "Deny"]

    again = await stack.discord.click(record.original, button(record.original, "Appeal"))
    await told(again, "You have already appealed this refusal")  # one appeal per case
    assert len(in_channel(stack.discord, stack.discord.other_channel_id)) == 1

    intruder = await stack.discord.click(case, button(case, "Approve"), user=stack.discord.other_member)
    await told(intruder, "Only moderators (Manage Server) can decide appeals.")
    assert stack.hub.requests == [] and labels_of(stack.discord.messages[int(case["id"])]) == ["Approve", "Deny"]

    decision = await stack.discord.click(case, button(case, "Approve"), user=stack.discord.moderator)
    await told(decision, "Approved: the edit runs for")
    await until(lambda: in_channel(stack.discord, stack.discord.channel_id), 20, "the approved edit posted")
    [result] = in_channel(stack.discord, stack.discord.channel_id)
    assert f"<@{member}>" in result["content"] and len(result["files"]) == 1
    assert len(stack.hub.requests) == 1 and await used(stack) == 1  # charged to the member
    assert len(stack.hub.chat_requests) == 1  # approved: not screened again
    decided = stack.discord.messages[int(case["id"])]
    assert decided["components"] == [] and f"Approved by <@{stack.discord.moderator['id']}>." in decided["content"]
    assert stack.bot.metrics.appeals.labels("approved")._value.get() == 1


async def test_a_denied_appeal_tells_the_member_privately(stack):
    await moderator(stack, "audit-log", {"channel": stack.discord.other_channel_id}, group="retouch")
    await screening(stack, {"mode": "prompts"})
    case = await appealed(stack, await refused_edit(stack))
    decision = await stack.discord.click(case, button(case, "Deny"), user=stack.discord.moderator)
    await told(decision, "Denied;")
    member = stack.discord.member["id"]

    def dm() -> list[dict]:
        return [
            m
            for m in stack.discord.messages.values()
            if stack.discord.channels.get(int(m["channel_id"]), {}).get("recipients") == [stack.discord.member]
        ]

    await until(dm, 10, "the member's DM")
    assert "kept the screening's refusal. Nothing was charged." in dm()[0]["content"]
    assert stack.hub.requests == [] and await used(stack) == 0
    assert not any(f"<@{member}>" in m["content"] for m in in_channel(stack.discord, stack.discord.channel_id))
    assert stack.bot.metrics.appeals.labels("denied")._value.get() == 1


async def test_an_appeal_without_an_audit_channel_is_explained(stack):
    await screening(stack, {"mode": "prompts"})
    record = await refused_edit(stack)
    appeal = await stack.discord.click(record.original, button(record.original, "Appeal"))
    await told(appeal, "This server has no audit-log channel, where moderators see appeals")
    assert stack.bot.metrics.appeals.labels("no_audit_channel")._value.get() == 1


async def test_a_restart_between_refusal_and_appeal_and_between_appeal_and_decision(tmp_path):
    async with DiscordEmulator() as discord, ModelHubEmulator() as hub:
        config = make_config(discord, hub, f"sqlite:///{tmp_path / 'retouch.db'}")
        with discord.patch_discord():
            async with running_bot(config, discord) as bot:
                stack = _Running(discord, hub, bot)
                await moderator(stack, "audit-log", {"channel": discord.other_channel_id}, group="retouch")
                await screening(stack, {"mode": "prompts"})
                record = await refused_edit(stack)
            async with running_bot(config, discord) as bot:  # the Appeal button of the run before
                case = await appealed(_Running(discord, hub, bot), record)
            async with running_bot(config, discord) as bot:  # the Approve button of the run before
                stack = _Running(discord, hub, bot)
                decision = await discord.click(case, button(case, "Approve"), user=discord.moderator)
                await told(decision, "Approved")
                await until(lambda: in_channel(discord, discord.channel_id), 20, "the approved edit posted")
                assert len(hub.requests) == 1 and await used(stack) == 1


class _Running:
    """What the helpers read of a stack, for a test that runs the bot twice."""

    def __init__(self, discord: DiscordEmulator, hub: ModelHubEmulator, bot) -> None:
        self.discord, self.hub, self.bot = discord, hub, bot


async def test_german_words(stack):
    stack.discord.guild().preferred_locale = "de"
    await moderator(stack, "audit-log", {"channel": stack.discord.other_channel_id}, group="retouch")
    stack.discord.member_locale = "de"
    shown = await screening(stack, {"mode": "prompts", "policy": "no-real-people"})
    assert "Prüfung: Prompts; Richtlinie: keine echten Personen; wenn eine Prüfung scheitert: ablehnen" in shown
    record = await refused_edit(stack)
    said = "\n".join(record.texts())
    assert f"Die Prüfung dieses Servers hat deine Bearbeitung abgelehnt: {REASON} Es wurde nichts berechnet." in said
    assert labels_of(record.original) == ["Einspruch"]
    assert "in German" in stack.hub.chat_requests[0].system  # the reason is asked for in the member's language
    audit = stack.discord.other_channel_id
    appeal = await stack.discord.click(record.original, button(record.original, "Einspruch"))
    await told(appeal, "Dein Einspruch liegt bei den Moderatoren.")
    await until(lambda: in_channel(stack.discord, audit), 10, "the appeal in the audit channel")
    [case] = in_channel(stack.discord, audit)
    assert "**Einspruch** von" in case["content"]
    assert labels_of(case) == ["Genehmigen", "Ablehnen"]
    denied = await stack.discord.click(case, button(case, "Ablehnen"), user=stack.discord.moderator)
    await told(denied, "Abgelehnt; <@")


async def test_privacy_show_says_what_goes_to_the_screening_model_and_forget_removes_appeal_cases(stack):
    await moderator(stack, "audit-log", {"channel": stack.discord.other_channel_id}, group="retouch")
    await screening(stack, {"mode": "prompts"})
    record = await refused_edit(stack)
    shown = await stack.discord.slash("privacy", {}, subcommand="show")
    said = await told(shown, "screening model")
    assert "**Sent to the screening model** (on the same Model Hub), only where a server turned screening on" in said
    assert "picture references (with the copies) and appeals. Your remixing choice stays" in said

    asked = await stack.discord.slash("privacy", {}, subcommand="forget")
    await asked.wait_for(lambda r: r.original is not None and bool(r.original.get("components")))
    confirmed = await stack.discord.click(asked.original, button(asked.original, "Forget me"))
    await told(confirmed, "Done: Retouch no longer keeps")
    assert await stack.bot.database.fetch_value("SELECT COUNT(*) FROM screening_cases") == 0
    appeal = await stack.discord.click(record.original, button(record.original, "Appeal"))
    await told(appeal, "This case is no longer on record")
    assert in_channel(stack.discord, stack.discord.other_channel_id) == []


async def test_of_two_results_the_refused_one_is_held_back_and_the_other_posted_and_charged(stack):
    audit = stack.discord.other_channel_id
    await moderator(stack, "audit-log", {"channel": audit}, group="retouch")
    await screening(stack, {"mode": "pictures"})
    stack.hub.verdict(True, times=2)  # the prompt with the input, and one result
    stack.hub.verdict(False, "gore", "The picture is gory.")  # the other result
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "a knight", "size": "64x64", "count": 2})
    said = await told(record, "held back")
    assert "held back 1 of the 2 picture(s) made for you: The picture is gory." in said
    public = [m for m in record.followups if not m["flags"] & EPHEMERAL]
    assert [len(m["files"]) for m in public] == [1] and labels_of(record.original) == ["Appeal"]
    assert await used(stack) == 1
    await until(lambda: in_channel(stack.discord, audit), 10, "the audit entry of the posted picture")
    [entry] = in_channel(stack.discord, audit)
    assert "· 1 of 2 posted ·" in entry["content"]
