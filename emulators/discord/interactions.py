"""Interactions: :class:`InteractionRecord` (what happened to one) and their injection as a user would
cause them (slash command, autocomplete, button or select click, modal submit, message command): in a
server (the bot's, or one only the user installed the app to), in the bot's DM, or in a DM or group DM
between users, each with its ``context``, ``authorizing_integration_owners``, ``locale``/``guild_locale``
and permissions as Discord computes them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .parts import Parts
from .protocol import (
    SELECT_COMPONENT_TYPES,
    CommandType,
    ComponentType,
    IntegrationType,
    InteractionContext,
    InteractionType,
    OptionType,
    Permission,
)
from .validation import find_component
from .world import Guild, channel_permissions, everyone_permissions

DEFAULT_LOCALE = "en-US"
# The app's permissions outside servers: "ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE permissions for
# (G)DMs with other users, and additionally USE_EXTERNAL_EMOJIS for DMs with the app's bot user"
# (Receiving and Responding, the interaction's ``app_permissions``).
PRIVATE_APP_PERMISSIONS = Permission.ATTACH_FILES | Permission.EMBED_LINKS | Permission.MENTION_EVERYONE
BOT_DM_APP_PERMISSIONS = PRIVATE_APP_PERMISSIONS | Permission.USE_EXTERNAL_EMOJIS
# Where each installation reaches: a guild install its servers and the bot's DM ("the value will be "0" if
# the interaction is triggered from a DM with the app's bot user"), a user install also other DMs and
# group DMs ("the PRIVATE_CHANNEL interaction context is only meaningful for commands installed to a
# user"): Receiving and Responding, "Authorizing Integration Owners Object"; Application Commands, "Contexts".
INSTALL_CONTEXTS = {
    IntegrationType.GUILD_INSTALL: {InteractionContext.GUILD, InteractionContext.BOT_DM},
    IntegrationType.USER_INSTALL: set(InteractionContext),
}
# "Partial Channel objects only have id, name, type, permissions, app_permissions, last_message_id,
# last_pin_timestamp, nsfw, parent_id, guild_id, flags, rate_limit_per_user, topic and position" (Receiving
# and Responding); a DM's also carry its recipients.
PARTIAL_CHANNEL_KEYS = (
    "id",
    "name",
    "type",
    "last_message_id",
    "last_pin_timestamp",
    "nsfw",
    "parent_id",
    "guild_id",
    "flags",
    "rate_limit_per_user",
    "topic",
    "position",
    "recipients",
)


class InteractionRecord:
    """Everything that happened to one injected interaction, as Discord saw it.

    ``payload`` is the INTERACTION_CREATE data sent.  ``responses`` holds the accepted callback
    bodies (rejected ones are only in :attr:`DiscordEmulator.calls`; for multipart callbacks the
    ``payload_json``).  ``original`` is the live stored @original message (the "thinking" message
    after a defer, the clicked message after type 6/7, None once deleted).  ``original_edits`` holds
    every PATCH body of @original, ``followups`` the live stored followup messages (the first
    followup after a defer is the @original message itself), each with ``files``: the
    :class:`UploadedFile` list uploaded with it.  ``ephemeral`` tells whether the original response
    is ephemeral; ``forced_ephemeral`` whether Discord makes every response to it ephemeral.
    """

    def __init__(self, payload: dict, *, created: float, size_limit: int) -> None:
        self.id: int = int(payload["id"])
        self.token: str = payload["token"]
        self.payload: dict = payload
        self.responses: list[dict] = []
        self.original: dict | None = None
        self.original_edits: list[dict] = []
        self.followups: list[dict] = []
        self.ephemeral: bool = False
        # A user-installed app in a server without its bot, used by a member without Use External Apps there:
        # Discord makes every response ephemeral, whatever the app asked.
        self.forced_ephemeral: bool = False
        self.created = created
        self.size_limit = size_limit
        self._seen: list[str] = []
        self._changed = asyncio.Condition()

    @property
    def acknowledged(self) -> bool:
        """Whether an initial response (callback) was accepted."""
        return bool(self.responses)

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def user(self) -> dict:
        """Who caused the interaction: the ``member``'s user in a server, the top-level ``user`` elsewhere."""
        member = self.payload.get("member")
        return member["user"] if member is not None else self.payload["user"]

    def texts(self) -> list[str]:
        """Every non-empty content string the user saw for this interaction, in order: callback
        responses, edits of the original (or of followups), followups."""
        return list(self._seen)

    def _saw(self, content: Any) -> None:
        if isinstance(content, str) and content:
            self._seen.append(content)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[InteractionRecord], bool], timeout: float = 10) -> None:
        """Waits until ``predicate(self)`` holds; raises TimeoutError describing the state otherwise."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"interaction {self.id} ({self.payload.get('data', {}).get('name') or self.payload['type']}): "
                    f"condition not met within {timeout}s; responses={self.responses!r} texts={self.texts()!r}"
                ) from None

    async def wait_response(self, timeout: float = 5) -> dict:
        """The first accepted callback body (waits for it)."""
        await self.wait_for(lambda r: bool(r.responses), timeout)
        return self.responses[0]

    async def wait_followups(self, count: int, timeout: float = 10) -> list[dict]:
        """The first ``count`` followup messages (waits for them)."""
        await self.wait_for(lambda r: len(r.followups) >= count, timeout)
        return self.followups[:count]

    def __repr__(self) -> str:
        return f"<InteractionRecord id={self.id} type={self.payload['type']} responses={len(self.responses)}>"


@dataclass
class _Place:
    """Where an interaction happens: its channel, its server (None outside servers), its context, and who
    installed the app there (``authorizing_integration_owners``, before the command narrows it)."""

    channel: dict
    guild: Guild | None
    context: InteractionContext
    owners: dict[str, str]


class Injection(Parts):
    """Mixin: injecting interactions into :class:`~emulators.discord.DiscordEmulator`."""

    install_types: frozenset[IntegrationType]
    _global_commands: dict[tuple[str, int], dict]
    _guild_commands: dict[int, dict[tuple[str, int], dict]]
    # The members' client language when an injected interaction names none (the server's is the guild's).
    member_locale: str = DEFAULT_LOCALE

    # ------------------------------------------------------------------ where, and which command

    def _place(self, channel_id: int, user: dict, user_install: bool) -> _Place:
        """The context of an interaction ``user`` causes in a channel, and the installations behind it:
        the server's (when the bot is in it) or the bot's DM's (guild install), and the user's own when
        ``user_install``.  Raises when the app is not installed anywhere that reaches the channel."""
        place = self._where(channel_id, user, user_install)
        if not place.owners:
            raise ValueError(
                f"the app is not installed where channel {channel_id} is ({place.context.name}): the bot is "
                "not there and the user did not install the app (user_install=True)"
            )
        return place

    def _where(self, channel_id: int, user: dict, user_install: bool) -> _Place:
        channel = self._channel(channel_id)
        guild: Guild | None = None
        owners: dict[str, str] = {}
        guild_install = IntegrationType.GUILD_INSTALL in self.install_types
        if "guild_id" in channel:
            guild = self.guilds[int(channel["guild_id"])]
            context = InteractionContext.GUILD
            if guild_install and self.bot_is_in(guild):
                owners[str(IntegrationType.GUILD_INSTALL)] = str(guild.id)
        else:
            if not any(int(r["id"]) == int(user["id"]) for r in channel.get("recipients") or []):
                raise ValueError(f"user {user['id']} is not a recipient of channel {channel_id}")
            if self.is_bot_dm(channel):
                context = InteractionContext.BOT_DM
                if guild_install:
                    owners[str(IntegrationType.GUILD_INSTALL)] = "0"
            else:
                context = InteractionContext.PRIVATE_CHANNEL
        if user_install:
            if IntegrationType.USER_INSTALL not in self.install_types:
                raise ValueError("the application does not offer a user install (install_types)")
            owners[str(IntegrationType.USER_INSTALL)] = str(user["id"])
        return _Place(channel, guild, context, owners)

    def _usable_installs(self, command: dict, place: _Place) -> set[int]:
        """The installations through which ``command`` can be used at ``place`` (none: not usable).
        Guild commands only in their server ("Guild commands don't support the BOT_DM interaction
        context"); a global command's ``integration_types`` default to the app's install types, and
        null ``contexts`` to every context, except the bot's DM when the deprecated ``dm_permission`` is
        false (Application Commands, the command object and "Contexts")."""
        installs = {int(key) for key in place.owners}
        if "guild_id" in command:
            here = place.guild is not None and command["guild_id"] == str(place.guild.id)
            return {int(IntegrationType.GUILD_INSTALL)} & installs if here else set()
        contexts = command.get("contexts")
        if contexts is None:
            contexts = [
                context
                for context in InteractionContext
                if not (context == InteractionContext.BOT_DM and command.get("dm_permission") is False)
            ]
        if place.context not in contexts:
            return set()
        types = command.get("integration_types") or self.install_types
        return {int(t) for t in types if int(t) in installs and place.context in INSTALL_CONTEXTS[IntegrationType(t)]}

    def _command_at(self, name: str, command_type: int, place: _Place) -> tuple[dict, dict[str, str]]:
        """The synced command a user runs at ``place`` (the server's own first, then the global one),
        and the ``authorizing_integration_owners`` it is used through.  Raises KeyError when no such
        command was synced, ValueError when Discord would not offer it there."""
        key = (name, command_type)
        found = [
            command
            for command in (
                self._guild_commands.get(place.guild.id, {}).get(key) if place.guild is not None else None,
                self._global_commands.get(key),
            )
            if command is not None
        ]
        if not found:
            elsewhere = sorted(str(guild_id) for guild_id, store in self._guild_commands.items() if key in store)
            if elsewhere:
                raise ValueError(
                    f"command {name!r} is synced only to guild(s) {', '.join(elsewhere)}: a guild command cannot "
                    f"be used outside its server ({place.context.name} here); sync it globally"
                )
            synced = sorted(
                f"{n} (type {t})" for store in (self._global_commands, *self._guild_commands.values()) for n, t in store
            )
            raise KeyError(f"the bot has not synced a type-{command_type} command {name!r}; synced: {synced}")
        for command in found:
            usable = self._usable_installs(command, place)
            if usable:
                return command, {key: value for key, value in place.owners.items() if int(key) in usable}
        where = ", ".join(
            f"guild {c['guild_id']} only"
            if "guild_id" in c
            else f"global, contexts {c.get('contexts')}, integration_types {c.get('integration_types')}"
            for c in found
        )
        raise ValueError(
            f"command {name!r} cannot be used in context {place.context.name} with installs {place.owners}: "
            f"it is synced as {where}"
        )

    def _inherited_place(self, message: dict, user: dict, user_install: bool) -> _Place:
        """A click or modal submit on a message: where the message is, authorised as the interaction that
        posted it was (its ``interaction_metadata``), else as a command there would be."""
        metadata = message.get("interaction_metadata")
        if metadata is None:
            return self._place(int(message["channel_id"]), user, user_install)
        place = self._where(int(message["channel_id"]), user, user_install)
        place.owners = dict(metadata["authorizing_integration_owners"])
        return place

    # ------------------------------------------------------------------ payloads

    def _resolve_user(self, guild: Guild | None, channel: dict, value: Any, resolved: dict) -> str:
        if guild is None:
            if not isinstance(value, dict):
                raise ValueError("outside servers, pass user options as user dicts")
            resolved.setdefault("users", {})[value["id"]] = value
            return str(value["id"])
        user = value if isinstance(value, dict) else guild.members[int(value)]["user"]
        member = self._member_payload(guild, user, channel)
        member.pop("user")
        resolved.setdefault("users", {})[user["id"]] = user
        resolved.setdefault("members", {})[user["id"]] = member
        return user["id"]

    def _build_options(
        self,
        guild: Guild | None,
        channel: dict,
        definitions: list[dict],
        values: dict,
        resolved: dict,
        focused: str | None,
    ) -> list[dict]:
        """Builds interaction option objects for ``values`` from the synced option definitions."""
        by_name = {option["name"]: option for option in definitions}
        built = []
        for name, value in values.items():
            if name not in by_name:
                raise KeyError(f"option {name!r} is not defined; defined: {sorted(by_name)}")
            option_type = by_name[name]["type"]
            option: dict[str, Any] = {"name": name, "type": option_type}
            if name == focused:
                option.update(value=value, focused=True)
            elif option_type == OptionType.ATTACHMENT:
                resolved.setdefault("attachments", {})[value["id"]] = value
                option["value"] = value["id"]
            elif option_type == OptionType.USER or (option_type == OptionType.MENTIONABLE and isinstance(value, dict)):
                option["value"] = self._resolve_user(guild, channel, value, resolved)
            elif option_type in (OptionType.ROLE, OptionType.MENTIONABLE):
                if guild is None:
                    raise ValueError(f"option {name!r}: there are no roles outside servers")
                resolved.setdefault("roles", {})[str(value)] = guild.roles[int(value)]
                option["value"] = str(value)
            elif option_type == OptionType.CHANNEL:
                target = self.channels[int(value)]
                resolved.setdefault("channels", {})[str(value)] = {**target, "permissions": "0"}
                option["value"] = str(value)
            else:
                choices = by_name[name].get("choices")
                if choices and value not in [choice["value"] for choice in choices]:
                    raise ValueError(f"{value!r} is not a choice of option {name!r}: {choices}")
                option["value"] = value
            built.append(option)
        if focused is None:
            missing = [o["name"] for o in definitions if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        return built

    def _command_data(
        self,
        name: str,
        options: dict | None,
        subcommand: str | None,
        group: str | None,
        place: _Place,
        user: dict,
        focused: str | None = None,
    ) -> dict:
        """The ``data`` of a slash command (or autocomplete) at ``place``; narrows ``place.owners`` to
        the installations the command is used through."""
        command, place.owners = self._command_at(name, CommandType.CHAT_INPUT, place)
        resolved: dict[str, dict] = {}
        definitions = command.get("options") or []
        path: list[tuple[int, str]] = []
        for part_type, part in ((OptionType.SUB_COMMAND_GROUP, group), (OptionType.SUB_COMMAND, subcommand)):
            if part is None:
                continue
            parent = next((o for o in definitions if o["name"] == part and o["type"] == part_type), None)
            if parent is None:
                raise KeyError(f"command {name!r} has no {part_type.name.lower()} {part!r}")
            definitions = parent.get("options") or []
            path.append((part_type, part))
        built = self._build_options(place.guild, place.channel, definitions, options or {}, resolved, focused)
        for parent_type, parent_name in reversed(path):
            built = [{"name": parent_name, "type": parent_type, "options": built}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": CommandType.CHAT_INPUT, "options": built}
        if "channels" in resolved and place.guild is not None:
            # a channel option carries the member's permissions in that channel
            for channel_key, entry in resolved["channels"].items():
                target = self.channels[int(channel_key)]
                entry["permissions"] = str(channel_permissions(place.guild, target, int(user["id"])))
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    def _app_permissions(self, place: _Place) -> int:
        if place.context == InteractionContext.BOT_DM:
            return int(BOT_DM_APP_PERMISSIONS)
        if place.guild is None:
            return int(PRIVATE_APP_PERMISSIONS)
        if self.bot_is_in(place.guild):
            return self.permissions_in(int(place.channel["id"]))
        return everyone_permissions(place.guild, place.channel)

    async def _inject(
        self,
        kind: InteractionType,
        data: dict,
        place: _Place,
        *,
        user: dict,
        size_limit: int | None = None,
        permissions: int | None = None,
        message: dict | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
    ) -> InteractionRecord:
        """Builds an INTERACTION_CREATE of type ``kind`` at ``place``, sends it to the shard that gets
        its guild's events (shard 0 outside servers) and returns its record.  In a server it carries
        ``guild_id``, a partial ``guild``, ``member`` and ``guild_locale``; elsewhere a top-level
        ``user`` (Receiving and Responding: "member is sent when the interaction is invoked in a guild,
        and user is sent when invoked in a DM")."""
        await asyncio.wait_for(self.ready.wait(), 10)
        channel = {key: value for key, value in place.channel.items() if key in PARTIAL_CHANNEL_KEYS}
        size_limit = self.attachment_size_limit if size_limit is None else size_limit
        payload: dict[str, Any] = {
            "id": str(self._snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": channel["id"],
            "channel": channel,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(self._app_permissions(place)),
            "locale": locale or self.member_locale,
            "entitlements": [],
            "authorizing_integration_owners": place.owners,
            "context": place.context,
            "attachment_size_limit": size_limit,
        }
        guild = place.guild
        if guild is not None:
            member = self._member_payload(guild, user, place.channel, permissions)
            channel["permissions"] = member["permissions"]
            payload |= {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                "member": member,
                "guild_locale": guild_locale or guild.preferred_locale,
            }
        else:
            payload["user"] = user
        if message is not None:
            payload["message"] = self._public(message)
        record = InteractionRecord(payload, created=self.now(), size_limit=size_limit)
        # "If the app is not installed to the server, and the user does not have [Use External Apps], the
        # response will be forced ephemeral" (Permissions, USE_EXTERNAL_APPS; changelog 2024-03-18).
        record.forced_ephemeral = (
            guild is not None
            and str(IntegrationType.GUILD_INSTALL) not in place.owners
            and not int(payload["member"]["permissions"]) & Permission.USE_EXTERNAL_APPS
        )
        self._interactions[record.id] = record
        self._by_token[record.token] = record
        await self._dispatch("INTERACTION_CREATE", payload, guild_id=guild.id if guild is not None else None)
        return record

    # ------------------------------------------------------------------ test-facing

    async def slash(
        self,
        name: str,
        options: dict | None = None,
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        attachment_size_limit: int | None = None,
        permissions: int | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Runs the synced slash command ``name`` as ``user`` (default: ``self.member``) in ``channel_id``
        (default: ``self.channel_id``): a server's channel (context 0), the bot's DM from
        :meth:`add_dm_channel` (context 1) or a channel between users from :meth:`add_private_channel`
        (context 2).  ``user_install``: the user installed the app to their account, which is what
        reaches servers without the bot and channels between users.  Raises as Discord would not offer
        the command there: a guild command outside its server, a global one whose ``contexts`` or
        ``integration_types`` exclude the place.  Option values: str/int/float/bool; attachment dicts
        from :meth:`add_attachment`; user dicts for user options; role ids for role options; channel
        ids for channel options."""
        user = user or self.member
        place = self._place(channel_id or self.channel_id, user, user_install)
        data = self._command_data(name, options, subcommand, group, place, user)
        return await self._inject(
            InteractionType.APPLICATION_COMMAND,
            data,
            place,
            user=user,
            size_limit=attachment_size_limit,
            permissions=permissions,
            locale=locale,
            guild_locale=guild_locale,
        )

    async def autocomplete(
        self,
        name: str,
        options: dict,
        focused: str,
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Sends an autocomplete interaction with ``focused`` as the focused option; its typed text is
        ``options[focused]`` ("" when absent).  Where, and ``user_install``, as for :meth:`slash`."""
        user = user or self.member
        options = {**options, focused: options.get(focused, "")}
        place = self._place(channel_id or self.channel_id, user, user_install)
        data = self._command_data(name, options, subcommand, group, place, user, focused)
        return await self._inject(
            InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE,
            data,
            place,
            user=user,
            locale=locale,
            guild_locale=guild_locale,
        )

    async def click(
        self,
        message: dict,
        custom_id: str,
        *,
        user: dict | None = None,
        values: list[str] | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Clicks the button (or picks ``values`` in the select) ``custom_id`` of ``message``, in the
        message's channel and authorised as the interaction that posted it was (else as a command
        there, ``user_install`` as for :meth:`slash`).  The payload's ``message`` is complete (the
        MESSAGE_CONTENT rule does not apply to it)."""
        message = self.messages.get(int(message["id"]), message)
        component = find_component(message.get("components") or [], custom_id)
        if component is None:
            raise KeyError(f"message {message['id']} has no component {custom_id!r}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in SELECT_COMPONENT_TYPES:
            data["values"] = list(values or [])
            # What Discord's client lets a member pick: between min_values and max_values, among the options.
            low, high = component.get("min_values", 1), component.get("max_values", 1)
            if not low <= len(data["values"]) <= high:
                raise ValueError(f"select {custom_id!r} takes {low}–{high} values, not {data['values']}")
            offered = {option["value"] for option in component.get("options") or []}
            if component["type"] == ComponentType.STRING_SELECT and not offered.issuperset(data["values"]):
                raise ValueError(f"select {custom_id!r} offers {sorted(offered)}, not {data['values']}")
        user = user or self.member
        return await self._inject(
            InteractionType.MESSAGE_COMPONENT,
            data,
            self._inherited_place(message, user, user_install),
            user=user,
            message=message,
            locale=locale,
            guild_locale=guild_locale,
        )

    async def submit_modal(
        self,
        custom_id: str,
        components: list[dict],
        *,
        user: dict | None = None,
        resolved_attachments: list[dict] = (),  # type: ignore[assignment]
        message: dict | None = None,
        channel_id: int | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Submits the modal ``custom_id`` with ``components`` (mirroring the modal: action rows of
        text inputs, or Labels ``{"type": 18, "component": {...}}``).  File-upload values are
        attachment ids whose attachments (from :meth:`add_attachment`: ephemeral) are given in
        ``resolved_attachments``.  A modal opened from ``message`` is submitted where that message is,
        else in ``channel_id`` (default ``self.channel_id``; ``user_install`` as for :meth:`slash`)."""
        data: dict[str, Any] = {"custom_id": custom_id, "components": components}
        if resolved_attachments:
            data["resolved"] = {"attachments": {att["id"]: att for att in resolved_attachments}}
        user = user or self.member
        if message is not None:
            message = self.messages.get(int(message["id"]), message)
            place = self._inherited_place(message, user, user_install)
        else:
            place = self._place(channel_id or self.channel_id, user, user_install)
        return await self._inject(
            InteractionType.MODAL_SUBMIT,
            data,
            place,
            user=user,
            message=message,
            locale=locale,
            guild_locale=guild_locale,
        )

    async def message_command(
        self,
        name: str,
        message: dict,
        *,
        user: dict | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
        user_install: bool = False,
    ) -> InteractionRecord:
        """Runs the synced message context-menu command ``name`` on ``message``, in its channel
        (``user_install`` and the refusals as for :meth:`slash`); the target in
        ``data.resolved.messages`` is complete (the MESSAGE_CONTENT rule does not apply to it)."""
        message = self.messages.get(int(message["id"]), message)
        user = user or self.member
        place = self._place(int(message["channel_id"]), user, user_install)
        command, place.owners = self._command_at(name, CommandType.MESSAGE, place)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": CommandType.MESSAGE,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: self._public(message)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._inject(
            InteractionType.APPLICATION_COMMAND,
            data,
            place,
            user=user,
            locale=locale,
            guild_locale=guild_locale,
        )
