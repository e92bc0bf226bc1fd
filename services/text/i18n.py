"""The reader's language: gettext catalogs read from the `.po` files at run time, and Babel's formats.

English is the source language, so it has no catalog: a template without a translation is shown as
written. A template with plural forms (gettext's `msgid_plural`) picks its form by the catalog's
`Plural-Forms` rule, which Babel writes for each language from CLDR's plural rules; English's is `n != 1`.
Any Discord locale code (`de`, `en-US`, `pt-BR`, `zh-CN`, …) maps to the catalog of its exact
region (`pt_BR`) if there is one, else of its language (`pt`). The `.po` files are parsed on first use
with Babel's `read_po`, so no compile step stands between a translator's edit and the bot.
"""

from __future__ import annotations

import functools
import gettext
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from importlib import resources

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_timedelta
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

log = logging.getLogger(__name__)

DOMAIN = "retouch"
SOURCE_LANGUAGE = "en"
LOCALES = resources.files("services.text").joinpath("locales")


def _candidates(locale: str) -> tuple[str, ...]:
    """Catalog names to try for a Discord locale code, most specific first: `pt-BR` → `pt_BR`, `pt`."""
    code = locale.replace("-", "_")
    language = code.split("_", 1)[0].lower()
    return (code, language) if code != language else (language,)


@functools.cache
def available_languages() -> frozenset[str]:
    """The catalogs shipped in `services/text/locales/<name>/LC_MESSAGES/retouch.po`."""
    return frozenset(
        entry.name for entry in LOCALES.iterdir() if entry.joinpath("LC_MESSAGES", f"{DOMAIN}.po").is_file()
    )


def catalog_name(locale: str | None) -> str | None:
    """The catalog serving `locale`, or None when it is read in English (the source, or no catalog)."""
    if not locale:
        return None
    return next((name for name in _candidates(locale) if name in available_languages()), None)


class _Catalog:
    """One language's translations: plain templates, plural templates with their forms, and its plural rule."""

    def __init__(self, name: str) -> None:
        with LOCALES.joinpath(name, "LC_MESSAGES", f"{DOMAIN}.po").open("rb") as po:
            catalog = read_po(po, locale=name, domain=DOMAIN)
        # Untranslated and fuzzy entries are left out, and so is a plural entry missing any of its forms.
        translated = [message for message in catalog if message.id and not message.fuzzy]
        self.messages: dict[str, str] = {
            m.id: m.string for m in translated if isinstance(m.id, str) and isinstance(m.string, str) and m.string
        }
        self.plurals: dict[tuple[str, str], tuple[str, ...]] = {
            (m.id[0], m.id[1]): tuple(m.string)
            for m in translated
            if isinstance(m.id, tuple | list) and isinstance(m.string, tuple | list) and all(m.string)
        }
        # The header's `plural=` expression, as gettext evaluates it (C syntax: `(n != 1)`, `(n==1 ? 0 : …)`).
        self.form: Callable[[int], int] = gettext.c2py(catalog.plural_expr)


@functools.cache
def _catalog(name: str) -> _Catalog:
    return _Catalog(name)


def translation(template: str, locale: str | None) -> str | None:
    """The template in the language of `locale`, or None when that language has no translation of it."""
    name = catalog_name(locale)
    if name is None or not template:
        return None
    return _catalog(name).messages.get(template)


def plural_translation(singular: str, plural: str, n: int, locale: str | None) -> str:
    """gettext's ngettext: the form of a plural template for the number `n`, in the language of `locale`."""
    name = catalog_name(locale)
    if name is not None:
        catalog = _catalog(name)
        forms = catalog.plurals.get((singular, plural))
        if forms is not None:
            return forms[min(catalog.form(n), len(forms) - 1)]
    return singular if n == 1 else plural


@functools.cache
def babel_locale(locale: str | None) -> Locale:
    """Babel's locale for a Discord locale code (its formats of numbers and durations); English if unknown."""
    if locale:
        for code in _candidates(locale):
            try:
                return Locale.parse(code)
            except (UnknownLocaleError, ValueError):
                continue
        log.debug("No Babel locale for %r; formatting in English", locale)
    return Locale.parse(SOURCE_LANGUAGE)


def format_number(value: float, locale: str | None) -> str:
    """A number with the locale's decimal and group separators (`1,234.5` in English, `1.234,5` in German)."""
    return format_decimal(value, locale=babel_locale(locale))


def format_duration(value: timedelta, locale: str | None) -> str:
    """A duration in words, rounded to its largest unit (`5 minutes`, `5 Minuten`)."""
    return format_timedelta(value, locale=babel_locale(locale))


def format_day(day: date, locale: str | None) -> str:
    """A calendar day without the year, in the locale's order and words (`Dec 2`, `2. Dez.`)."""
    return format_skeleton("MMMd", day, locale=babel_locale(locale))


def discord_timestamp(moment: datetime, style: str = "R") -> str:
    # Discord renders this markup in every reader's own language and time zone.
    return f"<t:{int(moment.timestamp())}:{style}>"
