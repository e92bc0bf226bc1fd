"""Application-command routes: bulk overwrite (validated like Discord) and listing, global and per guild."""

from __future__ import annotations

from typing import Any

from .parts import Parts
from .protocol import ApiError, ApiRequest, CommandType, ErrorCode, Reply, form_error, snowflake_param
from .rest import route
from .validation import validate_command, validate_command_counts


class Commands(Parts):
    """Mixin: the application commands of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_commands(self) -> None:
        self._global_commands: dict[tuple[str, int], dict] = {}
        self._guild_commands: dict[int, dict[tuple[str, int], dict]] = {}
        self.global_sync_count = 0
        self.guild_sync_count = 0

    @property
    def commands(self) -> dict[str, dict]:
        """The commands the bot synced, by name (guild commands win over global ones of that name)."""
        merged = {cmd["name"]: cmd for cmd in self._global_commands.values()}
        merged.update({cmd["name"]: cmd for cmd in self._guild_commands.get(self.guild_id, {}).values()})
        return merged

    def _bulk_put(self, body: Any, store: dict[tuple[str, int], dict], guild_id: int | None) -> list[dict]:
        if not isinstance(body, list):
            raise form_error([], "BASE_TYPE_ARRAY", "Must be an array.")
        validate_command_counts(body)
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            validate_command(command, [index])
            key = (command["name"], command.get("type", CommandType.CHAT_INPUT))
            if key in seen:
                raise form_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {command['name']}",
                )
            seen.add(key)
        result: dict[tuple[str, int], dict] = {}
        for command in body:
            key = (command["name"], command.get("type", CommandType.CHAT_INPUT))
            previous = store.get(key)
            stored = {
                "description": "",
                "default_member_permissions": None,
                "nsfw": False,
                **command,
                "type": key[1],
                "application_id": str(self.application_id),
            }
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            if previous is not None:
                unchanged = {k: v for k, v in previous.items() if k not in ("id", "version")} == stored
                stored["id"] = previous["id"]
                stored["version"] = previous["version"] if unchanged else str(self._snowflake())
            else:
                stored["id"] = str(self._snowflake())
                stored["version"] = str(self._snowflake())
            result[key] = stored
        store.clear()
        store.update(result)
        return list(result.values())

    def _check_application(self, req: ApiRequest) -> None:
        if snowflake_param(req.params["application_id"]) != self.application_id:
            raise ApiError(
                403,
                ErrorCode.NOT_AUTHORIZED_FOR_APPLICATION,
                "You are not authorized to perform this action on this application",
            )

    def _check_guild(self, req: ApiRequest) -> int:
        return self._guild_of_bot(snowflake_param(req.params["guild_id"])).id

    @route("PUT", "/applications/{application_id}/commands")
    async def _put_global_commands(self, req: ApiRequest) -> Reply:
        self._check_application(req)
        commands = self._bulk_put(req.body, self._global_commands, None)
        self.global_sync_count += 1
        return 200, commands

    @route("GET", "/applications/{application_id}/commands")
    async def _get_global_commands(self, req: ApiRequest) -> Reply:
        self._check_application(req)
        return 200, list(self._global_commands.values())

    @route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _put_guild_commands(self, req: ApiRequest) -> Reply:
        self._check_application(req)
        guild_id = self._check_guild(req)
        commands = self._bulk_put(req.body, self._guild_commands.setdefault(guild_id, {}), guild_id)
        self.guild_sync_count += 1
        return 200, commands

    @route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _get_guild_commands(self, req: ApiRequest) -> Reply:
        self._check_application(req)
        guild_id = self._check_guild(req)
        return 200, list(self._guild_commands.get(guild_id, {}).values())
