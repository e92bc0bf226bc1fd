"""What the extensions share: the base cog with its error layer, the moderators' group, Discord → services adapters."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from typing import Any, TypeVar
from urllib.parse import urlsplit

import discord
from discord import app_commands
from discord.ext import commands

from cogs.failures import report_failure
from services.imaging.pictures import Picture
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)

T = TypeVar("T", app_commands.Command[Any, Any, Any], app_commands.ContextMenu, app_commands.Group)

# discord.py retries a 5xx up to five times with growing sleeps; the undocumented endpoint gets this long in all.
REFRESH_TIMEOUT = 5.0


class RetouchCog(commands.Cog):
    """Base for Retouch's cogs: failures go to the one reporting function."""

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_failure(interaction, error)


# Where a command is offered (Discord's `contexts` and `integration_types`): a member's own commands
# everywhere, through a server's install and through their own (user install: DMs, group DMs, servers
# without the bot); a server's settings only in servers that installed Retouch, where there are moderators.
EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
ANY_INSTALL = app_commands.AppInstallationType(guild=True, user=True)
SERVERS_ONLY = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
SERVER_INSTALL = app_commands.AppInstallationType(guild=True, user=False)


def everywhere(command: T) -> T:
    """Offer a member's command (or menu) in servers, DMs and group DMs, through either install."""
    command.allowed_contexts = EVERYWHERE
    command.allowed_installs = ANY_INSTALL
    return command


class ModeratorGroup(app_commands.Group):
    """Hidden from members by `default_permissions` (servers may re-map it), and checked again at run time."""

    def __init__(self, *, name: str, description: str) -> None:
        super().__init__(
            name=name,
            description=description,
            guild_only=True,
            default_permissions=discord.Permissions(manage_guild=True),
            allowed_contexts=SERVERS_ONLY,
            allowed_installs=SERVER_INSTALL,
        )

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.permissions.manage_guild:
            return True
        # discord.py takes only its own errors from a check: the member is told here, and the CheckFailure
        # that follows finds the failure reported.
        await report_failure(interaction, Refusal(Text(words.NOT_MODERATOR, group=self.name)))
        return False


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


def pictures_of(message: discord.Message, owner_id: int) -> tuple[Picture, ...]:
    """The image attachments and image embeds of a message, in order, as `owner_id`'s pictures."""
    where = {"channel_id": message.channel.id, "message_id": message.id, "author_id": owner_id}
    pictures = [picture_of(a, **where) for a in message.attachments if (a.content_type or "").startswith("image/")]
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            # The proxy URL, not the original: Discord's media proxy is the only host Retouch downloads from.
            if media.proxy_url:
                filename = urlsplit(media.proxy_url).path.rsplit("/", 1)[-1] or "embed"
                # Discord calls it an image; the download is inspected like any other before use.
                content_type = mimetypes.guess_type(filename)[0] or "image/*"
                pictures.append(Picture(media.proxy_url, filename, content_type, 0, media.width, media.height, **where))
    return tuple(pictures)


async def message_pictures(client: discord.Client, channel_id: int, message_id: int) -> tuple[Picture, ...]:
    """A message's pictures read again from Discord (a member's need the MESSAGE_CONTENT intent); () if unreadable."""
    try:
        message = await client.get_partial_messageable(channel_id).fetch_message(message_id)
    except discord.HTTPException:
        return ()
    return pictures_of(message, message.author.id)


async def refreshed_url(http: discord.http.HTTPClient, url: str) -> str | None:
    """A fresh signature for `url` from Discord's (undocumented) refresh endpoint; None when it fails."""
    route = discord.http.Route("POST", "/attachments/refresh-urls")
    try:
        answer = await asyncio.wait_for(http.request(route, json={"attachment_urls": [url]}), REFRESH_TIMEOUT)
    except TimeoutError:
        log.warning("Refreshing an attachment URL took longer than %.0f s; given up", REFRESH_TIMEOUT)
        return None
    except discord.HTTPException as exc:
        log.warning("Could not refresh an attachment URL (HTTP %s)", exc.status)
        return None
    entries = answer.get("refreshed_urls") if isinstance(answer, dict) else None
    refreshed = entries[0].get("refreshed") if entries and isinstance(entries[0], dict) else None
    return refreshed if isinstance(refreshed, str) and refreshed else None


def role_ids_of(member: discord.abc.User) -> tuple[int, ...]:
    return tuple(role.id for role in getattr(member, "roles", []))


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str:
    # Built by hand: a webhook message does not know its guild, so its own jump_url points at DMs.
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"
