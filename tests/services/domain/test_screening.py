"""Screening rules and answers (services/domain/screening.py); its checks through the real screening client
against the Model Hub emulator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from emulators.modelhub import SCREENING_MODEL, ChatRequest, Fault, ModelHubEmulator
from services.domain.screening import (
    Screening,
    ScreeningFailed,
    ScreeningRefused,
    ScreeningRules,
    Stage,
    Verdict,
    language_of,
    parse_verdict,
    refusal_text,
    rules_of,
)
from services.imaging.images import screening_data_url
from services.outside.screening import ScreeningClient
from services.outside.secret import Secret
from services.storage.settings import GuildSettings
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text
from tests.images import png_bytes


def test_a_verdict_is_one_json_object_with_the_three_fields() -> None:
    verdict = parse_verdict('{"allowed": false, "category": "nudity", "reason": "Nudity  is\\nnot allowed."}')
    assert (verdict.allowed, verdict.category, verdict.reason) == (False, "nudity", "Nudity is not allowed.")
    fenced = parse_verdict('```json\n{"allowed": true, "category": "none", "reason": "Fine."}\n```')
    assert fenced.allowed is True


@pytest.mark.parametrize(
    "content",
    [
        "Sure! It looks fine.",
        "[true]",
        '{"allowed": "yes", "category": "none", "reason": "Fine."}',
        '{"allowed": true, "reason": "Fine."}',
        '{"allowed": true, "category": "none", "reason": 3}',
    ],
)
def test_anything_else_is_a_malformed_answer(content: str) -> None:
    with pytest.raises(ScreeningFailed) as failed:
        parse_verdict(content)
    assert failed.value.kind == "malformed"


def test_a_failed_check_refuses_for_all_ages_and_allows_for_anything_unless_told() -> None:
    assert not ScreeningRules("prompts", "all-ages").opens_on_failure
    assert not ScreeningRules("prompts", "Only cats.").opens_on_failure
    assert ScreeningRules("prompts", "anything").opens_on_failure
    assert ScreeningRules("prompts", "all-ages", fail_open=True).opens_on_failure
    assert not ScreeningRules("prompts", "anything", fail_open=False).opens_on_failure
    assert "children included" in ScreeningRules("prompts", "all-ages").policy_words
    assert ScreeningRules("prompts", "Only cats.").policy_words == "Only cats."


def test_rules_of_settings_and_languages() -> None:
    assert rules_of(GuildSettings()) == ScreeningRules("off", "all-ages", None)
    assert not rules_of(GuildSettings()).on
    assert rules_of(GuildSettings(screening_mode="bogus")).mode == "off"
    assert rules_of(GuildSettings(screening_mode="pictures", screening_fail_open=True)).opens_on_failure
    assert [language_of(code) for code in ("de", "en-US", None, "pt-BR")] == ["German", "English", "English", "pt-BR"]


# ----------------------------------------------------------------------------- the checks

PICTURE = png_bytes(96, 64)
_TASK = (
    " Answer with exactly one JSON object and nothing else:"
    ' {"allowed": true or false, "category": "one or two words naming what the policy refuses, or none",'
)
_HEAD = "You screen requests to an image-editing bot on a Discord server against the server's policy.\n"


def input_instructions(policy: str, judged: str, language: str) -> str:
    return (
        f"{_HEAD}The server's policy:\n{policy}\n\nJudge {judged}.{_TASK}"
        f' "reason": "one sentence, in {language}, telling the member why"}}.'
    )


def result_instructions(policy: str, language: str) -> str:
    return (
        "You screen pictures an image-editing bot is about to post on a Discord server against the server's"
        f" policy.\nThe server's policy:\n{policy}\n\nJudge the picture, made for the member's prompt.{_TASK}"
        f' "reason": "one sentence, in {language}, telling the member why"}}.'
    )


@dataclass
class Checks:
    """What the screening observer was told: (stage, outcome, seconds) per check."""

    told: list[tuple[str, str, float]] = field(default_factory=list)

    def screened(self, stage: str, outcome: str, seconds: float) -> None:
        self.told.append((stage, outcome, seconds))

    def outcomes(self) -> list[tuple[str, str]]:
        return [(stage, outcome) for stage, outcome, _ in self.told]


def screening(hub: ModelHubEmulator, session: aiohttp.ClientSession, checks: Checks | None = None) -> Screening:
    return Screening(ScreeningClient(session, hub.base_url, Secret(hub.token), SCREENING_MODEL, timeout=5), checks)


async def refused_with_picture(
    hub: ModelHubEmulator,
    session: aiohttp.ClientSession,
    stage: Stage,
    rules: ScreeningRules,
    prompt: str,
    locale: str,
    verdict: Verdict,
) -> tuple[ChatRequest, Checks]:
    """One check at `stage` of `prompt` and PICTURE, which the model refuses with `verdict`: the request the model
    was sent (the picture with it), and what the observer was told (a refusal, timed around the check)."""
    checks = Checks()
    hub.verdict(verdict.allowed, verdict.category, verdict.reason)
    screen = screening(hub, session, checks)
    check = screen.check_input if stage == "input" else screen.check_result
    before = time.monotonic()
    answer = await check(rules, prompt, PICTURE, locale)
    took = time.monotonic() - before
    assert answer == verdict
    [sent] = hub.chat_requests
    assert sent.image_urls == [await screening_data_url(PICTURE)]
    assert checks.outcomes() == [(stage, "refused")]
    assert 0 <= checks.told[0][2] <= took  # measured around the check, not before or after it
    return sent, checks


async def test_an_input_check_shows_the_prompt_and_the_picture_when_pictures_are_screened(hub, session) -> None:
    rules = ScreeningRules("pictures", "no-nudity")
    verdict = Verdict(False, "nudity", "Nacktheit ist hier nicht erlaubt.")
    sent, _ = await refused_with_picture(hub, session, "input", rules, "take her dress off", "de", verdict)
    assert sent.system == input_instructions(
        "Refuse nudity and sexual content of any kind. Everything else is allowed.",
        "the member's prompt and the picture it asks to edit",
        "German",
    )
    assert sent.text == "The member's prompt:\ntake her dress off"


@pytest.mark.parametrize(
    ("mode", "picture"), [("prompts", PICTURE), ("pictures", None)], ids=["prompts screened", "no picture"]
)
async def test_an_input_check_asks_about_the_prompt_alone_without_a_picture_to_screen(
    hub, session, mode, picture
) -> None:
    checks = Checks()
    verdict = await screening(hub, session, checks).check_input(
        ScreeningRules(mode, "No hats."), "a hat", picture, None
    )
    assert verdict == Verdict(True, "none", "Nothing in it goes against the policy.")
    [sent] = hub.chat_requests
    assert sent.system == input_instructions("No hats.", "the member's prompt", "English")
    assert (sent.text, sent.image_urls) == ("The member's prompt:\na hat", [])
    assert checks.outcomes() == [("input", "allowed")]


async def test_a_result_check_shows_the_picture_made_for_the_prompt(hub, session) -> None:
    rules = ScreeningRules("pictures", "all-ages")
    verdict = Verdict(False, "violence", "Trop violent.")
    sent, checks = await refused_with_picture(hub, session, "result", rules, "a dragon", "fr", verdict)
    assert sent.system == result_instructions(rules.policy_words, "French")
    assert sent.text == "The member's prompt:\na dragon"
    await screening(hub, session, checks).check_result(ScreeningRules("prompts", "all-ages"), "a cat", PICTURE, None)
    assert checks.outcomes()[1] == ("result", "allowed")
    assert hub.chat_requests[1].system == result_instructions(
        ScreeningRules("pictures", "all-ages").policy_words, "English"
    )


async def test_a_check_that_fails_refuses_or_allows_as_the_rules_say_unchecked(hub, session) -> None:
    checks = Checks()
    screen = screening(hub, session, checks)
    hub.inject_chat(Fault(status=500), times=2)
    closed = await screen.check_input(ScreeningRules("prompts", "all-ages"), "a cat", None, "en")
    assert closed == Verdict(False, "none", "", unchecked=True)
    opened = await screen.check_result(ScreeningRules("pictures", "anything"), "a cat", PICTURE, "en")
    assert opened == Verdict(True, "none", "", unchecked=True)
    assert checks.outcomes() == [("input", "failed_closed"), ("result", "failed_open")]
    assert [sent.status for sent in hub.chat_requests] == [500, 500]


async def test_a_screening_without_an_observer_still_checks(hub, session) -> None:
    hub.verdict(False, "hats", "No hats.")
    screen = screening(hub, session)
    assert await screen.check_input(ScreeningRules("prompts", "No hats."), "a hat", None, None) == Verdict(
        False, "hats", "No hats."
    )
    hub.inject_chat(Fault(status=500))
    unchecked = await screen.check_result(ScreeningRules("pictures", "No hats."), "a hat", PICTURE, None)
    assert unchecked == Verdict(False, "none", "", unchecked=True)


# ----------------------------------------------------------------------------- what the member reads

APPEAL = "If you think that is wrong, press **Appeal** to ask the moderators."


def test_a_refused_prompt_says_the_models_reason_and_that_nothing_was_charged() -> None:
    text = refusal_text(Verdict(False, "hats", "Hats are not allowed here."))
    assert text == Text(
        words.SCREENING_REFUSED_PROMPT, reason="Hats are not allowed here.", charged=Text(words.NOTHING_CHARGED)
    )
    assert text.render() == (
        f"This server's screening refused your edit: Hats are not allowed here. Nothing was charged. {APPEAL}"
    )


def test_held_back_results_say_how_many_of_how_many_and_why() -> None:
    verdict = Verdict(False, "hats", "Hats are not allowed here.")
    assert refusal_text(verdict, refused=2, count=3).render() == (
        "This server's screening held back 2 of the 3 pictures made for you: Hats are not allowed here. They were"
        f" not posted and not charged. {APPEAL}"
    )
    assert refusal_text(verdict, refused=1, count=1).render() == (
        "This server's screening held back the picture made for you: Hats are not allowed here. It was not posted"
        f" and not charged. {APPEAL}"
    )


@pytest.mark.parametrize(("refused", "count"), [(0, 0), (1, 2)])
def test_an_unchecked_refusal_says_the_check_could_not_be_made(refused: int, count: int) -> None:
    text = refusal_text(Verdict(False, "none", "", unchecked=True), refused, count)
    assert text.render() == (
        "Your edit could not be screened just now, and this server refuses what it cannot check. Nothing was"
        " charged. Try again in a moment, or press **Appeal** to ask the moderators."
    )


def test_a_screening_refusal_names_the_screening_and_carries_its_case() -> None:
    text = Text(words.SCREENING_REFUSED_PROMPT, reason="No hats.", charged=Text(words.NOTHING_CHARGED))
    refused = ScreeningRefused(text, 42)
    assert isinstance(refused, Refusal)
    assert (refused.text, refused.field, refused.case_id) == (text, "screening", 42)
    assert str(refused) == text.render()
