"""Interactions: :class:`InteractionRecord` (what happened to one) and their injection as a member
would cause them (slash command, autocomplete, button or select click, modal submit, message command),
each with ``locale``/``guild_locale`` and permissions from the channel's calculation."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from .parts import Parts
from .protocol import (
    SELECT_COMPONENT_TYPES,
    CommandType,
    ComponentType,
    InteractionType,
    OptionType,
)
from .validation import find_component
from .world import Guild, channel_permissions

DEFAULT_LOCALE = "en-US"


class InteractionRecord:
    """Everything that happened to one injected interaction, as Discord saw it.

    ``payload`` is the INTERACTION_CREATE data sent.  ``responses`` holds the accepted callback
    bodies (rejected ones are only in :attr:`DiscordEmulator.calls`; for multipart callbacks the
    ``payload_json``).  ``original`` is the live stored @original message (the "thinking" message
    after a defer, the clicked message after type 6/7, None once deleted).  ``original_edits`` holds
    every PATCH body of @original, ``followups`` the live stored followup messages (the first
    followup after a defer is the @original message itself), each with ``files``: the
    :class:`UploadedFile` list uploaded with it.  ``ephemeral`` tells whether the original response
    is ephemeral.
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


class Injection(Parts):
    """Mixin: injecting interactions into :class:`~emulators.discord.DiscordEmulator`."""

    # The members' client language when an injected interaction names none (the server's is the guild's).
    member_locale: str = DEFAULT_LOCALE

    def _guild_of(self, channel_id: int) -> Guild:
        return self.guilds[int(self._channel(channel_id)["guild_id"])]

    def _resolve_user(self, guild: Guild, channel: dict, value: Any, resolved: dict) -> str:
        user = value if isinstance(value, dict) else guild.members[int(value)]["user"]
        member = self._member_payload(guild, user, channel)
        member.pop("user")
        resolved.setdefault("users", {})[user["id"]] = user
        resolved.setdefault("members", {})[user["id"]] = member
        return user["id"]

    def _build_options(
        self, guild: Guild, channel: dict, definitions: list[dict], values: dict, resolved: dict, focused: str | None
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
        channel_id: int,
        user: dict,
        focused: str | None = None,
    ) -> dict:
        guild, channel = self._guild_of(channel_id), self._channel(channel_id)
        command = self._find_command(name, CommandType.CHAT_INPUT, guild.id)
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
        built = self._build_options(guild, channel, definitions, options or {}, resolved, focused)
        for parent_type, parent_name in reversed(path):
            built = [{"name": parent_name, "type": parent_type, "options": built}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": CommandType.CHAT_INPUT, "options": built}
        if "channels" in resolved:  # a channel option carries the member's permissions in that channel
            for channel_key, entry in resolved["channels"].items():
                target = self.channels[int(channel_key)]
                entry["permissions"] = str(channel_permissions(guild, target, int(user["id"])))
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    async def _inject(
        self,
        kind: InteractionType,
        data: dict,
        *,
        user: dict | None,
        channel_id: int | None = None,
        size_limit: int | None = None,
        permissions: int | None = None,
        message: dict | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
    ) -> InteractionRecord:
        """Builds an INTERACTION_CREATE of type ``kind``, sends it to the guild's shard and returns its record."""
        await asyncio.wait_for(self.ready.wait(), 10)
        channel_id = channel_id or self.channel_id
        channel = self._channel(channel_id)
        guild = self._guild_of(channel_id)
        member = self._member_payload(guild, user or self.member, channel, permissions)
        size_limit = self.attachment_size_limit if size_limit is None else size_limit
        payload: dict[str, Any] = {
            "id": str(self._snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
            "channel_id": str(channel_id),
            "channel": {**channel, "permissions": member["permissions"]},
            "member": member,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(self.permissions_in(channel_id)),
            "locale": locale or self.member_locale,
            "guild_locale": guild_locale or guild.preferred_locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": size_limit,
        }
        if message is not None:
            payload["message"] = self._public(message)
        record = InteractionRecord(payload, created=self.now(), size_limit=size_limit)
        self._interactions[record.id] = record
        self._by_token[record.token] = record
        await self._dispatch("INTERACTION_CREATE", payload, guild_id=guild.id)
        return record

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
    ) -> InteractionRecord:
        """Runs the synced slash command ``name`` as ``user`` (default: ``self.member``) in ``channel_id``
        (default: ``self.channel_id``; its guild decides the shard).  Option values: str/int/float/bool;
        attachment dicts from :meth:`add_attachment`; user dicts for user options; role ids for role
        options; channel ids for channel options."""
        channel_id = channel_id or self.channel_id
        data = self._command_data(name, options, subcommand, group, channel_id, user or self.member)
        return await self._inject(
            InteractionType.APPLICATION_COMMAND,
            data,
            user=user,
            channel_id=channel_id,
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
        subcommand: str | None = None,
        group: str | None = None,
        locale: str | None = None,
        guild_locale: str | None = None,
    ) -> InteractionRecord:
        """Sends an autocomplete interaction with ``focused`` as the focused option; its typed text is
        ``options[focused]`` ("" when absent)."""
        options = {**options, focused: options.get(focused, "")}
        data = self._command_data(name, options, subcommand, group, self.channel_id, user or self.member, focused)
        return await self._inject(
            InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE, data, user=user, locale=locale, guild_locale=guild_locale
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
    ) -> InteractionRecord:
        """Clicks the button (or picks ``values`` in the select) ``custom_id`` of ``message``.  The
        payload's ``message`` is complete (the MESSAGE_CONTENT rule does not apply to it)."""
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
        channel_id = int(message["channel_id"])
        return await self._inject(
            InteractionType.MESSAGE_COMPONENT,
            data,
            user=user,
            channel_id=channel_id,
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
        locale: str | None = None,
        guild_locale: str | None = None,
    ) -> InteractionRecord:
        """Submits the modal ``custom_id`` with ``components`` (mirroring the modal: action rows of
        text inputs, or Labels ``{"type": 18, "component": {...}}``).  File-upload values are
        attachment ids whose attachments (from :meth:`add_attachment`: ephemeral) are given in
        ``resolved_attachments``."""
        data: dict[str, Any] = {"custom_id": custom_id, "components": components}
        if resolved_attachments:
            data["resolved"] = {"attachments": {att["id"]: att for att in resolved_attachments}}
        if message is not None:
            message = self.messages.get(int(message["id"]), message)
        channel_id = int(message["channel_id"]) if message is not None else None
        return await self._inject(
            InteractionType.MODAL_SUBMIT,
            data,
            user=user,
            channel_id=channel_id,
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
    ) -> InteractionRecord:
        """Runs the synced message context-menu command ``name`` on ``message``; the target in
        ``data.resolved.messages`` is complete (the MESSAGE_CONTENT rule does not apply to it)."""
        message = self.messages.get(int(message["id"]), message)
        channel_id = int(message["channel_id"])
        command = self._find_command(name, CommandType.MESSAGE, self._guild_of(channel_id).id)
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
            user=user,
            channel_id=channel_id,
            locale=locale,
            guild_locale=guild_locale,
        )
