"""The painter page's own words (tools, buttons, labels, the script's messages, the error page), translated.

The link the region panel hands out carries the member's Discord locale (`?lang=de`, see `painter_link`), so the
page speaks as the bot does in Discord; a link without it (or with a tag that is not a language tag) falls back to
the browser's first language. The script's messages travel in the page as `data-` attributes of `<body>`: the
Content-Security-Policy allows no inline script, and the script itself is the same file for every language.
"""

from __future__ import annotations

import html
import re

from services.text import i18n
from services.text.words import Text, _

LANGUAGE_PARAMETER = "lang"
# A Discord locale code (`de`, `en-US`, `pt-BR`, `es-419`, `zh-TW`): anything else in the query is ignored.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")

PAGE_TITLE = _("Retouch · Paint the area to change")
HEADING = _("Paint the area to change")
HINT = _("Paint over what should change, write what goes there, then press “{button}”.")
TOOLS = _("Tools")
BRUSH = _("Brush")
RECTANGLE = _("Rectangle")
LASSO = _("Lasso")
ERASER = _("Eraser")
SIZE = _("Size")
INVERT = _("Invert")
UNDO = _("Undo")
CLEAR = _("Clear")
PICTURE = _("The picture to edit")
PAINTED_AREA = _("Painted area")
PROMPT = _("What goes in the painted area")
COUNT = _("Pictures")
SUBMIT = _("Edit")
SENDING = _("Sending…")
UNREACHABLE = _("Retouch could not be reached; check the connection and press “{button}” again.")
PICTURE_FAILED = _("The picture could not be loaded; the link may have expired.")
ERROR_TITLE = _("Retouch · Link not usable")
ERROR_HEADING = _("This link cannot be used")
ERROR_NEXT = _("Nothing was charged. Open the region panel in Discord again for a new link.")


def page_locale(asked: str | None, accept_language: str) -> str | None:
    """The page's language: the link's `lang` when it is a language tag, else the browser's first language."""
    if asked and _LANGUAGE_TAG.fullmatch(asked):
        return asked
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    return first if first and _LANGUAGE_TAG.fullmatch(first) else None


def link_query(locale: str | None) -> str:
    """What a link adds to carry `locale` (`?lang=de`), or nothing."""
    return f"?{LANGUAGE_PARAMETER}={locale}" if locale and _LANGUAGE_TAG.fullmatch(locale) else ""


def _shared(locale: str | None) -> dict[str, str]:
    return {"lang": i18n.catalog_name(locale) or i18n.SOURCE_LANGUAGE}


def page_words(locale: str | None) -> dict[str, str]:
    """painter.html's words, escaped for HTML, by placeholder."""
    button = Text(SUBMIT).render(locale)
    said = {
        "title": Text(PAGE_TITLE),
        "heading": Text(HEADING),
        "hint": Text(HINT, button=button),
        "tools": Text(TOOLS),
        "brush": Text(BRUSH),
        "rectangle": Text(RECTANGLE),
        "lasso": Text(LASSO),
        "eraser": Text(ERASER),
        "size": Text(SIZE),
        "invert": Text(INVERT),
        "undo": Text(UNDO),
        "clear": Text(CLEAR),
        "picture_alt": Text(PICTURE),
        "painted_area": Text(PAINTED_AREA),
        "prompt_label": Text(PROMPT),
        "count_label": Text(COUNT),
        "submit": Text(SUBMIT),
        "sending": Text(SENDING),
        "unreachable": Text(UNREACHABLE, button=button),
        "picture_failed": Text(PICTURE_FAILED),
    }
    return _shared(locale) | {name: html.escape(text.render(locale)) for name, text in said.items()}


def error_words(locale: str | None) -> dict[str, str]:
    """error.html's own words (beside the message), escaped for HTML, by placeholder."""
    said = {"title": Text(ERROR_TITLE), "heading": Text(ERROR_HEADING), "next": Text(ERROR_NEXT)}
    return _shared(locale) | {name: html.escape(text.render(locale)) for name, text in said.items()}
