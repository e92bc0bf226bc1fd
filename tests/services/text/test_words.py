"""Member-facing words: a `Text` shows its values as its reader's language writes them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.text import words
from services.text.words import Text, joined

MOMENT = datetime(2026, 3, 1, 12, tzinfo=UTC)
VALUES = {
    "number": 2.5,
    "day": date(2026, 3, 1),
    "duration": timedelta(hours=2, minutes=30),
    "moment": MOMENT,
    "inner": Text(words.NOTHING_CHARGED),
    "id": 1234567,
}
TEMPLATE = "{number} | {day} | {duration} | {moment} | {inner} | {id}"


def test_each_kind_of_value_is_written_in_the_readers_language():
    text = Text(TEMPLATE, **VALUES)
    # A decimal comma, a German day and duration, the nested sentence translated; Discord localises the
    # timestamp itself; an id stays plain digits.
    assert text.render("de") == "2,5 | 1. März | 2 Stunden | <t:1772366400:R> | Dir wurde nichts angerechnet. | 1234567"
    assert text.render() == str(text) == "2.5 | Mar 1 | 2 hours | <t:1772366400:R> | Nothing was charged. | 1234567"


def test_joined_sentences_are_each_translated_and_separated_as_asked():
    texts = [Text(words.NOTHING_CHARGED), Text(words.PERIODS["day"])]
    assert joined(texts).render("de") == "Dir wurde nichts angerechnet.\nTag"
    assert joined(texts, " ").render() == "Nothing was charged. day"
    assert joined([]).render() == ""
