"""The catalogs and the machinery: German complete and faithful, any Discord locale served, values formatted."""

from __future__ import annotations

import copy
import re
import string
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from discord.app_commands import TranslationContext, TranslationContextLocation, locale_str

from cogs.translator import RetouchTranslator, described
from services.text import i18n, words
from services.text.words import Text

ROOT = Path(__file__).resolve().parents[3]
LOCALES = ROOT / "services" / "text" / "locales"
# Discord markup, mentions and the edges a template is glued on by: a translation keeps each as often as the English.
MARKUP = re.compile(r"`|\*\*|<[@#][&!]?\{\w+\}>|(?m:^> )|\n|^ | $")
CODE = re.compile(r"`[^`]*`")  # option names, commands and values: never translated


def source_templates() -> set[str]:
    """Every `_()` template and command docstring in services/ and cogs/, extracted as `make translations` does."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: set[str] = set()
    for directory in ("services", "cogs"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / directory, method_map, options_map, keywords={"_": None}
        ):
            found.add(message)
    return found


def read_catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "retouch.po").open("rb") as po:
        return read_po(po)


def placeholders(text: str) -> Counter[str]:
    return Counter(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def problems(catalog: Catalog, templates: set[str]) -> list[str]:
    """What keeps a catalog from serving every template faithfully; empty when it is complete."""
    found = []
    translated = {m.id: m for m in catalog if m.id and m.string and not m.fuzzy}
    found += [f"no translation: {t!r}" for t in sorted(templates - translated.keys())]
    for message in translated.values():
        english, foreign = message.id, message.string
        if placeholders(english) != placeholders(foreign):
            found.append(f"placeholders differ: {english!r} → {foreign!r}")
        if Counter(MARKUP.findall(english)) != Counter(MARKUP.findall(foreign)) or Counter(
            CODE.findall(english)
        ) != Counter(CODE.findall(foreign)):
            found.append(f"markup differs: {english!r} → {foreign!r}")
    return found


@pytest.fixture(scope="module")
def templates() -> set[str]:
    return source_templates()


def test_the_extraction_finds_the_templates_and_the_command_descriptions(templates):
    assert words.PROMPT_BLOCKED in templates and words.OPTION_PROMPT in templates
    assert "Edit a picture with an AI model: describe the change, optionally attach a mask." in templates
    assert "See how many images you have left and when the next one frees up." in templates


def test_the_template_file_is_up_to_date(templates):
    with (LOCALES / "retouch.pot").open("rb") as pot:
        assert {m.id for m in read_po(pot) if m.id} == templates, "run `make translations`"


def test_german_is_complete_and_keeps_every_placeholder_and_markup(templates):
    assert problems(read_catalog("de"), templates) == []


def test_the_check_fails_on_a_missing_german_text_or_a_changed_placeholder(templates):
    catalog = read_catalog("de")
    catalog.add("A new English sentence.", "")
    broken = copy.deepcopy(catalog)
    broken[words.CAPTION_PART].string = " · Teil {nummer}/{total}"
    broken[words.PROMPT_BLOCKED].string = "prompt enthält ein gesperrtes Wort."
    assert sorted(problems(broken, templates | {"A new English sentence."})) == [
        "markup differs: '`prompt` contains a word or phrase this server does not allow.' → "
        "'prompt enthält ein gesperrtes Wort.'",
        "no translation: 'A new English sentence.'",
        "placeholders differ: ' · part {number}/{total}' → ' · Teil {nummer}/{total}'",
    ]


@pytest.mark.parametrize(
    ("locale", "catalog"),
    [("de", "de"), ("de-AT", "de"), ("en-US", None), ("en-GB", None), ("pt-BR", None), ("zh-CN", None), (None, None)],
)
def test_a_discord_locale_maps_to_the_catalog_of_its_language(locale, catalog):
    assert i18n.catalog_name(locale) == catalog


@pytest.mark.parametrize("locale", ["en-US", "es-ES", "pt-BR", "zh-CN", "ja", "xx-YY", None])
def test_languages_without_a_catalog_read_english(locale):
    assert (
        Text(words.COUNT_RANGE, min=1, max=10, count=11).render(locale) == "`count` must be between 1 and 10; got 11."
    )


def test_german_renders_nested_texts_in_german():
    text = Text(words.PICTURE_GONE, reason=Text(words.GONE_AT_DISCORD))
    assert text.render("de") == "Das Bild ist weg: Discord hat es nicht mehr. Es wurde nichts berechnet."
    assert str(text) == "The picture is gone: Discord no longer has it. Nothing was charged."


def test_numbers_dates_and_durations_are_formatted_for_the_locale():
    wait = Text(words.PROGRESS_IN_LINE, place=Text(words.PROGRESS_NEXT), wait=2.5, elapsed=3)
    assert wait.render("de") == "In der Warteschlange: als Nächstes dran · etwa 2,5 s Wartezeit · 3 s vergangen"
    assert wait.render("en-US") == "In line: next · about 2.5 s to wait · 3 s elapsed"
    assert i18n.format_number(12345.5, "de") == "12.345,5" and i18n.format_number(12345.5, "pt-BR") == "12.345,5"
    assert i18n.format_number(12345.5, "en-US") == "12,345.5"
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (
        Text(words.STATUS_NEXT_FREE, when=moment).render("de")
        == f"Das nächste wird <t:{int(moment.timestamp())}:R> frei."
    )
    assert Text(words.REPORT_PER_DAY, days=moment.date()).render("de") == "Pro Tag: 2. Jan."
    assert Text(words.REPORT_PER_DAY, days=moment.date()).render("en-GB") == "Per day: 2 Jan"
    assert Text("{d}", d=timedelta(minutes=5)).render("de") == "5 Minuten"
    assert Text("{d}", d=timedelta(minutes=5)).render("es-ES") == "5 minutos"
    assert Text("{d}", d=timedelta(minutes=5)).render(None) == "5 minutes"


def test_ids_and_sizes_stay_plain_digits_in_every_language():
    text = Text(words.CREDIT_REROLL, link="https://discord.com/channels/1/2/3", user_id=123456789012345678)
    assert text.render("de").endswith("(Original von <@123456789012345678>)")


async def _translated(string: locale_str, locale: discord.Locale, location: TranslationContextLocation) -> str | None:
    return await RetouchTranslator().translate(string, locale, TranslationContext(location, None))


async def test_the_translator_translates_descriptions_and_choice_names_but_never_names():
    german = discord.Locale.german
    description = locale_str(words.OPTION_IMAGE)
    assert await _translated(description, german, TranslationContextLocation.parameter_description) == (
        "Das zu bearbeitende Bild"
    )
    assert await _translated(description, discord.Locale.american_english, TranslationContextLocation.other) is None
    assert await _translated(described(words.OPTION_PROMPT, max=1000), german, TranslationContextLocation.other) == (
        "Was sich ändern soll (bis zu 1000 Zeichen)"
    )
    assert described(words.OPTION_PROMPT, max=1000).message == "What should change (up to 1000 characters)"
    assert await _translated(locale_str("day"), german, TranslationContextLocation.choice_name) == "Tag"
    assert await _translated(locale_str("png"), german, TranslationContextLocation.choice_name) is None
    for location in (
        TranslationContextLocation.command_name,
        TranslationContextLocation.group_name,
        TranslationContextLocation.parameter_name,
    ):
        assert await _translated(locale_str("day"), german, location) is None
