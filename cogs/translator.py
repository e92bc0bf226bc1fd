"""The command picker in the reader's language: descriptions and choice names through the gettext catalogs.

discord.py asks the translator for every translatable string of every command at sync time, once per
Discord locale, and sends the answers as `description_localizations` and choices' `name_localizations`.
Command, group and option names are never translated: members type them, and they appear in our words.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, locale_str

from services.text import i18n
from services.text.words import Text

_NAMES = {
    TranslationContextLocation.command_name,
    TranslationContextLocation.group_name,
    TranslationContextLocation.parameter_name,
}


def described(template: str, **values: Any) -> locale_str:
    """A description with values: Discord's English is the rendered sentence, translations come from its template."""
    text = Text(template, **values)
    return locale_str(text.render(), text=text)


class RetouchTranslator(app_commands.Translator):
    """Looks descriptions and choice names up in the catalog of the locale's language; None keeps the English."""

    async def translate(
        self, string: locale_str, locale: discord.Locale, context: TranslationContextTypes
    ) -> str | None:
        if context.location in _NAMES:
            return None
        text = string.extras.get("text")
        if isinstance(text, Text):
            translated = isinstance(text.template, str) and i18n.translation(text.template, locale.value)
            return text.render(locale.value) if translated else None
        return i18n.translation(string.message, locale.value)
