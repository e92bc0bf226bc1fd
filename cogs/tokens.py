"""One interaction token's life: usable until Discord says otherwise (401/404) or its 15 minutes near the end.

Discord bans an IP that collects 10,000 401/403/429 answers in 10 minutes, so a token Discord refused once
is never used again: progress edits, followups, the final edit and failure notices all ask here first.
The state lives in `interaction.extras`, shared by every part that holds the interaction.
"""

from __future__ import annotations

import discord

from services.limits import INTERACTION_TOKEN_SECONDS

# Past this age the token is not used any more: the margin covers an upload in flight and clock skew.
TOKEN_SAFE_SECONDS = INTERACTION_TOKEN_SECONDS - 60
_DEAD = "retouch.token_dead"


def token_age(interaction: discord.Interaction) -> float:
    return (discord.utils.utcnow() - interaction.created_at).total_seconds()


def token_usable(interaction: discord.Interaction) -> bool:
    """Whether the interaction's token may still be used: Discord has not refused it and it is young enough."""
    return not interaction.extras.get(_DEAD) and token_age(interaction) < TOKEN_SAFE_SECONDS


def token_refused(interaction: discord.Interaction, error: BaseException) -> bool:
    """Whether `error` is Discord refusing the token (401: expired, 404: unknown webhook); if so, it is dead."""
    if isinstance(error, discord.HTTPException) and error.status in (401, 404):
        interaction.extras[_DEAD] = True
        return True
    return False
