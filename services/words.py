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

# ----------------------------------------------------------------------------- privacy (/privacy)

PRIVACY_SHOW = _(
    "**What Retouch keeps about you**, across every server it shares with you ({servers} so far):\n"
    "- {edits} edit(s) on record, {prompts} of them with the prompt you wrote\n"
    "- {uploads} reference(s) to pictures you uploaded and {results} to results made for you: links to "
    "the Discord attachments, never copies of the pictures\n"
    "- {images} image(s) counting against your quota now ({usage_rows} usage record(s))\n"
    "- Others remixing your pictures: {consent}\n"
    "\n"
    "**For how long**: prompts and picture references for {retention_days} days, after which only the "
    "edit's date, model and size remain; usage counts for {window_days} days; everything of a server "
    "{forget_guild_days} days after Retouch leaves it.\n"
    "\n"
    "**Sent to the IONOS AI Model Hub** (in Germany) for each edit: your prompt, the link to your picture "
    "(or its bytes, when the Model Hub cannot fetch the link), and the mask if you gave one. Not your "
    "name or id.\n"
    "\n"
    "`/privacy forget` deletes your prompts, picture references and preferences."
)
PRIVACY_CONSENT_ALLOWED = _("allowed")
PRIVACY_CONSENT_REFUSED = _("not allowed (you opted out)")
PRIVACY_FORGET_CONFIRM = _(
    "This deletes, in every server: your prompts and the references to your pictures and results "
    "({edits} edit(s), {pictures} picture reference(s)), and your remix preference. Your usage stays only as "
    "counts until it leaves the quota window ({window_days} days at most), so that limits still hold. "
    "Results already posted stay on Discord (their Delete button removes them; use it first) but their "
    "buttons will stop working. This cannot be undone."
)
PRIVACY_FORGET_BUTTON = _("Forget me")
PRIVACY_CANCEL_BUTTON = _("Cancel")
PRIVACY_FORGOTTEN = _("Done: Retouch no longer keeps your prompts, picture references or preferences.")
PRIVACY_CANCELLED = _("Cancelled; nothing was deleted.")
PRIVACY_EXPIRED = _("This confirmation has expired; nothing was deleted. Run `/privacy forget` again.")
PRIVACY_BUSY = _("One of your edits is still running; wait until it has finished, then ask again. Nothing was deleted.")
