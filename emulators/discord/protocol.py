"""Discord's protocol numbers by name, the shapes every part of the emulator shares, and small helpers."""

from __future__ import annotations

import functools
import io
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, IntFlag
from typing import Any

from aiohttp import web

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"
MIB = 1024 * 1024


class Permission(IntFlag):
    """Permission bits (https://discord.com/developers/docs/topics/permissions)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38
    USE_EXTERNAL_APPS = 1 << 50


ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = (
    Permission.ADD_REACTIONS
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.CHANGE_NICKNAME
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.USE_EXTERNAL_APPS
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | Permission.MANAGE_MESSAGES | Permission.SEND_MESSAGES_IN_THREADS


class MessageFlag(IntFlag):
    """Message flags (https://discord.com/developers/docs/resources/message#message-object-message-flags)."""

    CROSSPOSTED = 1 << 0
    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_COMPONENTS_V2 = 1 << 15


# The flags a create/edit body may set; the others are Discord's to set.
MESSAGE_FLAGS_SETTABLE = (
    MessageFlag.SUPPRESS_EMBEDS
    | MessageFlag.EPHEMERAL
    | MessageFlag.SUPPRESS_NOTIFICATIONS
    | MessageFlag.IS_COMPONENTS_V2
)


class Intent(IntFlag):
    """Gateway intents the emulator distinguishes (https://discord.com/developers/docs/events/gateway#gateway-intents)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT


class InteractionType(IntEnum):
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(IntEnum):
    """Interaction callback types (https://discord.com/developers/docs/interactions/receiving-and-responding)."""

    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class CommandType(IntEnum):
    CHAT_INPUT = 1
    USER = 2
    MESSAGE = 3


class OptionType(IntEnum):
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class ComponentType(IntEnum):
    ACTION_ROW = 1
    BUTTON = 2
    STRING_SELECT = 3
    TEXT_INPUT = 4
    USER_SELECT = 5
    ROLE_SELECT = 6
    MENTIONABLE_SELECT = 7
    CHANNEL_SELECT = 8
    SECTION = 9
    TEXT_DISPLAY = 10
    THUMBNAIL = 11
    MEDIA_GALLERY = 12
    FILE = 13
    SEPARATOR = 14
    CONTAINER = 17
    LABEL = 18
    FILE_UPLOAD = 19
    RADIO_GROUP = 21
    CHECKBOX_GROUP = 22
    CHECKBOX = 23


class ButtonStyle(IntEnum):
    PRIMARY = 1
    SECONDARY = 2
    SUCCESS = 3
    DANGER = 4
    LINK = 5
    PREMIUM = 6


SELECT_COMPONENT_TYPES = {
    ComponentType.STRING_SELECT,
    ComponentType.USER_SELECT,
    ComponentType.ROLE_SELECT,
    ComponentType.MENTIONABLE_SELECT,
    ComponentType.CHANNEL_SELECT,
}


class MessageType(IntEnum):
    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    CONTEXT_MENU_COMMAND = 23


class ChannelType(IntEnum):
    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GROUP_DM = 3


class InteractionContext(IntEnum):
    """Where an interaction happens (Interactions → Receiving and Responding, "Interaction Context Types")."""

    GUILD = 0
    BOT_DM = 1
    PRIVATE_CHANNEL = 2  # group DMs, and DMs between users other than the bot


class IntegrationType(IntEnum):
    """How the application was installed (Resources → Application, "Application Integration Types")."""

    GUILD_INSTALL = 0
    USER_INSTALL = 1


class GatewayOp(IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class GatewayClose(IntEnum):
    UNKNOWN_ERROR = 4000
    AUTHENTICATION_FAILED = 4004
    INVALID_SHARD = 4010
    DISALLOWED_INTENTS = 4014


class ErrorCode(IntEnum):
    """JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json)."""

    GENERAL = 0
    UNKNOWN_CHANNEL = 10003
    UNKNOWN_GUILD = 10004
    UNKNOWN_MEMBER = 10007
    UNKNOWN_MESSAGE = 10008
    UNKNOWN_USER = 10013
    UNKNOWN_WEBHOOK = 10015
    UNKNOWN_INTERACTION = 10062
    NOT_AUTHORIZED_FOR_APPLICATION = 20012
    MAX_APPLICATION_COMMANDS = 30032
    REQUEST_ENTITY_TOO_LARGE = 40005
    ALREADY_ACKNOWLEDGED = 40060
    MAX_FOLLOWUP_MESSAGES = 40094
    MISSING_ACCESS = 50001
    CANNOT_EDIT_OTHERS_MESSAGE = 50005
    EMPTY_MESSAGE = 50006
    MISSING_PERMISSIONS = 50013
    INVALID_WEBHOOK_TOKEN = 50027
    INVALID_RECIPIENTS = 50033
    INVALID_FORM_BODY = 50035
    INVALID_JSON = 50109


TOKEN_LIFETIME = 15 * 60
# "Apps are limited to 5 followup messages per interaction if it was initiated from a user-installed app and
# isn't installed in the server (meaning the authorizing integration owners object only contains
# USER_INSTALL)" (Receiving and Responding, Create Followup Message).
USER_INSTALL_FOLLOWUP_LIMIT = 5
HEARTBEAT_INTERVAL_MS = 41250


@dataclass
class UploadedFile:
    """A file the bot uploaded in a multipart request (``files[n]``)."""

    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RestCall:
    """One REST request the bot made, as received (``path`` is relative to ``/api/v10``).

    ``refusal`` is the rule the emulator's own validation refused the request with (a form error, an
    empty message, too large, a followup past a user install's 5; not injected faults, permission or
    token answers); ``violations`` what Discord would ignore rather than refuse (an unknown path, query
    parameter or body key)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any | None
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0
    user_agent: str = ""
    refusal: str | None = None
    violations: list[str] = field(default_factory=list)

    @property
    def offences(self) -> list[str]:
        """The refusal and the violations: what a correct client never sends."""
        return [*([self.refusal] if self.refusal else []), *self.violations]


# Discord's answers that refuse what a request sent (its body, its size, one followup too many) rather than
# what it asked for: a correct client never gets them.
REFUSAL_CODES = {
    ErrorCode.INVALID_FORM_BODY,
    ErrorCode.EMPTY_MESSAGE,
    ErrorCode.REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.INVALID_JSON,
    ErrorCode.MAX_FOLLOWUP_MESSAGES,
}


class ApiError(Exception):
    """A Discord-shaped error answer: ``{"code", "message", "errors"?}`` with an HTTP status."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: dict[str, Any] = {"code": int(code), "message": message}
        if errors is not None:
            self.body["errors"] = errors

    @property
    def refusal(self) -> str | None:
        """The rule a request broke when this answer refuses what it sent, as ``CODE at field.path:
        message`` (every one of a form error's); None for answers about state, permissions or tokens."""
        code = self.body["code"]
        if code not in REFUSAL_CODES:
            return None
        if code != ErrorCode.INVALID_FORM_BODY:
            return f"{ErrorCode(code).name} ({code}): {self.body['message']}"
        return "; ".join(
            f"{error['code']}{' at ' + '.'.join(where) if where else ''}: {error['message']}"
            for where, error in _tree_errors(self.body.get("errors") or {}, [])
        )


def _tree_errors(tree: dict, where: list[str]) -> list[tuple[list[str], dict]]:
    """The ``_errors`` of a form-error tree, each with its field path."""
    found = [(where, error) for error in tree.get("_errors", [])]
    for key, child in tree.items():
        if key != "_errors":
            found += _tree_errors(child, [*where, key])
    return found


def one_of(values: Iterable[Any]) -> str:
    """The values a field takes as Discord's answers list them: a Python tuple, numbers ascending
    ("Value must be one of (1,).", 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).')."""
    listed = [int(value) if isinstance(value, int) else value for value in values]  # IntEnums as numbers
    if all(isinstance(value, int) for value in listed):
        listed.sort()
    return repr(tuple(listed))


def union_type_error(where: list[str | int], kinds: Iterable[Any]) -> tuple[list[str | int], str, str]:
    """A component (or any object told apart by its ``type``) of a type not taken where it stands:
    Discord reports it at the object itself, not at its ``type``, listing the types taken there in
    ascending order.  Real answers on record: ``components.0`` 'Value of field "type" must be one of
    (1,).' (bwmarrin/discordgo#1659, NetCordDev/NetCord#151: v2 components without the flag); a
    select row's child in a container, ``data.components[0].components[1].components[0]``, "(2, 3, 5,
    6, 7, 8)" (a discord.js DiscordAPIError of a real callback, kept in a public bot's logs); a Label
    in a message, "(1, 9, 10, 12, 13, 14, 17)" (a public bot's notes)."""
    return where, "UNION_TYPE_CHOICES", f'Value of field "type" must be one of {one_of(kinds)}.'


def form_error(where: list[str | int], code: str, message: str) -> ApiError:
    """Builds a 400/50035 "Invalid Form Body" error pointing at the field path ``where``."""
    return form_errors([(where, code, message)])


def form_errors(problems: list[tuple[list[str | int], str, str]]) -> ApiError:
    """A 400/50035 "Invalid Form Body" error whose tree holds every ``(field path, code, message)``
    (``{"a": {"0": {"b": {"_errors": [{"code", "message"}]}}}}``): Discord reports them all."""
    errors: dict[str, Any] = {}
    for where, code, message in problems:
        node = errors
        for key in where:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return ApiError(400, ErrorCode.INVALID_FORM_BODY, "Invalid Form Body", errors)


@dataclass
class ApiRequest:
    """A parsed REST request handed to route handlers."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    uploads: dict[int, UploadedFile]


Reply = tuple[int, Any]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json`` (discord.py needs that)."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@functools.cache
def placeholder_png() -> bytes:
    """A valid 1×1 transparent PNG, served for avatars, icons and other assets."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 6, 0, 0, 0])
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` is an image Pillow can read, else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return None


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, ErrorCode.INVALID_JSON, "The request body contains invalid JSON.") from None


def snowflake_param(value: str) -> int:
    if not value.isdigit():
        raise form_error([], "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return int(value)


COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")


def without_content(message: dict) -> dict:
    """A message as a reader without the MESSAGE_CONTENT intent gets it: empty ``content``,
    ``embeds``, ``attachments`` and ``components``, and no ``poll``."""
    stripped = {key: value for key, value in message.items() if key != "poll"}
    return stripped | {"content": "", "embeds": [], "attachments": [], "components": []}
