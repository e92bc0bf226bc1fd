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
from babel.messages.pofile import read_po, write_po
from discord.app_commands import TranslationContext, TranslationContextLocation, locale_str

from cogs.translator import RetouchTranslator, described
from services.text import i18n, words
from services.text.words import Text

ROOT = Path(__file__).resolve().parents[3]
LOCALES = ROOT / "services" / "text" / "locales"
# Discord markup, mentions and the edges a template is glued on by: a translation keeps each as often as the English.
MARKUP = re.compile(r"`|\*\*|<[@#][&!]?\{\w+\}>|(?m:^> )|\n|^ | $")
CODE = re.compile(r"`[^`]*`")  # option names, commands and values: never translated


def source_templates() -> set[str | tuple[str, str]]:
    """Every `_()` and `_n()` template (a plural as its two forms) and command docstring in services/ and cogs/,
    extracted as `make translations` does."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: set[str | tuple[str, str]] = set()
    for directory in ("services", "cogs"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / directory, method_map, options_map, keywords={"_": None, "_n": (1, 2)}
        ):
            found.add(message)
    return found


def read_catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "retouch.po").open("rb") as po:
        return read_po(po)


def placeholders(text: str) -> Counter[str]:
    return Counter(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def problems(catalog: Catalog, templates: set[str | tuple[str, str]]) -> list[str]:
    """What keeps a catalog from serving every template faithfully; empty when it is complete.

    A plural's every form keeps the English plural's placeholders and markup, except that the first form (the
    one for the number one, in gettext's order) may leave out what the English singular leaves out.
    """
    found = []
    translated = {
        (tuple(m.id) if isinstance(m.id, tuple | list) else m.id): m
        for m in catalog
        if m.id and m.string and not m.fuzzy and (isinstance(m.string, str) or all(m.string))
    }
    found += [f"no translation: {t!r}" for t in sorted(templates - translated.keys(), key=str)]
    for message in translated.values():
        if isinstance(message.id, str):
            singular, english, foreigns = message.id, message.id, [message.string]
        else:
            (singular, english), foreigns = message.id, list(message.string)
        for index, foreign in enumerate(foreigns):
            least = placeholders(singular if index == 0 else english).keys()
            if not least <= placeholders(foreign).keys() <= placeholders(english).keys():
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
    broken[words.RULE_LIMIT.singular].string = ("{limit} Bild pro {period}", "")
    broken[words.REPORT_TOTAL.singular].string = ("**{images}** am letzten Tag.", "**{images}** in den letzten Tagen.")
    assert sorted(problems(broken, templates | {"A new English sentence."})) == [
        "markup differs: '`prompt` contains a word or phrase this server does not allow.' → "
        "'prompt enthält ein gesperrtes Wort.'",
        "no translation: 'A new English sentence.'",
        "no translation: ('{limit} image per {period}', '{limit} images per {period}')",
        "placeholders differ: ' · part {number}/{total}' → ' · Teil {nummer}/{total}'",
        "placeholders differ: '**{images}** in the last {days} days.' → '**{images}** in den letzten Tagen.'",
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
    assert text.render("de") == "Das Bild ist nicht mehr da: Discord hat es nicht mehr. Dir wurde nichts angerechnet."
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


DAY = Text(words.PERIODS["day"])
# Every plural text, with the number 0, 1 and 2: (English, German) for each.
PLURALS: list[tuple[str, dict, tuple[tuple[str, str], tuple[str, str], tuple[str, str]]]] = [
    (
        "N_EDITS",
        {},
        (("0 edits", "0 Bearbeitungen"), ("1 edit", "1 Bearbeitung"), ("2 edits", "2 Bearbeitungen")),
    ),
    ("N_IMAGES", {}, (("0 images", "0 Bilder"), ("1 image", "1 Bild"), ("2 images", "2 Bilder"))),
    ("N_PICTURES", {}, (("0 pictures", "0 Bilder"), ("1 picture", "1 Bild"), ("2 pictures", "2 Bilder"))),
    (
        "N_REFERENCES",
        {},
        (("0 references", "0 Verweise"), ("1 reference", "1 Verweis"), ("2 references", "2 Verweise")),
    ),
    (
        "N_PICTURE_REFERENCES",
        {},
        (
            ("0 picture references", "0 Bildverweise"),
            ("1 picture reference", "1 Bildverweis"),
            ("2 picture references", "2 Bildverweise"),
        ),
    ),
    (
        "N_USAGE_RECORDS",
        {},
        (
            ("0 usage records", "0 Verbrauchseinträge"),
            ("1 usage record", "1 Verbrauchseintrag"),
            ("2 usage records", "2 Verbrauchseinträge"),
        ),
    ),
    ("N_DAYS", {}, (("0 days", "0 Tage"), ("1 day", "1 Tag"), ("2 days", "2 Tage"))),
    (
        "RULE_LIMIT",
        {"period": DAY},
        (
            ("0 images per day", "0 Bilder pro Tag"),
            ("1 image per day", "1 Bild pro Tag"),
            ("2 images per day", "2 Bilder pro Tag"),
        ),
    ),
    (
        "QUOTA_DEFAULT_SET",
        {"period": DAY},
        (
            ("Server default set to 0 images per day.", "Serverstandard auf 0 Bilder pro Tag gesetzt."),
            ("Server default set to 1 image per day.", "Serverstandard auf 1 Bild pro Tag gesetzt."),
            ("Server default set to 2 images per day.", "Serverstandard auf 2 Bilder pro Tag gesetzt."),
        ),
    ),
    (
        "QUOTA_TARGET_SET",
        {"period": DAY, "target": "@Artists"},
        (
            ("@Artists set to 0 images per day.", "@Artists auf 0 Bilder pro Tag gesetzt."),
            ("@Artists set to 1 image per day.", "@Artists auf 1 Bild pro Tag gesetzt."),
            ("@Artists set to 2 images per day.", "@Artists auf 2 Bilder pro Tag gesetzt."),
        ),
    ),
    (
        "QUOTA_BUDGET_SET",
        {"period": DAY},
        (
            ("Server budget set to 0 images per day.", "Serverbudget auf 0 Bilder pro Tag gesetzt."),
            ("Server budget set to 1 image per day.", "Serverbudget auf 1 Bild pro Tag gesetzt."),
            ("Server budget set to 2 images per day.", "Serverbudget auf 2 Bilder pro Tag gesetzt."),
        ),
    ),
    (
        "STATUS_LEFT_YOU",
        {"period": DAY, "remaining": 0, "used": 0},
        (
            (
                "You have **0 of 0** images left this day (used 0).",
                "Du hast noch **0 von 0** Bildern pro Tag übrig (0 verbraucht).",
            ),
            (
                "You have **0 of 1** image left this day (used 0).",
                "Du hast noch **0 von 1** Bild pro Tag übrig (0 verbraucht).",
            ),
            (
                "You have **0 of 2** images left this day (used 0).",
                "Du hast noch **0 von 2** Bildern pro Tag übrig (0 verbraucht).",
            ),
        ),
    ),
    (
        "STATUS_LEFT_THEM",
        {"period": DAY, "remaining": 0, "used": 0},
        (
            (
                "They have **0 of 0** images left this day (used 0).",
                "Dieses Mitglied hat noch **0 von 0** Bildern pro Tag übrig (0 verbraucht).",
            ),
            (
                "They have **0 of 1** image left this day (used 0).",
                "Dieses Mitglied hat noch **0 von 1** Bild pro Tag übrig (0 verbraucht).",
            ),
            (
                "They have **0 of 2** images left this day (used 0).",
                "Dieses Mitglied hat noch **0 von 2** Bildern pro Tag übrig (0 verbraucht).",
            ),
        ),
    ),
    (
        "STATUS_PERSONAL_BUDGET",
        {"period": DAY, "remaining": 0},
        (
            (
                "All personal use together has 0 of 0 images left this day.",
                "Für alle persönliche Nutzung zusammen sind noch 0 von 0 Bildern pro Tag übrig.",
            ),
            (
                "All personal use together has 0 of 1 image left this day.",
                "Für alle persönliche Nutzung zusammen ist noch 0 von 1 Bild pro Tag übrig.",
            ),
            (
                "All personal use together has 0 of 2 images left this day.",
                "Für alle persönliche Nutzung zusammen sind noch 0 von 2 Bildern pro Tag übrig.",
            ),
        ),
    ),
    (
        "SCREENING_REFUSED_RESULTS",
        {"refused": 1, "reason": "Not for all ages."},
        (
            (
                "This server's screening held back 1 of the 0 pictures made for you: Not for all ages. They were not "
                "posted and not charged. If you think that is wrong, press **Appeal** to ask the moderators.",
                "Die Prüfung dieses Servers hat 1 der 0 für dich gemachten Bilder zurückgehalten: Not for all ages. "
                "Sie wurden nicht gepostet und dir nicht angerechnet. Wenn du das für falsch hältst, drück "
                "**Einspruch**, um die Moderatoren zu fragen.",
            ),
            (
                "This server's screening held back the picture made for you: Not for all ages. It was not posted and "
                "not charged. If you think that is wrong, press **Appeal** to ask the moderators.",
                "Die Prüfung dieses Servers hat das für dich gemachte Bild zurückgehalten: Not for all ages. Es wurde "
                "nicht gepostet und dir nicht angerechnet. Wenn du das für falsch hältst, drück **Einspruch**, um die "
                "Moderatoren zu fragen.",
            ),
            (
                "This server's screening held back 1 of the 2 pictures made for you: Not for all ages. They were not "
                "posted and not charged. If you think that is wrong, press **Appeal** to ask the moderators.",
                "Die Prüfung dieses Servers hat 1 der 2 für dich gemachten Bilder zurückgehalten: Not for all ages. "
                "Sie wurden nicht gepostet und dir nicht angerechnet. Wenn du das für falsch hältst, drück "
                "**Einspruch**, um die Moderatoren zu fragen.",
            ),
        ),
    ),
    (
        "STATUS_BUDGET",
        {"period": DAY, "remaining": 0},
        (
            (
                "The server budget has 0 of 0 images left this day.",
                "Im Serverbudget sind noch 0 von 0 Bildern pro Tag übrig.",
            ),
            (
                "The server budget has 0 of 1 image left this day.",
                "Im Serverbudget ist noch 0 von 1 Bild pro Tag übrig.",
            ),
            (
                "The server budget has 0 of 2 images left this day.",
                "Im Serverbudget sind noch 0 von 2 Bildern pro Tag übrig.",
            ),
        ),
    ),
    (
        "QUOTA_MEMBER_REFUSED",
        {"period": DAY, "remaining": 0, "requested": 3, "when": ""},
        (
            (
                "You have 0 of 0 images left this day and asked for 3.",
                "Du hast noch 0 von 0 Bildern pro Tag übrig und wolltest 3.",
            ),
            (
                "You have 0 of 1 image left this day and asked for 3.",
                "Du hast noch 0 von 1 Bild pro Tag übrig und wolltest 3.",
            ),
            (
                "You have 0 of 2 images left this day and asked for 3.",
                "Du hast noch 0 von 2 Bildern pro Tag übrig und wolltest 3.",
            ),
        ),
    ),
    (
        "QUOTA_BUDGET_REFUSED",
        {"period": DAY, "remaining": 0, "requested": 3, "when": ""},
        (
            (
                "This server's image budget is used up: 0 of 0 images left this day, and you asked for 3.",
                "Das Bildbudget dieses Servers ist aufgebraucht: Noch 0 von 0 Bildern pro Tag übrig,"
                " und du wolltest 3.",
            ),
            (
                "This server's image budget is used up: 0 of 1 image left this day, and you asked for 3.",
                "Das Bildbudget dieses Servers ist aufgebraucht: Noch 0 von 1 Bild pro Tag übrig, und du wolltest 3.",
            ),
            (
                "This server's image budget is used up: 0 of 2 images left this day, and you asked for 3.",
                "Das Bildbudget dieses Servers ist aufgebraucht: Noch 0 von 2 Bildern pro Tag übrig,"
                " und du wolltest 3.",
            ),
        ),
    ),
    (
        "QUOTA_FORGIVEN",
        {"target": "@Ann"},
        (
            ("Forgave 0 images of @Ann.", "@Ann wurden 0 Bilder erlassen."),
            ("Forgave 1 image of @Ann.", "@Ann wurde 1 Bild erlassen."),
            ("Forgave 2 images of @Ann.", "@Ann wurden 2 Bilder erlassen."),
        ),
    ),
    (
        "REPORT_TOTAL",
        {"images": Text(words.N_IMAGES, count=5)},
        (
            ("**5 images** in the last 0 days.", "**5 Bilder** in den letzten 0 Tagen."),
            ("**5 images** in the last day.", "**5 Bilder** am letzten Tag."),
            ("**5 images** in the last 2 days.", "**5 Bilder** in den letzten 2 Tagen."),
        ),
    ),
    (
        "REPORT_CHART_TITLE",
        {},
        (
            ("Images per day, last 0 days", "Bilder pro Tag, letzte 0 Tage"),
            ("Images per day, last day", "Bilder am letzten Tag"),
            ("Images per day, last 2 days", "Bilder pro Tag, letzte 2 Tage"),
        ),
    ),
    (
        "QUEUE_MEMBER_FULL",
        {},
        (
            ("you already have 0 edits in line", "du hast schon 0 Bearbeitungen in der Warteschlange"),
            ("you already have 1 edit in line", "du hast schon 1 Bearbeitung in der Warteschlange"),
            ("you already have 2 edits in line", "du hast schon 2 Bearbeitungen in der Warteschlange"),
        ),
    ),
    (
        "QUEUE_GUILD_FULL",
        {},
        (
            ("this server already has 0 edits in line", "dieser Server hat schon 0 Bearbeitungen in der Warteschlange"),
            ("this server already has 1 edit in line", "dieser Server hat schon 1 Bearbeitung in der Warteschlange"),
            ("this server already has 2 edits in line", "dieser Server hat schon 2 Bearbeitungen in der Warteschlange"),
        ),
    ),
    (
        "PROGRESS_EDITING",
        {"elapsed": 4},
        (
            ("Editing 0 pictures… 4 s", "0 Bilder werden bearbeitet… 4 s"),
            ("Editing 1 picture… 4 s", "1 Bild wird bearbeitet… 4 s"),
            ("Editing 2 pictures… 4 s", "2 Bilder werden bearbeitet… 4 s"),
        ),
    ),
    (
        "DONE",
        {"seconds": 9},
        (
            ("Done: 0 pictures posted below in 9 s.", "Fertig: 0 Bilder in 9 s unten gepostet."),
            ("Done: 1 picture posted below in 9 s.", "Fertig: 1 Bild in 9 s unten gepostet."),
            ("Done: 2 pictures posted below in 9 s.", "Fertig: 2 Bilder in 9 s unten gepostet."),
        ),
    ),
    (
        "REENCODED",
        {"limit": "10 MiB", "downscaled": ""},
        (
            (
                "0 pictures were re-encoded as JPEG to fit Discord's 10 MiB upload limit.",
                "0 Bilder wurden als JPEG neu kodiert, damit sie in Discords Upload-Grenze von 10 MiB passen.",
            ),
            (
                "1 picture was re-encoded as JPEG to fit Discord's 10 MiB upload limit.",
                "1 Bild wurde als JPEG neu kodiert, damit es in Discords Upload-Grenze von 10 MiB passt.",
            ),
            (
                "2 pictures were re-encoded as JPEG to fit Discord's 10 MiB upload limit.",
                "2 Bilder wurden als JPEG neu kodiert, damit sie in Discords Upload-Grenze von 10 MiB passen.",
            ),
        ),
    ),
    (
        "SPLIT",
        {"reason": "X"},
        (
            ("Split across 0 messages to fit X.", "Auf 0 Nachrichten verteilt, um X einzuhalten."),
            ("Split across 1 message to fit X.", "Auf 1 Nachricht verteilt, um X einzuhalten."),
            ("Split across 2 messages to fit X.", "Auf 2 Nachrichten verteilt, um X einzuhalten."),
        ),
    ),
    (
        "FAILED_AFTER_DELIVERY",
        {"delivered": 0},
        (
            (
                "0 of 0 pictures were posted and only those were charged; then something went wrong inside Retouch"
                " (it has been logged).",
                "0 von 0 Bildern wurden gepostet und nur diese angerechnet; danach ist in Retouch etwas schiefgegangen"
                " (es wurde protokolliert).",
            ),
            (
                "0 of 1 picture was posted and only that was charged; then something went wrong inside Retouch"
                " (it has been logged).",
                "0 von 1 Bild wurde gepostet und nur das angerechnet; danach ist in Retouch etwas schiefgegangen"
                " (es wurde protokolliert).",
            ),
            (
                "0 of 2 pictures were posted and only those were charged; then something went wrong inside Retouch"
                " (it has been logged).",
                "0 von 2 Bildern wurden gepostet und nur diese angerechnet; danach ist in Retouch etwas schiefgegangen"
                " (es wurde protokolliert).",
            ),
        ),
    ),
]


def every_plural() -> dict[str, words.Plural]:
    return {name: value for name, value in vars(words).items() if isinstance(value, words.Plural)}


def test_every_plural_text_is_tested_with_0_1_and_2():
    assert sorted(name for name, _, _ in PLURALS) == sorted(every_plural())


@pytest.mark.parametrize(("name", "values", "expected"), PLURALS, ids=[name for name, _, _ in PLURALS])
def test_a_plural_text_says_0_1_and_2_in_english_and_german(name, values, expected):
    template = every_plural()[name]
    for n, (english, german) in enumerate(expected):
        text = Text(template, **{**values, template.number: n})
        assert (text.render("en-US"), text.render("de")) == (english, german)


def test_a_plural_text_needs_its_number_as_a_whole_number():
    with pytest.raises(TypeError, match="'limit'"):
        Text(words.RULE_LIMIT, period="day")
    with pytest.raises(TypeError, match="'count'"):
        Text(words.N_IMAGES, count=1.5)


def test_the_catalogs_plural_rule_picks_the_form(tmp_path, monkeypatch):
    """Babel's rule for the language (CLDR's), not English's: Polish has three forms, chosen by the number's end."""
    catalog = Catalog(locale="pl", domain="retouch")
    catalog.add(("{count} image", "{count} images"), ("{count} obraz", "{count} obrazy", "{count} obrazów"))
    folder = tmp_path / "pl" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "retouch.po").open("wb") as po:
        write_po(po, catalog)
    monkeypatch.setattr(i18n, "LOCALES", tmp_path)
    i18n.available_languages.cache_clear()
    try:
        said = [Text(words.N_IMAGES, count=n).render("pl") for n in (0, 1, 2, 5, 22, 25)]
    finally:
        i18n.available_languages.cache_clear()
        i18n._catalog.cache_clear()
    assert said == ["0 obrazów", "1 obraz", "2 obrazy", "5 obrazów", "22 obrazy", "25 obrazów"]


# GLOSSARY.md's German rules that a machine can check: the terms it rules out, parenthetical plurals, the formal
# address, and command descriptions in the imperative (never an infinitive, never a noun phrase).
GERMAN_RULED_OUT = re.compile(
    r"\bberechnet|\bKn[oö]pf|Voreinstellung|\w\((?:e|en|er|n|s)\)|/-\w|\b(?:Ihnen|Ihre[mnrs]?|Euch|Eure?)\b|\bDienst"
)


def german_forms(message) -> list[str]:
    return [message.string] if isinstance(message.string, str) else list(message.string)


def test_german_follows_the_glossary():
    catalog = read_catalog("de")
    assert (LOCALES / "GLOSSARY.md").is_file()
    ruled_out = [
        (message.id, form)
        for message in catalog
        if message.id
        for form in german_forms(message)
        if GERMAN_RULED_OUT.search(form)
    ]
    assert ruled_out == []
    descriptions = [message for message in catalog if "command description" in message.auto_comments]
    assert len(descriptions) >= 20
    assert [message.string for message in descriptions if len(message.string) > 100] == []  # Discord's limit
    first_words = {message.id: message.string.split()[0] for message in descriptions}
    not_imperative = {
        english: word
        for english, word in first_words.items()
        if word.endswith(("en", "ern", "eln")) or word in {"Der", "Die", "Das", "Ein", "Eine", "Einem", "Einer"}
    }
    assert not_imperative == {}


def test_the_glossary_check_catches_what_it_rules_out():
    for wrong in (
        "Es wurde nichts berechnet.",
        "{images} Bild(er)",
        "{count} Nutzungseintrag/-einträge",
        "ihr Löschen-Knopf",
        "Voreinstellung des Servers",
        "Bitte versuchen Sie es später; Ihre Bilder",
        "der Dienst erzeugt",
    ):
        assert GERMAN_RULED_OUT.search(wrong), wrong
    assert not GERMAN_RULED_OUT.search("Dir wurde nichts angerechnet. Sie braucht einen Bildanhang (PNG).")
