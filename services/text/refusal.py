"""The one refusal: what a member is told when what they asked for is not done, and the field at fault.

Raised by the checks (validation, pictures, regions), by the edit use case and by the rules of remixing, and
carried unchanged to where the member is told: an interaction's reply, the painter's page or a channel, each
rendering `text` in its reader's language. `field` names the option at fault, when one is.
"""

from __future__ import annotations

from services.text.words import Text


class Refusal(Exception):
    """Something a member asked for is refused or could not be done; `text` says why, in their words."""

    def __init__(self, text: Text, *, field: str | None = None) -> None:
        super().__init__(str(text))
        self.text = text
        self.field = field
