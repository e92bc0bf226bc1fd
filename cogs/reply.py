"""The reply port: how the edit runner talks to the member who asked, with or without an interaction.

`Reply` is what the runner needs: acknowledge, show progress, post the results publicly, tell the member
something, and end with a summary. `InteractionReply` does it over a `discord.Interaction`: ephemeral words,
followups while its token lives, the channel once the token is dead. `ChannelReply` does it in a channel,
mentioning the member: for the painter's submissions (a link, no interaction) and for a dead token.

A token's life is kept in `interaction.extras`, shared by everything holding the interaction: it is usable
until Discord refuses it (401/404) or its 15 minutes near their end. Discord bans an IP that collects
10,000 401/403/429 answers in 10 minutes, so a token Discord refused once is never used again.
The followups sent are counted there too: an interaction only a user install authorised (a DM, a server
without the bot) takes 5, so results are packed into what is left (`followups_left`).

Ephemeral words of any length go through `send_ephemeral`: one message when they fit, several pages, or a
text file when long, so that no reply that grows with a server's data passes Discord's 2,000 characters.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Protocol, TypeVar

import discord
from discord.utils import MISSING

from services.domain.editing import DeliveryFailed
from services.imaging.limits import (
    DEFAULT_UPLOAD_LIMIT,
    INTERACTION_TOKEN_SECONDS,
    MAX_MESSAGE_CONTENT,
    MAX_REQUEST_BYTES,
    USER_INSTALL_FOLLOWUPS,
)
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)

# Past this age the token is not used any more: the margin covers an upload in flight and clock skew.
TOKEN_SAFE_SECONDS = INTERACTION_TOKEN_SECONDS - 60
_DEAD = "retouch.token_dead"
_FOLLOWUPS = "retouch.followups"  # followups sent with the interaction's token
# In a command's `extras`: the tree defers it before discord.py parses its options (bot.RetouchTree).
ACKNOWLEDGED_FIRST = "retouch.acknowledged_first"
MAX_PAGES = 4  # more pages than this and the whole text goes in an attached file instead
TEXT_FILENAME = "retouch.txt"
_BREAKS = ("\n", ", ", " ")  # where a page may end, best first
NO_PINGS = discord.AllowedMentions.none()


class Reply(Protocol):
    """Where the member who asked is: who they are, where they asked, and how to tell them things."""

    member: discord.User | discord.Member
    guild_id: int | None
    channel_id: int | None
    locale: str | None  # the member's language, for words only they read
    guild_locale: str | None  # the server's, for public words
    private: bool  # the results go to the member alone

    @property
    def server_id(self) -> int | None:
        """The server whose rules apply: where the member asked, if Retouch (its bot) is in it; else personal use."""
        ...

    def time_left(self, deadline: float) -> float | None:
        """Seconds until the member's request is `deadline` seconds old, when there is no channel to fall back to
        once the interaction token dies; None: no end."""
        ...

    def may_post(self) -> bool:
        """Whether the member may post pictures where they asked (the results go public at their request)."""
        ...

    async def acknowledge(self) -> None:
        """Say that the request is being worked on (an interaction has 3 s for it)."""
        ...

    async def progress(self, text: Text) -> None:
        """Show where the edit stands; a courtesy, which may show nothing."""
        ...

    def upload_limit(self) -> int:
        """The bytes the next `post` may carry."""
        ...

    def posts_left(self) -> int | None:
        """How many more messages `post` may send; None: as many as needed."""
        ...

    async def post(self, content: str, files: list[discord.File], view: discord.ui.View) -> discord.Message | None:
        """Post results publicly; None when the way to the member changed on the way (pack for the new limit)."""
        ...

    async def tell(self, text: Text, view: discord.ui.View | None = None) -> None:
        """Words for the member (a refusal, a stop), with `view`'s buttons: privately where that is possible."""
        ...

    async def finish(self, text: Text) -> None:
        """The edit's last words, where the member still waits for them; the results' mention tells a channel."""
        ...


async def defer_thinking(interaction: discord.Interaction) -> None:
    """Defer ephemerally, thinking, unless the tree did already (ACKNOWLEDGED_FIRST); Discord allows 3 s, and
    the metrics time every answer. Ephemeral: refusals and progress are the member's own business; the pictures
    go public."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


def server_of(interaction: discord.Interaction) -> int | None:
    """The server whose rules apply to an interaction: where it happened, if Retouch is installed there.

    The bot is a member of every server that installed Retouch, and that server's interactions reach the
    shard that has it; a user install's DMs and servers without the bot are personal use (None).
    """
    guild_id = interaction.guild_id
    return guild_id if guild_id is not None and interaction.client.get_guild(guild_id) is not None else None


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


def followups_left(interaction: discord.Interaction) -> int | None:
    """How many more followups Discord takes for this interaction; None: no limit.

    "Apps are limited to 5 followup messages per interaction if it was initiated from a user-installed app and
    isn't installed in the server" (Receiving and Responding, Create Followup Message). discord.py tells only
    whether the server's install authorised it, so the bot's own DM reached through both installs counts as
    limited too: packing into fewer messages there costs nothing.
    """
    if interaction.is_guild_integration() or not interaction.is_user_integration():
        return None
    return max(USER_INSTALL_FOLLOWUPS - interaction.extras.get(_FOLLOWUPS, 0), 0)


def followed_up(interaction: discord.Interaction) -> None:
    """Count a followup Discord took (see `followups_left`)."""
    interaction.extras[_FOLLOWUPS] = interaction.extras.get(_FOLLOWUPS, 0) + 1


def paginate(content: str, limit: int = MAX_MESSAGE_CONTENT) -> list[str]:
    """`content` in pages of at most `limit` characters, broken at a line, a list separator or a space."""
    pages: list[str] = []
    while len(content) > limit:
        cut = next((at + len(b) for b in _BREAKS if (at := content.rfind(b, 1, limit - len(b) + 1)) > 0), limit)
        pages.append(content[:cut].rstrip())
        content = content[cut:].lstrip("\n")
    return [*pages, content] if content or not pages else pages


async def send_ephemeral(
    interaction: discord.Interaction,
    content: str,
    *,
    allowed_mentions: discord.AllowedMentions = MISSING,
    view: discord.ui.View | None = None,
) -> None:
    """Reply (or fill in the ephemeral deferral, or follow up) with `content`, however long it is; `view`'s buttons
    go under the first page."""
    pages = paginate(content)
    file: discord.File | None = None
    if len(pages) > MAX_PAGES:
        note = Text(words.LONG_TEXT_ATTACHED, filename=TEXT_FILENAME).render(interaction.locale.value)
        pages = [paginate(content, MAX_MESSAGE_CONTENT - len(note) - 2)[0] + "\n\n" + note]
        file = discord.File(io.BytesIO(content.encode()), filename=TEXT_FILENAME)
    attached: list[discord.File] = [file] if file is not None else MISSING
    response = interaction.response
    if response.is_done() and not token_usable(interaction):
        log.warning("Could not tell interaction %s anything more: its token is dead", interaction.id)
        return
    try:
        first, rest = pages[0], pages[1:]
        buttons = view if view is not None else MISSING
        if not response.is_done():
            await response.send_message(
                first, ephemeral=True, allowed_mentions=allowed_mentions, files=attached, view=buttons
            )
        elif response.type is discord.InteractionResponseType.deferred_channel_message:
            # Every deferral that thinks is ephemeral here; a component's silent deferral is not, and
            # editing its original response would overwrite the message the button is on.
            await interaction.edit_original_response(
                content=first, attachments=[file] if file else [], view=view, allowed_mentions=allowed_mentions
            )
        else:
            await interaction.followup.send(
                first, ephemeral=True, allowed_mentions=allowed_mentions, files=attached, view=buttons
            )
        for page in rest:
            await interaction.followup.send(page, ephemeral=True, allowed_mentions=allowed_mentions)
    except discord.HTTPException as exc:
        token_refused(interaction, exc)
        log.warning("Could not send an ephemeral reply (HTTP %s): %s", exc.status, content[:200])


def bots_own_limit(guild: discord.Guild | None) -> int:
    """What one of the bot's own channel messages may carry: the server's boost tier, and one request's cap.

    Not an interaction's `attachment_size_limit`: that counts the member's Nitro, which the bot has not.
    """
    return min(guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT, MAX_REQUEST_BYTES)


class ChannelReply:
    """The member in a channel: results are posted mentioning them, and nothing is said privately.

    `permissions` are the bot's in the channel; `member_permissions` the member's.
    """

    def __init__(
        self,
        channel: discord.abc.Messageable | None,
        member: discord.User | discord.Member,
        guild: discord.Guild | None,
        *,
        channel_id: int | None,
        permissions: discord.Permissions,
        member_permissions: discord.Permissions,
        locale: str | None,
    ) -> None:
        self.channel = channel
        self.member = member
        self.guild = guild
        self.guild_id: int | None = guild.id if guild is not None else None
        self.channel_id = channel_id
        self.locale = self.guild_locale = locale
        self.permissions = permissions
        self.member_permissions = member_permissions
        self.private = False

    @property
    def server_id(self) -> int | None:
        return self.guild_id

    def time_left(self, deadline: float) -> float | None:
        return None  # the channel stays

    def may_post(self) -> bool:
        return self.member_permissions.send_messages and self.member_permissions.attach_files

    async def acknowledge(self) -> None:
        return None  # nothing is waiting for an answer

    async def progress(self, text: Text) -> None:
        return None  # a channel is no place for progress

    def upload_limit(self) -> int:
        return bots_own_limit(self.guild)

    def posts_left(self) -> int | None:
        return None  # a channel takes message after message

    async def post(self, content: str, files: list[discord.File], view: discord.ui.View) -> discord.Message:
        channel = self.channel
        if channel is None or not (self.permissions.send_messages and self.permissions.attach_files):
            log.warning(
                "I may not post the results of user %s in channel %s; the edit is cancelled and the quota for"
                " undelivered pictures returned",
                self.member.id,
                self.channel_id,
            )
            raise DeliveryFailed(Text(words.TOKEN_EXPIRED_NO_CHANNEL))
        return await channel.send(
            content=content,
            files=files,
            view=view,
            allowed_mentions=discord.AllowedMentions(users=[self.member]),
            suppress_embeds=True,  # a link in the prompt must not unfurl under the bot's name
        )

    async def tell(self, text: Text, view: discord.ui.View | None = None) -> None:
        if self.channel is None:
            return
        content = f"{self.member.mention} {text.render(self.locale)}"
        try:
            await self.channel.send(
                content, allowed_mentions=discord.AllowedMentions(users=[self.member]), view=view or MISSING
            )
        except discord.HTTPException as exc:
            log.warning("Could not tell user %s in channel %s (HTTP %s)", self.member.id, self.channel_id, exc.status)

    async def finish(self, text: Text) -> None:
        return None  # the results mention the member


_Reply = TypeVar("_Reply", bound=ChannelReply)


async def member_reply(
    guild: discord.Guild,
    channel: discord.abc.GuildChannel | discord.Thread,
    member_id: int,
    *,
    me: discord.Member,
    locale: str | None,
    gone: Text,
    kind: type[_Reply],
) -> _Reply:
    """A member of `guild` in `channel` as a `kind` of reply, with the permissions of both as they are now.

    The member is fetched every time: without the members intent the cache never learns of a role taken away.
    Raises a Refusal with `gone` when the member has left the server.
    """
    try:
        member = await guild.fetch_member(member_id)
    except discord.NotFound:
        raise Refusal(gone) from None
    return kind(
        channel if isinstance(channel, discord.abc.Messageable) else None,
        member,
        guild,
        channel_id=channel.id,
        permissions=channel.permissions_for(me),
        member_permissions=channel.permissions_for(member),
        locale=locale,
    )


class InteractionReply:
    """The member through their interaction: ephemeral words and followups while its token lives, then the channel."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.member: discord.User | discord.Member = interaction.user
        self.guild_id: int | None = interaction.guild_id
        self.channel_id: int | None = interaction.channel_id
        self.locale: str | None = interaction.locale.value
        self.guild_locale: str | None = interaction.guild_locale.value if interaction.guild_locale else None
        self.private = False
        self.forced_private = False  # Discord showed the results to the member alone, though they were public
        self._channel: ChannelReply | None = None  # once the results went to the channel
        self._showing: asyncio.Future[None] | None = None  # the progress line on its way

    @property
    def server_id(self) -> int | None:
        return server_of(self.interaction)

    @property
    def has_channel(self) -> bool:
        """Whether public results may go to the channel once the token is dead: only where the bot is a member."""
        return self.server_id is not None and not self.private

    def time_left(self, deadline: float) -> float | None:
        if self.has_channel:
            return None
        return max(deadline - token_age(self.interaction), 0.0)

    @property
    def by_channel(self) -> bool:
        """Results go to the channel: they went there already, or the token is dead and there is a channel."""
        return self._channel is not None or (not token_usable(self.interaction) and self.has_channel)

    def may_post(self) -> bool:
        if self.guild_id is None:
            return True  # a DM or group DM: the member's own conversation, where no permissions apply
        permissions = self.interaction.permissions
        return permissions.send_messages and permissions.attach_files

    async def acknowledge(self) -> None:
        await defer_thinking(self.interaction)

    async def progress(self, text: Text) -> None:
        """Edit the deferred ephemeral response in the background, while the token lives (the edit goes on
        meanwhile); stop for good at its first refusal. Whatever is said next waits for it (`_shown`)."""
        await self._shown()
        self._showing = asyncio.ensure_future(self._show(text))

    async def _shown(self) -> None:
        """Wait for the progress line on its way: the first followup after a deferral *is* the deferred response,
        and a later word must not be overtaken by it. Shielded: a request cancelled while it waits for its rate
        limit keeps discord.py's lock of that route for good."""
        if self._showing is not None:
            await asyncio.shield(self._showing)

    async def _show(self, text: Text) -> None:
        interaction = self.interaction
        if not token_usable(interaction):
            return
        try:
            await interaction.edit_original_response(content=text.render(self.locale))
        except discord.HTTPException as exc:
            # Progress is a courtesy: a failed edit must not stop the job itself.
            if token_refused(interaction, exc):
                log.info(
                    "Discord refused the token of interaction %s (HTTP %s); no more progress",
                    interaction.id,
                    exc.status,
                )
            else:
                log.debug("Could not show progress: %s", exc)
        except Exception:
            # No one awaits this line but the next word, which must not fail for it.
            log.warning("Could not show an edit's progress", exc_info=True)

    def upload_limit(self) -> int:
        if self.by_channel:
            return bots_own_limit(self.interaction.guild)
        return min(self.interaction.filesize_limit, MAX_REQUEST_BYTES)

    def posts_left(self) -> int | None:
        return None if self.by_channel else followups_left(self.interaction)

    async def post(self, content: str, files: list[discord.File], view: discord.ui.View) -> discord.Message | None:
        await self._shown()
        interaction = self.interaction
        if self.by_channel:
            return await self._in_channel().post(content, files, view)
        if not token_usable(interaction):
            # Private results, or a place the bot is not in: the interaction was the only way to the member.
            raise DeliveryFailed(Text(words.TOKEN_EXPIRED_NO_CHANNEL))
        try:
            message = await interaction.followup.send(
                content=content,
                files=files,
                view=view,
                allowed_mentions=NO_PINGS,
                suppress_embeds=True,  # a link in the prompt must not unfurl under the bot's name
                ephemeral=self.private,
                wait=True,
            )
        except discord.HTTPException as exc:
            if not token_refused(interaction, exc):
                raise
            log.info("Discord refused the token of interaction %s; posting to the channel", interaction.id)
            return None
        followed_up(interaction)
        if message.flags.ephemeral and not self.private:
            self.forced_private = True
        return message

    async def tell(self, text: Text, view: discord.ui.View | None = None) -> None:
        await self._shown()
        await send_ephemeral(self.interaction, text.render(self.locale), view=view)

    async def finish(self, text: Text) -> None:
        await self._shown()
        if not self.by_channel:  # otherwise the token is dead, and the mention in the channel told them
            if self.forced_private:  # told once, with the summary
                text = words.joined([text, Text(words.FORCED_PRIVATE)], " ")
            await self.interaction.edit_original_response(content=text.render(self.locale))

    def _in_channel(self) -> ChannelReply:
        """The channel, for an edit that outlived its interaction token."""
        if self._channel is None:
            interaction = self.interaction
            log.info(
                "Edit for user %s outlived its interaction token; posting to channel %s instead",
                interaction.user.id,
                interaction.channel_id,
            )
            channel = interaction.channel
            self._channel = ChannelReply(
                channel if isinstance(channel, discord.abc.Messageable) else None,
                interaction.user,
                interaction.guild,
                channel_id=interaction.channel_id,
                permissions=interaction.app_permissions,
                member_permissions=interaction.permissions,
                locale=self.guild_locale,
            )
        return self._channel
