"""The emulated world: users, guilds (roles, channels, members, boost tier, locale; with or without the
bot), DM and group DM channels, and Discord's permission calculation (base permissions from roles, then
channel overwrites)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from .parts import Parts
from .protocol import (
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    MIB,
    ApiError,
    ChannelType,
    ErrorCode,
    Permission,
    iso,
)

# Upload limit per file of a server's members (and bots) by boost tier
# (https://support.discord.com/hc/en-us/articles/360028038352-Server-Boosting-FAQ).
BOOST_TIER_UPLOAD_LIMIT = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
# Without Send Messages, these are implicitly denied as well (Discord's "implicit permissions").
NEEDS_SEND_MESSAGES = Permission.ATTACH_FILES | Permission.EMBED_LINKS | Permission.MENTION_EVERYONE
OVERWRITE_ROLE, OVERWRITE_MEMBER = 0, 1


@dataclass
class Guild:
    """One server. ``roles`` and ``members`` are keyed by id; ``channel_ids`` lists its channels."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, dict] = field(default_factory=dict)
    members: dict[int, dict] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    premium_tier: int = 0
    preferred_locale: str = "en-US"
    # Per user: a fixed permissions value for interaction payloads (see add_member(permissions=)).
    permission_overrides: dict[int, int] = field(default_factory=dict)
    # Per user in a voice channel: its voice state (sent in GUILD_CREATE; see join_voice).
    voice_states: dict[int, dict] = field(default_factory=dict)

    @property
    def upload_limit(self) -> int:
        return BOOST_TIER_UPLOAD_LIMIT[self.premium_tier]


def base_permissions(guild: Guild, user_id: int) -> int:
    """Discord's ``compute_base_permissions``: owner → all; @everyone | member roles; Administrator → all."""
    if user_id == guild.owner_id:
        return ALL_PERMISSIONS
    value = int(guild.roles[guild.id]["permissions"])
    for role_id in guild.members[user_id]["roles"]:
        value |= int(guild.roles[int(role_id)]["permissions"])
    return ALL_PERMISSIONS if value & Permission.ADMINISTRATOR else value


def channel_permissions(guild: Guild, channel: dict, user_id: int) -> int:
    """Discord's ``compute_overwrites`` over the base permissions: the @everyone overwrite, then all of
    the member's role overwrites together, then the member's own; without View Channel nothing is
    left, and without Send Messages neither are attaching, embedding nor mentioning everyone."""
    value = base_permissions(guild, user_id)
    if value & Permission.ADMINISTRATOR or value == ALL_PERMISSIONS:
        return ALL_PERMISSIONS
    return _overwritten(guild, channel, value, [int(role) for role in guild.members[user_id]["roles"]], user_id)


def everyone_permissions(guild: Guild, channel: dict) -> int:
    """What @everyone may do in a channel: an app's ``app_permissions`` in a server its bot is not in
    ("if the app has a bot in the guild, it's the bot's permissions, if not then it will be the
    permissions of @everyone": Discord's announcement of ``app_permissions``, quoted in
    breqdev/flask-discord-interactions#102)."""
    value = int(guild.roles[guild.id]["permissions"])
    if value & Permission.ADMINISTRATOR:
        return ALL_PERMISSIONS
    return _overwritten(guild, channel, value, [], None)


def _overwritten(guild: Guild, channel: dict, value: int, role_ids: list[int], user_id: int | None) -> int:
    overwrites = {(int(o["id"]), int(o["type"])): o for o in channel.get("permission_overwrites") or []}
    everyone = overwrites.get((guild.id, OVERWRITE_ROLE))
    if everyone is not None:
        value = (value & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role_id in role_ids:
        overwrite = overwrites.get((role_id, OVERWRITE_ROLE))
        if overwrite is not None:
            allow |= int(overwrite["allow"])
            deny |= int(overwrite["deny"])
    value = (value & ~deny) | allow
    own = overwrites.get((user_id, OVERWRITE_MEMBER)) if user_id is not None else None
    if own is not None:
        value = (value & ~int(own["deny"])) | int(own["allow"])
    if not value & Permission.VIEW_CHANNEL:
        return 0
    if not value & Permission.SEND_MESSAGES:
        value &= ~NEEDS_SEND_MESSAGES
    return value


class World(Parts):
    """Mixin: the guilds, channels and members of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_world(self) -> None:
        self.application_id = self._snowflake()
        self.bot_user = self._user_payload(self.application_id, "Retouch", bot=True)
        self.users: dict[int, dict] = {self.application_id: self.bot_user}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, dict] = {}
        self.owner: dict = self._new_user("guild-owner")
        guild = self.add_guild(name="Retouch Test Guild", owner=self.owner)
        self.guild_id: int = guild.id
        self.everyone_role_id: int = guild.id
        self.member_role_id: int = self.add_role("Member", 0)
        self.moderator_role_id: int = self.add_role("Moderator", Permission.MANAGE_GUILD)
        self.channel_id: int = self.add_channel("general")
        self.other_channel_id: int = self.add_channel("other")
        self.roles: dict[int, dict] = guild.roles
        self.member: dict = self.add_member(name="member", roles=[self.member_role_id])
        self.moderator: dict = self.add_member(name="moderator", roles=[self.member_role_id, self.moderator_role_id])
        self.other_member: dict = self.add_member(name="other-member", roles=[self.member_role_id])

    # ------------------------------------------------------------------ building the world

    def add_guild(
        self,
        *,
        name: str = "Another Guild",
        owner: dict | None = None,
        premium_tier: int = 0,
        locale: str = "en-US",
        with_bot: bool = True,
    ) -> Guild:
        """Adds a guild with an @everyone role and the bot as a member (with its managed role), or,
        with ``with_bot=False``, a server the bot is not in (its members may still use the app they
        installed to their account there).  Guilds added after login reach the client only through a
        later IDENTIFY; guilds without the bot never do."""
        if premium_tier not in BOOST_TIER_UPLOAD_LIMIT:
            raise ValueError(f"premium_tier must be 0–3, not {premium_tier}")
        owner = owner or self._new_user(f"{name}-owner")
        guild = Guild(self._snowflake(), name, int(owner["id"]), premium_tier=premium_tier, preferred_locale=locale)
        self.guilds[guild.id] = guild
        guild.roles[guild.id] = self._role_payload(guild.id, "@everyone", EVERYONE_PERMISSIONS, 0)
        if with_bot:
            bot_role = self._snowflake()
            guild.roles[bot_role] = self._role_payload(bot_role, "Retouch", BOT_PERMISSIONS, 3, managed=True)
            self._add_member_record(guild, self.bot_user, [bot_role])
        self._add_member_record(guild, owner, [])
        return guild

    def add_role(self, name: str, permissions: int, *, guild_id: int | None = None) -> int:
        """Adds a role (below the bot's) to a guild (default: ``guild_id``) and returns its id."""
        guild = self.guild(guild_id)
        role_id = self._snowflake()
        guild.roles[role_id] = self._role_payload(role_id, name, int(permissions), len(guild.roles))
        return role_id

    def add_channel(self, name: str, *, guild_id: int | None = None) -> int:
        """Adds a text channel to a guild (default: ``guild_id``) and returns its id."""
        return self._add_guild_channel(self.guild(guild_id), name, ChannelType.GUILD_TEXT, {"topic": None})

    def _add_guild_channel(self, guild: Guild, name: str, kind: ChannelType, extra: dict) -> int:
        channel_id = self._snowflake()
        guild.channel_ids.append(channel_id)
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": kind,
            "guild_id": str(guild.id),
            "name": name,
            "position": len(guild.channel_ids) - 1,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            **extra,
        }
        return channel_id

    def join_voice(self, user: dict, *, guild_id: int | None = None) -> int:
        """Puts ``user`` in a new voice channel of a guild (default: ``guild_id``); returns the channel's id.
        Only the voice state of a login's GUILD_CREATE is modelled (no VOICE_STATE_UPDATE, no audio): what makes
        discord.py cache the member without the members intent."""
        guild = self.guild(guild_id)
        voice = {"bitrate": 64000, "user_limit": 0, "rtc_region": None}
        channel_id = self._add_guild_channel(guild, f"voice-{user['id']}", ChannelType.GUILD_VOICE, voice)
        guild.voice_states[int(user["id"])] = {
            "channel_id": str(channel_id),
            "user_id": str(user["id"]),
            "session_id": f"session-{user['id']}",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        return channel_id

    def add_dm_channel(self, user: dict) -> int:
        """Opens a DM channel between ``user`` and the bot and returns its id."""
        channel_id = self._snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": ChannelType.DM,
            "recipients": [user],
            "last_message_id": None,
            "flags": 0,
        }
        return channel_id

    def add_private_channel(self, users: list[dict]) -> int:
        """Opens a channel between users without the bot: a DM for two users, a group DM for more.
        The bot can neither read nor post there; a user who installed the app may use its commands."""
        if len(users) < 2:
            raise ValueError("a DM between users needs two of them (add_dm_channel opens one with the bot)")
        channel_id = self._snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": ChannelType.DM if len(users) == 2 else ChannelType.GROUP_DM,
            "recipients": list(users),
            "last_message_id": None,
            "flags": 0,
        }
        if len(users) > 2:
            self.channels[channel_id] |= {"name": None, "icon": None, "owner_id": users[0]["id"]}
        return channel_id

    def add_member(
        self,
        *,
        name: str,
        roles: list[int] = (),  # type: ignore[assignment]
        permissions: int | None = None,
        guild_id: int | None = None,
    ) -> dict:
        """Adds a new user as a member of a guild (default: ``guild_id``) and returns the user dict.
        ``permissions`` (if given) replaces the computed permissions in interaction payloads.  Members
        added after login appear in interaction payloads only (no GUILD_MEMBER_ADD is sent)."""
        guild = self.guild(guild_id)
        unknown = [role for role in roles if int(role) not in guild.roles]
        if unknown:
            raise ValueError(f"unknown role ids {unknown}")
        user = self._new_user(name)
        self._add_member_record(guild, user, [int(role) for role in roles])
        if permissions is not None:
            guild.permission_overrides[int(user["id"])] = int(permissions)
        return user

    def set_overwrite(
        self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0, member: bool = False
    ) -> None:
        """Sets the permission overwrite of a role (or, with ``member=True``, of a user) on a channel,
        replacing an earlier one for that target.  Changes after login are not sent to the client
        (no CHANNEL_UPDATE): discord.py's cache keeps the old overwrites, Discord enforces the new."""
        channel = self.channels[channel_id]
        kind = OVERWRITE_MEMBER if member else OVERWRITE_ROLE
        kept = [o for o in channel["permission_overwrites"] if (int(o["id"]), o["type"]) != (target_id, kind)]
        kept.append({"id": str(target_id), "type": kind, "allow": str(int(allow)), "deny": str(int(deny))})
        channel["permission_overwrites"] = kept

    def set_role_permissions(self, role_id: int, permissions: int, *, guild_id: int | None = None) -> None:
        """Replaces a role's permissions (not sent to the client after login)."""
        self.guild(guild_id).roles[role_id]["permissions"] = str(int(permissions))

    def guild(self, guild_id: int | None = None) -> Guild:
        """A guild by id (default: the default guild)."""
        try:
            return self.guilds[guild_id or self.guild_id]
        except KeyError:
            raise ApiError(404, ErrorCode.UNKNOWN_GUILD, "Unknown Guild") from None

    def bot_is_in(self, guild: Guild) -> bool:
        return self.application_id in guild.members

    def _guild_of_bot(self, guild_id: int) -> Guild:
        """A guild the bot is in, for its guild routes: any other id, known or not, is 403 50001 Missing
        Access, what Discord answers for the members of a server the bot is not in (discord-api-docs
        #1716) and for its guild commands (discord.py's ``CommandTree.sync``: Forbidden, "the client
        does not have the applications.commands scope in the guild")."""
        guild = self.guilds.get(guild_id)
        if guild is None or not self.bot_is_in(guild):
            raise ApiError(403, ErrorCode.MISSING_ACCESS, "Missing Access")
        return guild

    @staticmethod
    def is_bot_dm(channel: dict) -> bool:
        """A DM between one user and the bot (``add_dm_channel``), not one between users."""
        return channel["type"] == ChannelType.DM and len(channel.get("recipients") or []) == 1

    def permissions_in(self, channel_id: int, user_id: int | None = None) -> int:
        """What ``user_id`` (default: the bot) may do in a channel, by Discord's algorithm.  In a DM
        the bot and the recipient have the DM permissions (view, send, embed, attach, history); in a
        DM between users, a group DM or a server it is not in, the bot has none."""
        channel = self._channel(channel_id)
        user_id = self.application_id if user_id is None else user_id
        if "guild_id" not in channel:
            if user_id == self.application_id and not self.is_bot_dm(channel):
                return 0
            return int(EVERYONE_PERMISSIONS & ~Permission.CHANGE_NICKNAME)
        guild = self.guilds[int(channel["guild_id"])]
        if user_id not in guild.members:
            return 0
        return channel_permissions(guild, channel, user_id)

    # ------------------------------------------------------------------ payloads

    def _new_user(self, name: str) -> dict:
        user = self._user_payload(self._snowflake(), name)
        self.users[int(user["id"])] = user
        return user

    @staticmethod
    def _user_payload(user_id: int, name: str, *, bot: bool = False) -> dict:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": None if bot else name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }

    def _role_payload(self, role_id: int, name: str, permissions: int, position: int, *, managed: bool = False) -> dict:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "permissions": str(int(permissions)),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if managed:
            role["tags"] = {"bot_id": str(self.application_id)}
        return role

    @staticmethod
    def _add_member_record(guild: Guild, user: dict, roles: list[int]) -> None:
        guild.members[int(user["id"])] = {
            "user": user,
            "roles": [str(role) for role in roles],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": iso(time.time()),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def _member_payload(self, guild: Guild, user: dict, channel: dict, permissions: int | None = None) -> dict:
        """The member object of an interaction: ``permissions`` are the member's in that channel."""
        user_id = int(user["id"])
        if user_id not in guild.members:
            raise ValueError(f"user {user_id} is not a member of guild {guild.id}; use add_member()")
        member = copy.deepcopy(guild.members[user_id])
        if permissions is None:
            permissions = guild.permission_overrides.get(user_id)
        if permissions is None:
            permissions = channel_permissions(guild, channel, user_id)
        member["permissions"] = str(permissions)
        return member

    def _guild_create_payload(self, guild: Guild) -> dict:
        members = list(guild.members.values())
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": guild.premium_tier,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": guild.preferred_locale,
            "vanity_url_code": None,
            "max_members": 500000,
            "features": [],
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": [{k: v for k, v in self.channels[cid].items() if k != "guild_id"} for cid in guild.channel_ids],
            "threads": [],
            "members": members,
            "member_count": len(members),
            "large": False,
            "unavailable": False,
            "joined_at": members[0]["joined_at"],
            "voice_states": list(guild.voice_states.values()),
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "incidents_data": None,
        }

    def _channel(self, channel_id: int) -> dict:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise ApiError(404, ErrorCode.UNKNOWN_CHANNEL, "Unknown Channel") from None

    def _require(self, channel_id: int, needed: int) -> None:
        """403 unless the bot has every permission in ``needed`` in the channel: 50001 Missing
        Access without View Channel, else 50013 Missing Permissions (what Discord answers)."""
        have = self.permissions_in(channel_id)
        if not have & Permission.VIEW_CHANNEL:
            raise ApiError(403, ErrorCode.MISSING_ACCESS, "Missing Access")
        if needed & ~have:
            raise ApiError(403, ErrorCode.MISSING_PERMISSIONS, "Missing Permissions")
