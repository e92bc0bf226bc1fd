"""Every text a member or moderator reads, as English templates: the one place translation changes.

A `Text` is a template from this module with its named values; it is rendered only when it is shown,
in the reader's language (the member's `locale` for replies, the server's `guild_locale` for public
messages). Templates are marked with `_` so that Babel can extract them into the gettext catalogs.
Services raise errors carrying a `Text`; the Discord side renders it for the interaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _(template: str) -> str:
    """Marks a template for extraction; the lookup in the reader's language happens in `Text.render`."""
    return template


@dataclass(frozen=True, init=False)
class Text:
    """A member-facing sentence: a template of this module and the values of its placeholders."""

    template: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, template: str, /, **values: Any) -> None:
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", values)

    def render(self, locale: str | None = None) -> str:
        """The sentence for a reader of `locale` (None: English)."""
        values = {
            name: value.render(locale) if isinstance(value, Text) else value for name, value in self.values.items()
        }
        return self.template.format(**values)

    def __str__(self) -> str:
        return self.render()


# Templates follow, grouped by where members meet them. Placeholders are named, never positional, so a
# translation may reorder them.

APOLOGY = _("Something went wrong inside Retouch; it has been logged. Nothing was charged.")


# Pictures too large to read at full size (services.images)

PICTURE_TOO_LARGE_TO_DECODE = _(
    "`{field}` is {width}x{height} ({megapixels} megapixels); a picture Retouch reads at full size (a mask, "
    "a PNG, WebP or GIF, or a photo stored turned) may have at most {limit} megapixels; send a smaller picture."
)

# Cooldowns after repeated upstream rejections (services.rejections); `until` is how the reader's client
# shows the moment the cooldown ends (on Discord a relative timestamp)

COOLING_DOWN = _(
    "The Model Hub refused your last {edits} edits ({images} pictures), which still cost everyone's shared "
    "image rate; you can start the next edit {until}. Nothing was charged."
)
COOLING_DOWN_ENTRY = _("{member}: cooling down until {until} after {edits} refused edits ({images} pictures)")
