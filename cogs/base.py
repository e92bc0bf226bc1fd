"""What every cog shares: the base with its error layer, the moderators' group, Discord → services adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs.failures import RetouchError, report_failure
from services import words
from services.editing import Requester
from services.pictures import Picture
from services.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot


async def acknowledge(interaction: discord.Interaction) -> None:
    """Defer ephemerally, thinking, and count how long the member waited for it (Discord allows 3 s).

    Ephemeral: refusals and progress are the member's own business; the pictures go public.
    """
    await interaction.response.defer(ephemeral=True, thinking=True)
    waited = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    cast("RetouchBot", interaction.client).metrics.interaction_acknowledged(max(waited, 0.0))


class RetouchCog(commands.Cog):
    """Base for Retouch's cogs: failures go to the one reporting function."""

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_failure(interaction, error)


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
            raise NotModerator(Text(words.NOT_MODERATOR, group=self.name))
        return True


def check_member_may_post(interaction: discord.Interaction) -> None:
    """The pictures go public in this channel at the member's request: only where they may post pictures."""
    permissions = interaction.permissions
    if not (permissions.send_messages and permissions.attach_files):
        raise RetouchError(Text(words.MEMBER_MAY_NOT_POST, channel_id=interaction.channel_id))


def picture_of(
    attachment: discord.Attachment,
    *,
    channel_id: int | None,
    message_id: int | None = None,
    author_id: int | None = None,
) -> Picture:
    """The one adapter from Discord's attachment to the services' picture."""
    return Picture(
        url=attachment.url,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        attachment_id=attachment.id,
        channel_id=channel_id,
        message_id=message_id,
        author_id=author_id,
    )


def role_ids_of(member: discord.abc.User) -> tuple[int, ...]:
    return tuple(role.id for role in getattr(member, "roles", []))


def requester_of(interaction: discord.Interaction) -> Requester:
    """Who asked and where; only called for guild interactions."""
    assert interaction.guild_id is not None and interaction.channel_id is not None
    return Requester(interaction.guild_id, interaction.channel_id, interaction.user.id, role_ids_of(interaction.user))


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str:
    # Built by hand: a webhook message does not know its guild, so its own jump_url points at DMs.
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"
