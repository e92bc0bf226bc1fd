"""Expected failures with words for the member, and the local layer that shows them."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from services.modelhub import (
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubContentPolicyError,
    ModelHubError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
)

log = logging.getLogger(__name__)


APOLOGY = "Something went wrong inside Retouch; it has been logged. Nothing was charged."


class RetouchError(app_commands.AppCommandError):
    """A refusal or failure the member should read as it is, always ephemeral."""


class InputError(RetouchError):
    """Bad input, caught before anything was spent; `field` names the option at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UpstreamError(RetouchError):
    """The Model Hub failed; the reserved quota has been returned."""


def describe_upstream_error(error: ModelHubError) -> str:
    """Plain words for each kind of upstream failure; none of them carries a URL or a token."""
    refunded = "Nothing was charged."
    if isinstance(error, ModelHubContentPolicyError):
        return f"The Model Hub's content policy rejected this prompt or picture. {refunded}"
    if isinstance(error, ModelHubBadRequestError):
        return f"The Model Hub refused the request: {error.message} {refunded}"
    if isinstance(error, ModelHubAuthenticationError):
        return f"The Model Hub refused Retouch's API token; an operator needs to check IONOS_API_TOKEN. {refunded}"
    if isinstance(error, ModelHubRateLimitError):
        wait = f" in about {error.retry_after:.0f} s" if error.retry_after else " in a minute"
        return f"The Model Hub is rate limiting Retouch right now; please try again{wait}. {refunded}"
    if isinstance(error, ModelHubTimeoutError):
        return f"The Model Hub timed out: {error.message}. {refunded}"
    if isinstance(error, ModelHubUnavailableError):
        return f"The Model Hub is unavailable right now ({error.message}); please try again later. {refunded}"
    if isinstance(error, ModelHubMalformedResponseError):
        return f"The Model Hub sent back a response Retouch could not read ({error.message}). {refunded}"
    return f"The Model Hub failed: {error.message}. {refunded}"


async def send_error(interaction: discord.Interaction, message: str) -> None:
    """Ephemeral words for the member: a reply, or the (ephemeral) deferred response filled in."""
    try:
        if interaction.response.is_done():
            await interaction.edit_original_response(content=message, attachments=[], view=None)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("Could not tell the member about a failure (%s): %s", exc.status, message)


class RetouchCog(commands.Cog):
    """Base for Retouch's cogs: the local error layer for expected failures."""

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, RetouchError):
            await send_error(interaction, str(error))


class NotModerator(RetouchError):
    """A moderator command run by someone without Manage Server."""


class ModeratorGroup(app_commands.Group):
    """Hidden from members by `default_permissions` (servers may re-map it), and checked again at run time."""

    def __init__(self, *, name: str, description: str) -> None:
        super().__init__(
            name=name,
            description=description,
            guild_only=True,
            default_permissions=discord.Permissions(manage_guild=True),
        )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if not interaction.permissions.manage_guild:
            raise NotModerator(f"`/{self.name}` is for moderators: it needs the Manage Server permission.")
        return True
