"""Screening rules and answers (services/domain/screening.py)."""

from __future__ import annotations

import pytest

from services.domain.screening import ScreeningFailed, ScreeningRules, language_of, parse_verdict, rules_of
from services.storage.settings import GuildSettings


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
