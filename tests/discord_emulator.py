"""A loopback Discord emulator for end-to-end tests of the bot.

:class:`DiscordEmulator` runs an :mod:`aiohttp.web` server on ``127.0.0.1`` (random port) that the
real, unmodified discord.py client logs into.  It serves

* the REST API under ``/api/v10`` (login, command sync, interaction callbacks, webhooks/followups,
  channel messages, attachment URL refresh),
* the gateway websocket at ``/gateway`` (HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE,
  RESUME with replay of missed dispatches),
* a CDN under ``/cdn`` serving attachments behind Discord-style signed URLs (and a placeholder PNG
  for avatars and icons).

It enforces the rules real Discord enforces (3-second acknowledgement window, single
acknowledgement, 15-minute token lifetime, message and upload limits, command validation), records
everything the bot does, and lets tests inject interactions and REST faults.  Nothing here talks to
anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import hashlib
import hmac
import io
import itertools
import json
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, WSMsgType, web

__all__ = ["DiscordEmulator", "InteractionRecord", "RestCall", "UploadedFile"]

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"
OPENAPI_PATH = Path(__file__).resolve().parents[2] / "shared/discord/openapi.json"

PERM_MANAGE_GUILD = 0x20
PERM_ADMINISTRATOR = 0x8
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = (
    (1 << 6)  # add reactions
    | (1 << 10)  # view channel
    | (1 << 11)  # send messages
    | (1 << 14)  # embed links
    | (1 << 15)  # attach files
    | (1 << 16)  # read message history
    | (1 << 18)  # use external emojis
    | (1 << 26)  # change nickname
    | (1 << 31)  # use application commands
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | (1 << 13) | (1 << 38)  # + manage messages, send in threads

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15
MESSAGE_FLAGS_SETTABLE = (1 << 2) | FLAG_EPHEMERAL | (1 << 12) | FLAG_COMPONENTS_V2

TOKEN_LIFETIME = 15 * 60
HEARTBEAT_INTERVAL_MS = 41250

COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
SELECT_COMPONENT_TYPES = {3, 5, 6, 7, 8}
RESOLVED_USER_OPTION, RESOLVED_CHANNEL_OPTION, RESOLVED_ROLE_OPTION = 6, 7, 8
MENTIONABLE_OPTION, ATTACHMENT_OPTION = 9, 11
SUBCOMMAND, SUBCOMMAND_GROUP = 1, 2

# Real Discord endpoints the bot may call that the published OpenAPI document does not describe.
SPEC_GAPS = {("POST", "/attachments/refresh-urls")}
# Request keys the OpenAPI schemas lack although Discord accepts them, by schema: ``nsfw`` is
# documented for commands, and discord.py sends ``tts`` with every message edit (Discord ignores it).
SPEC_EXTRA_KEYS = {
    "ApplicationCommandUpdateRequest": {"nsfw"},
    "IncomingWebhookUpdateRequestPartial": {"tts"},
    "MessageEditRequestPartial": {"tts"},
}


@dataclass
class UploadedFile:
    """A file the bot uploaded in a multipart request (``files[n]``)."""

    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RestCall:
    """One REST request the bot made, as received (``path`` is relative to ``/api/v10``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any | None
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0


class _ApiError(Exception):
    """A Discord-shaped error answer: ``{"code", "message", "errors"?}`` with an HTTP status."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}
        if errors is not None:
            self.body["errors"] = errors


def _form_error(where: list[str | int], code: str, message: str) -> _ApiError:
    """Builds a 400/50035 "Invalid Form Body" error pointing at the field path ``where``."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(where):
        errors = {str(key): errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


@dataclass
class _Request:
    """A parsed REST request handed to route handlers."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    uploads: dict[int, UploadedFile]


_Reply = tuple[int, Any]


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer whose Content-Type is exactly ``application/json`` (discord.py needs that)."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@functools.cache
def _placeholder_png() -> bytes:
    """A valid 1×1 transparent PNG, served for avatars, icons and other assets."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 6, 0, 0, 0])
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` is an image Pillow can read, else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return None


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


_RouteHandler = Callable[["DiscordEmulator", _Request], Awaitable[_Reply]]
_ROUTES: list[tuple[str, str, re.Pattern[str], str]] = []


def _route(method: str, template: str) -> Callable[[_RouteHandler], _RouteHandler]:
    """Registers a REST handler for ``method template`` (template as in Discord's docs)."""
    pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")

    def register(handler: _RouteHandler) -> _RouteHandler:
        _ROUTES.append((method, template, pattern, handler.__name__))
        return handler

    return register


class DiscordEmulator:
    """A Discord (REST + gateway + CDN) on 127.0.0.1 for the real discord.py client.

    Use ``async with DiscordEmulator() as emu:`` and log the bot in inside ``emu.patch_discord()``.
    Default world: one guild (``guild_id``) with text channels ``channel_id`` and
    ``other_channel_id``, roles @everyone / Moderator (Manage Server) / Member, and users
    ``member``, ``moderator``, ``other_member`` and ``owner`` (the guild owner).  The bot user's id
    is ``application_id``.

    ``response_deadline`` is the time (s) the bot has for the initial response;
    ``attachment_size_limit`` the upload limit (bytes) of channel messages and the default one of
    interactions.  Times are emulator times: wall clock + ``clock_offset``.

    Records: ``calls`` (every REST request, in arrival order), ``messages`` (every existing message
    by id, incl. ephemeral ones), ``cdn_hits`` (request paths fetched from the CDN, e.g.
    ``/cdn/attachments/…``), ``commands`` / ``global_sync_count`` / ``guild_sync_count``,
    ``identify_count`` / ``resume_count`` and ``ready`` (set once IDENTIFY got GUILD_CREATE).
    """

    def __init__(
        self,
        *,
        token: str = "discord-test-token",
        response_deadline: float = 3.0,
        attachment_size_limit: int = 10 * 1024 * 1024,
    ) -> None:
        self.token = token
        self.response_deadline = response_deadline
        self.attachment_size_limit = attachment_size_limit
        self.clock_offset: float = 0.0
        # The Discord language of every member (`locale`) and of the server (`guild_locale`) in interactions.
        self.locale, self.guild_locale = "en-US", "en-US"
        self._ids = itertools.count(1)
        self._cdn_secret = secrets.token_bytes(32)

        self.application_id: int = self._snowflake()
        self.bot_user: dict = self._user_payload(self.application_id, "Retouch", bot=True)
        self.guild_id: int = self._snowflake()
        self.channel_id: int = self._snowflake()
        self.other_channel_id: int = self._snowflake()
        self.everyone_role_id: int = self.guild_id
        self.moderator_role_id: int = self._snowflake()
        self.member_role_id: int = self._snowflake()
        self._bot_role_id = self._snowflake()
        self.roles: dict[int, dict] = {
            int(role["id"]): role
            for role in (
                self._role_payload(self.everyone_role_id, "@everyone", EVERYONE_PERMISSIONS, 0),
                self._role_payload(self.member_role_id, "Member", 0, 1),
                self._role_payload(self.moderator_role_id, "Moderator", PERM_MANAGE_GUILD, 2),
                self._role_payload(self._bot_role_id, "Retouch", BOT_PERMISSIONS, 3, managed=True),
            )
        }
        self.channels: dict[int, dict] = {
            self.channel_id: self._channel_payload(self.channel_id, "general", 0),
            self.other_channel_id: self._channel_payload(self.other_channel_id, "other", 1),
        }
        self._members: dict[int, dict] = {}
        self._permission_overrides: dict[int, int] = {}
        self._add_member_record(self.bot_user, [self._bot_role_id])
        self.owner: dict = self.add_member(name="guild-owner")
        self.member: dict = self.add_member(name="member", roles=[self.member_role_id])
        self.moderator: dict = self.add_member(name="moderator", roles=[self.member_role_id, self.moderator_role_id])
        self.other_member: dict = self.add_member(name="other-member", roles=[self.member_role_id])

        self.calls: list[RestCall] = []
        self.messages: dict[int, dict] = {}
        self.cdn_hits: list[str] = []
        self._attachments: dict[int, dict] = {}
        self._broken: dict[int, int] = {}
        self._faults: list[dict] = []
        self._global_commands: dict[tuple[str, int], dict] = {}
        self._guild_commands: dict[tuple[str, int], dict] = {}
        self.global_sync_count = 0
        self.guild_sync_count = 0
        self._interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}

        self.ready = asyncio.Event()
        self.identify_count = 0
        self.resume_count = 0
        self._session_id: str | None = None
        self._sequence = 0
        self._dispatched: list[dict] = []
        self._socket: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._send_lock = asyncio.Lock()
        self._gateway_changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._base = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Starts the server on 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_get("/cdn/{tail:.*}", self._cdn)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"{host}:{port}"

    async def close(self) -> None:
        """Closes every gateway connection and stops the server."""
        for socket in list(self._sockets):
            await socket.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def rest_base(self) -> str:
        return f"http://{self._base}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._base}/gateway"

    @property
    def cdn_base(self) -> str:
        return f"http://{self._base}/cdn"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Points discord.py's REST base, default gateway and asset CDN at this emulator."""
        import discord.asset
        import discord.gateway
        import discord.http
        import yarl

        saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE)
        discord.http.Route.BASE = self.rest_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        discord.asset.Asset.BASE = self.cdn_base
        try:
            yield
        finally:
            (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE) = (
                saved
            )

    def now(self) -> float:
        """The emulator's notion of the current unix time (wall clock + ``clock_offset``)."""
        return time.time() + self.clock_offset

    def _snowflake(self) -> int:
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    # ------------------------------------------------------------------ world

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
        role = {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
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

    def _channel_payload(self, channel_id: int, name: str, position: int) -> dict:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _add_member_record(self, user: dict, roles: list[int]) -> None:
        self._members[int(user["id"])] = {
            "user": user,
            "roles": [str(role) for role in roles],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": _iso(time.time()),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def add_member(self, *, name: str, roles: list[int] = (), permissions: int | None = None) -> dict:  # type: ignore[assignment]
        """Adds a guild member and returns its user dict. ``permissions`` (if given) replaces the
        permissions computed from roles in interaction payloads.  Members added after login appear
        in interaction payloads only (no GUILD_MEMBER_ADD is sent)."""
        unknown = [role for role in roles if int(role) not in self.roles]
        if unknown:
            raise ValueError(f"unknown role ids {unknown}")
        user = self._user_payload(self._snowflake(), name)
        self._add_member_record(user, [int(role) for role in roles])
        if permissions is not None:
            self._permission_overrides[int(user["id"])] = permissions
        return user

    def _permissions_of(self, user_id: int) -> int:
        if user_id in self._permission_overrides:
            return self._permission_overrides[user_id]
        if user_id == int(self.owner["id"]):
            return ALL_PERMISSIONS
        value = int(self.roles[self.everyone_role_id]["permissions"])
        for role_id in self._members[user_id]["roles"]:
            value |= int(self.roles[int(role_id)]["permissions"])
        return ALL_PERMISSIONS if value & PERM_ADMINISTRATOR else value

    def _member_payload(self, user: dict, permissions: int | None = None) -> dict:
        user_id = int(user["id"])
        if user_id not in self._members:
            raise ValueError(f"user {user_id} is not a member of the guild; use add_member()")
        member = copy.deepcopy(self._members[user_id])
        member["permissions"] = str(self._permissions_of(user_id) if permissions is None else permissions)
        return member

    def _guild_create_payload(self) -> dict:
        members = list(self._members.values())
        return {
            "id": str(self.guild_id),
            "name": "Retouch Test Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner["id"],
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
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "vanity_url_code": None,
            "max_members": 500000,
            "features": [],
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": [{k: v for k, v in ch.items() if k != "guild_id"} for ch in self.channels.values()],
            "threads": [],
            "members": members,
            "member_count": len(members),
            "large": False,
            "unavailable": False,
            "joined_at": members[0]["joined_at"],
            "voice_states": [],
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
            raise _ApiError(404, 10003, "Unknown Channel") from None

    # ------------------------------------------------------------------ CDN

    def _signed_url(self, attachment: dict, *, expires_in: float = 86400) -> str:
        issued = int(self.now())
        expires = int(self.now() + expires_in)
        path = f"attachments/{attachment['channel_id']}/{attachment['id']}/{attachment['filename']}"
        ex, issued_hex = f"{expires:x}", f"{issued:x}"
        return f"{self.cdn_base}/{quote(path)}?ex={ex}&is={issued_hex}&hm={self._signature(path, ex, issued_hex)}&"

    def _signature(self, path: str, ex: str, issued: str) -> str:
        return hmac.new(self._cdn_secret, f"{path}|{ex}|{issued}".encode(), hashlib.sha256).hexdigest()

    def _register_file(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        channel_id: int,
        *,
        width: int | None = None,
        height: int | None = None,
        expires_in: float = 86400,
        description: str | None = None,
    ) -> dict:
        attachment_id = self._snowflake()
        self._attachments[attachment_id] = {
            "id": attachment_id,
            "channel_id": channel_id,
            "filename": filename,
            "data": data,
            "content_type": content_type,
        }
        url = self._signed_url(self._attachments[attachment_id], expires_in=expires_in)
        if width is None and height is None:
            size = _image_size(data)
            if size is not None:
                width, height = size
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "width": width,
            "height": height,
        }
        if description is not None:
            attachment["description"] = description
        return attachment

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        width: int | None = None,
        height: int | None = None,
        expires_in: float = 86400,
    ) -> dict:
        """Puts ``data`` on the CDN (as if a user uploaded it in ``channel_id``) and returns the
        attachment object, with a signed URL that stops working ``expires_in`` seconds from now
        (emulator time).  Width/height are read from the image when not given."""
        return self._register_file(
            data, filename, content_type, self.channel_id, width=width, height=height, expires_in=expires_in
        )

    def break_attachment(self, attachment_id: int | str, status: int = 404) -> None:
        """From now on the CDN answers ``status`` for this attachment."""
        self._broken[int(attachment_id)] = status

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        self.cdn_hits.append(request.path)
        tail = request.match_info["tail"]
        if not tail.startswith("attachments/"):
            return web.Response(body=_placeholder_png(), content_type="image/png")
        match = re.fullmatch(r"attachments/(\d+)/(\d+)/([^/]+)", tail)
        if match is None:
            return web.Response(status=404, text="Not Found")
        attachment_id = int(match.group(2))
        if attachment_id in self._broken:
            return web.Response(status=self._broken[attachment_id], text="CDN error")
        attachment = self._attachments.get(attachment_id)
        if (
            attachment is None
            or attachment["channel_id"] != int(match.group(1))
            or attachment["filename"] != match.group(3)
        ):
            return web.Response(status=404, text="Not Found")
        ex, issued, signature = (request.query.get(key, "") for key in ("ex", "is", "hm"))
        try:
            expired = int(ex, 16) < self.now()
        except ValueError:
            expired = True
        if expired or not hmac.compare_digest(signature, self._signature(tail, ex, issued)):
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(
            body=attachment["data"], content_type=attachment["content_type"] or "application/octet-stream"
        )

    # ------------------------------------------------------------------ REST plumbing

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        body: dict | None = None,
        *,
        times: int = 1,
        headers: dict | None = None,
    ) -> None:
        """Answers the next ``times`` requests whose method matches (``"*"`` for any) and whose path
        after /api/v10 matches the regex ``path_pattern`` (``re.search``) with ``status``/``body``
        instead of handling them.  A 429 gets a ``Via`` header and a ``retry_after`` by default so
        discord.py retries it."""
        body = dict(body) if body is not None else {"code": 0, "message": f"{status}: injected fault"}
        headers = dict(headers or {})
        if status == 429:
            body.setdefault("retry_after", 0.05)
            body.setdefault("global", False)
            headers.setdefault("Via", "1.1 google")
        self._faults.append(
            {
                "method": method.upper(),
                "pattern": re.compile(path_pattern),
                "status": status,
                "body": body,
                "headers": headers,
                "times": times,
            }
        )

    def _take_fault(self, method: str, path: str) -> dict | None:
        for fault in self._faults:
            if fault["method"] in ("*", method) and fault["pattern"].search(path):
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, dict[int, UploadedFile]]:
        uploads: dict[int, UploadedFile] = {}
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                if name == "payload_json":
                    payload = _parse_json(await part.read())
                elif re.fullmatch(r"files\[\d+\]", name):
                    data = bytes(await part.read())
                    uploads[int(name[6:-1])] = UploadedFile(
                        part.filename or f"file{name[6:-1]}", part.headers.get("Content-Type"), data
                    )
            return payload, uploads
        raw = await request.read()
        return (_parse_json(raw) if raw else None), uploads

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path[len(API_PREFIX) :]
        call = RestCall(request.method, path, dict(request.query), None)
        self.calls.append(call)
        headers: dict[str, str] = {}
        try:
            call.json, uploads = await self._read_body(request)
            call.files = [uploads[index] for index in sorted(uploads)]
            fault = self._take_fault(request.method, path)
            if fault is not None:
                status, body, headers = fault["status"], fault["body"], fault["headers"]
            else:
                status, body = await self._dispatch_route(request, path, call, uploads)
        except _ApiError as error:
            status, body = error.status, error.body
        call.status = status
        if body is None:
            return web.Response(status=status, headers=headers)
        return _json_response(status, body, headers)

    async def _dispatch_route(
        self, request: web.Request, path: str, call: RestCall, uploads: dict[int, UploadedFile]
    ) -> _Reply:
        allowed = False
        for method, template, pattern, handler_name in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if method != request.method:
                continue
            if not template.startswith(("/interactions/", "/webhooks/")) and (
                request.headers.get("Authorization") != f"Bot {self.token}"
            ):
                raise _ApiError(401, 0, "401: Unauthorized")
            handler = getattr(self, handler_name)
            return await handler(_Request(match.groupdict(), call.query, call.json, uploads))
        if allowed:
            raise _ApiError(405, 0, "405: Method Not Allowed")
        raise _ApiError(404, 0, "404: Not Found")

    # ------------------------------------------------------------------ REST: login & gateway

    @_route("GET", "/users/@me")
    async def _get_me(self, req: _Request) -> _Reply:
        return 200, {**self.bot_user, "verified": True, "mfa_enabled": False, "locale": "en-US", "email": None}

    @_route("GET", "/users/{user_id}")
    async def _get_user(self, req: _Request) -> _Reply:
        member = self._members.get(_snowflake_param(req.params["user_id"]))
        if member is None:
            raise _ApiError(404, 10013, "Unknown User")
        return 200, member["user"]

    @_route("GET", "/oauth2/applications/@me")
    async def _get_application(self, req: _Request) -> _Reply:
        return 200, {
            "id": str(self.application_id),
            "name": "Retouch",
            "icon": None,
            "description": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": self.owner,
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "bot": self.bot_user,
        }

    @_route("GET", "/gateway")
    async def _get_gateway(self, req: _Request) -> _Reply:
        return 200, {"url": self.gateway_url}

    @_route("GET", "/gateway/bot")
    async def _get_gateway_bot(self, req: _Request) -> _Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    @_route("GET", "/guilds/{guild_id}")
    async def _get_guild(self, req: _Request) -> _Reply:
        if _snowflake_param(req.params["guild_id"]) != self.guild_id:
            raise _ApiError(404, 10004, "Unknown Guild")
        guild = self._guild_create_payload()
        return 200, {
            k: guild[k]
            for k in (
                "id",
                "name",
                "icon",
                "owner_id",
                "roles",
                "emojis",
                "features",
                "stickers",
                "preferred_locale",
                "premium_tier",
                "description",
            )
        }

    @_route("GET", "/guilds/{guild_id}/members/{user_id}")
    async def _get_member(self, req: _Request) -> _Reply:
        if _snowflake_param(req.params["guild_id"]) != self.guild_id:
            raise _ApiError(404, 10004, "Unknown Guild")
        member = self._members.get(_snowflake_param(req.params["user_id"]))
        if member is None:
            raise _ApiError(404, 10007, "Unknown Member")
        return 200, member

    # ------------------------------------------------------------------ REST: application commands

    @property
    def commands(self) -> dict[str, dict]:
        """The commands the bot synced, by name (guild commands win over global ones of that name)."""
        merged = {cmd["name"]: cmd for cmd in self._global_commands.values()}
        merged.update({cmd["name"]: cmd for cmd in self._guild_commands.values()})
        return merged

    def _bulk_put(self, body: Any, store: dict[tuple[str, int], dict], guild_id: int | None) -> list[dict]:
        if not isinstance(body, list):
            raise _form_error([], "BASE_TYPE_ARRAY", "Must be an array.")
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            _validate_command(command, [index])
            key = (command["name"], command.get("type", 1))
            if key in seen:
                raise _form_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {command['name']}",
                )
            seen.add(key)
        result: dict[tuple[str, int], dict] = {}
        for command in body:
            key = (command["name"], command.get("type", 1))
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

    def _check_application(self, req: _Request) -> None:
        if _snowflake_param(req.params["application_id"]) != self.application_id:
            raise _ApiError(403, 20012, "You are not authorized to perform this action on this application")

    def _check_guild(self, req: _Request) -> None:
        if _snowflake_param(req.params["guild_id"]) != self.guild_id:
            raise _ApiError(404, 10004, "Unknown Guild")

    @_route("PUT", "/applications/{application_id}/commands")
    async def _put_global_commands(self, req: _Request) -> _Reply:
        self._check_application(req)
        commands = self._bulk_put(req.body, self._global_commands, None)
        self.global_sync_count += 1
        return 200, commands

    @_route("GET", "/applications/{application_id}/commands")
    async def _get_global_commands(self, req: _Request) -> _Reply:
        self._check_application(req)
        return 200, list(self._global_commands.values())

    @_route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _put_guild_commands(self, req: _Request) -> _Reply:
        self._check_application(req)
        self._check_guild(req)
        commands = self._bulk_put(req.body, self._guild_commands, self.guild_id)
        self.guild_sync_count += 1
        return 200, commands

    @_route("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
    async def _get_guild_commands(self, req: _Request) -> _Reply:
        self._check_application(req)
        self._check_guild(req)
        return 200, list(self._guild_commands.values())

    # ------------------------------------------------------------------ messages

    def _compose(
        self,
        body: Any,
        uploads: dict[int, UploadedFile],
        *,
        channel_id: int,
        size_limit: int,
        previous: dict | None = None,
    ) -> dict:
        """Validates a message create/edit body (+ uploads) like Discord and returns the message
        fields it results in: content, embeds, components, attachments, flags, files."""
        body = body or {}
        if not isinstance(body, dict):
            raise _form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        if sum(len(upload.data) for upload in uploads.values()) > size_limit:
            raise _ApiError(413, 40005, "Request entity too large")
        if len(uploads) > 10:
            raise _form_error(["files"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        fields: dict[str, Any] = (
            {
                "content": "",
                "embeds": [],
                "components": [],
                "attachments": [],
                "flags": 0,
                "files": [],
            }
            if previous is None
            else {
                key: copy.copy(previous[key])
                for key in ("content", "embeds", "components", "attachments", "flags", "files")
            }
        )
        for key in ("content", "embeds", "components"):
            if key in body:
                fields[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "flags" in body and body["flags"] is not None:
            keep = fields["flags"] & ~MESSAGE_FLAGS_SETTABLE if previous is not None else 0
            fields["flags"] = keep | (int(body["flags"]) & MESSAGE_FLAGS_SETTABLE)
            if previous is not None:  # ephemerality cannot change after sending
                fields["flags"] = (fields["flags"] & ~FLAG_EPHEMERAL) | (previous["flags"] & FLAG_EPHEMERAL)

        new_files: dict[int, dict] = {}

        def store_upload(index: int, description: str | None) -> dict:
            upload = uploads[index]
            content_type = mimetypes.guess_type(upload.filename)[0]
            new_files[index] = self._register_file(
                upload.data, upload.filename, content_type, channel_id, description=description
            )
            fields["files"].append(upload)
            return new_files[index]

        if "attachments" in body and body["attachments"] is not None:
            existing = {att["id"]: att for att in fields["attachments"]}
            kept: list[dict] = []
            for position, entry in enumerate(body["attachments"]):
                ref = str(entry.get("id"))
                if ref.isdigit() and int(ref) in uploads and int(ref) not in new_files:
                    kept.append(store_upload(int(ref), entry.get("description")))
                elif ref in existing:
                    kept.append(existing[ref])
                else:
                    raise _form_error(
                        ["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", f"Unknown attachment {ref}"
                    )
            fields["attachments"] = kept
        fields["attachments"] = fields["attachments"] + [
            store_upload(index, None) for index in sorted(uploads) if index not in new_files
        ]
        _validate_message_fields(fields)
        return fields

    def _new_message(self, fields: dict, *, channel_id: int, author: dict, extra: dict | None = None) -> dict:
        """Stores a new message (``fields`` from :meth:`_compose`) and returns the stored dict."""
        message_id = self._snowflake()
        message = {
            "id": str(message_id),
            "type": 0,
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": author,
            "timestamp": _iso(time.time()),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "reactions": [],
            **fields,
            **(extra or {}),
        }
        self.messages[message_id] = message
        return message

    def _edit_message(self, message: dict, body: Any, uploads: dict[int, UploadedFile], size_limit: int) -> dict:
        fields = self._compose(
            body, uploads, channel_id=int(message["channel_id"]), size_limit=size_limit, previous=message
        )
        message.update(fields)
        message["edited_timestamp"] = _iso(time.time())
        return message

    def add_message(
        self,
        content: str = "",
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        attachments: list[dict] = (),
    ) -> dict:  # type: ignore[assignment]
        """Stores a message a user posted (e.g. as the target of :meth:`message_command`).
        ``attachments`` are dicts from :meth:`add_attachment`."""
        fields = {
            "content": content,
            "embeds": [],
            "components": [],
            "attachments": list(attachments),
            "flags": 0,
            "files": [],
        }
        return self._new_message(fields, channel_id=channel_id or self.channel_id, author=user or self.member)

    @staticmethod
    def _public(message: dict) -> dict:
        """A stored message as sent on the wire (without the recorded upload bytes)."""
        return {key: value for key, value in message.items() if key != "files"}

    def _channel_message(self, req: _Request) -> dict:
        channel_id = _snowflake_param(req.params["channel_id"])
        self._channel(channel_id)
        message = self.messages.get(_snowflake_param(req.params["message_id"]))
        if message is None or int(message["channel_id"]) != channel_id or message["flags"] & FLAG_EPHEMERAL:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    @_route("GET", "/channels/{channel_id}")
    async def _get_channel(self, req: _Request) -> _Reply:
        return 200, self._channel(_snowflake_param(req.params["channel_id"]))

    @_route("POST", "/channels/{channel_id}/typing")
    async def _typing(self, req: _Request) -> _Reply:
        self._channel(_snowflake_param(req.params["channel_id"]))
        return 204, None

    @_route("GET", "/channels/{channel_id}/messages")
    async def _list_messages(self, req: _Request) -> _Reply:
        channel_id = _snowflake_param(req.params["channel_id"])
        self._channel(channel_id)
        limit = int(req.query.get("limit", 50))
        found = [
            self._public(m)
            for mid, m in sorted(self.messages.items(), reverse=True)
            if int(m["channel_id"]) == channel_id and not m["flags"] & FLAG_EPHEMERAL
        ]
        return 200, found[:limit]

    @_route("POST", "/channels/{channel_id}/messages")
    async def _create_message(self, req: _Request) -> _Reply:
        channel_id = _snowflake_param(req.params["channel_id"])
        self._channel(channel_id)
        fields = self._compose(req.body, req.uploads, channel_id=channel_id, size_limit=self.attachment_size_limit)
        if fields["flags"] & FLAG_EPHEMERAL:
            raise _form_error(["flags"], "MESSAGE_FLAGS_INVALID", "Ephemeral flag is only valid for interactions.")
        extra: dict[str, Any] = {}
        reference = (req.body or {}).get("message_reference")
        if reference:
            extra = {"type": 19, "message_reference": reference}
        return 200, self._public(self._new_message(fields, channel_id=channel_id, author=self.bot_user, extra=extra))

    @_route("GET", "/channels/{channel_id}/messages/{message_id}")
    async def _get_message(self, req: _Request) -> _Reply:
        return 200, self._public(self._channel_message(req))

    @_route("PATCH", "/channels/{channel_id}/messages/{message_id}")
    async def _patch_message(self, req: _Request) -> _Reply:
        message = self._channel_message(req)
        if message["author"]["id"] != self.bot_user["id"]:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        return 200, self._public(self._edit_message(message, req.body, req.uploads, self.attachment_size_limit))

    @_route("DELETE", "/channels/{channel_id}/messages/{message_id}")
    async def _delete_message(self, req: _Request) -> _Reply:
        message = self._channel_message(req)
        del self.messages[int(message["id"])]
        return 204, None

    @_route("POST", "/attachments/refresh-urls")
    async def _refresh_urls(self, req: _Request) -> _Reply:
        urls = (req.body or {}).get("attachment_urls")
        if not isinstance(urls, list) or not 1 <= len(urls) <= 50:
            raise _form_error(["attachment_urls"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 50 in length.")
        refreshed = []
        for url in urls:
            match = re.search(r"/attachments/(\d+)/(\d+)/", urlsplit(url).path)
            attachment = self._attachments.get(int(match.group(2))) if match else None
            new_url = self._signed_url(attachment) if attachment is not None else url
            refreshed.append({"original": url, "refreshed": new_url})
        return 200, {"refreshed_urls": refreshed}

    # ------------------------------------------------------------------ interactions: REST side

    def _interaction_for_callback(self, req: _Request) -> InteractionRecord:
        record = self._interactions.get(_snowflake_param(req.params["interaction_id"]))
        if record is None:
            raise _ApiError(404, 10062, "Unknown interaction")
        if not hmac.compare_digest(record.token, req.params["interaction_token"]):
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        return record

    def _target_message(self, record: InteractionRecord) -> dict | None:
        """The message a component/modal interaction came from (the stored one when known)."""
        raw = record.payload.get("message")
        if raw is None:
            return None
        stored = self.messages.get(int(raw["id"]))
        if stored is None:
            stored = {
                "files": [],
                "flags": 0,
                "attachments": [],
                "components": [],
                "embeds": [],
                "content": "",
                **copy.deepcopy(raw),
            }
            self.messages[int(raw["id"])] = stored
        return stored

    @_route("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
    async def _callback(self, req: _Request) -> _Reply:
        record = self._interaction_for_callback(req)
        if record.acknowledged:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        if self.now() > record.created + self.response_deadline:
            raise _ApiError(404, 10062, "Unknown interaction")
        body = req.body
        if not isinstance(body, dict) or not isinstance(body.get("type"), int):
            raise _form_error(["type"], "BASE_TYPE_REQUIRED", "This field is required")
        kind, callback_type = record.payload["type"], body["type"]
        target = self._target_message(record)
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5} | ({6, 7} if target else set())}[kind]
        if callback_type not in allowed:
            raise _form_error(
                ["type"],
                "INTERACTION_CALLBACK_TYPE_INVALID",
                f"Callback type {callback_type} is not valid for interaction type {kind}",
            )
        data = body.get("data") or {}
        message_type = 0 if kind != 2 else (20 if record.payload["data"].get("type", 1) == 1 else 23)
        extra = {
            "type": message_type,
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": {
                "id": str(record.id),
                "type": kind,
                "user": record.payload["member"]["user"],
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            },
        }
        resource: dict[str, Any] = {"type": callback_type}
        loading = False
        if callback_type == 4:
            fields = self._compose(data, req.uploads, channel_id=record.channel_id, size_limit=record.size_limit)
            record.original = self._new_message(fields, channel_id=record.channel_id, author=self.bot_user, extra=extra)
            record.ephemeral = bool(fields["flags"] & FLAG_EPHEMERAL)
        elif callback_type == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            fields = {"content": "", "embeds": [], "components": [], "attachments": [], "flags": flags, "files": []}
            record.original = self._new_message(fields, channel_id=record.channel_id, author=self.bot_user, extra=extra)
            record.ephemeral = bool(flags & FLAG_EPHEMERAL)
            loading = True
        elif callback_type in (6, 7):
            assert target is not None
            if callback_type == 7:
                self._edit_message(target, data, req.uploads, record.size_limit)
            record.original = target
            record.ephemeral = bool(target["flags"] & FLAG_EPHEMERAL)
        elif callback_type == 8:
            _validate_choices(data.get("choices"))
        else:
            _validate_modal(data)
        record.responses.append(body)
        if callback_type in (4, 7):
            record._saw(data.get("content"))
        await record._notify()
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        interaction: dict[str, Any] = {
            "id": str(record.id),
            "type": kind,
            "response_message_loading": loading,
            "response_message_ephemeral": record.ephemeral,
        }
        if callback_type in (4, 5, 6, 7) and record.original is not None:
            interaction["response_message_id"] = record.original["id"]
            if callback_type != 6:
                resource["message"] = self._public(record.original)
        return 200, {"interaction": interaction, "resource": resource}

    def _interaction_for_webhook(self, req: _Request) -> InteractionRecord:
        """The interaction a webhook route's token belongs to, enforcing Discord's token rules."""
        if _snowflake_param(req.params["webhook_id"]) != self.application_id:
            raise _ApiError(404, 10015, "Unknown Webhook")
        record = self._by_token.get(req.params["webhook_token"])
        if record is None or self.now() > record.created + TOKEN_LIFETIME:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        if not record.acknowledged:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return record

    def _interaction_message(self, record: InteractionRecord, message_id: str) -> dict:
        if message_id == "@original":
            message = record.original
        else:
            wanted = _snowflake_param(message_id)
            message = next((m for m in [record.original, *record.followups] if m and int(m["id"]) == wanted), None)
        if message is None or int(message["id"]) not in self.messages:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    @_route("POST", "/webhooks/{webhook_id}/{webhook_token}")
    async def _followup(self, req: _Request) -> _Reply:
        record = self._interaction_for_webhook(req)
        original = record.original
        if original is not None and original["flags"] & FLAG_LOADING and int(original["id"]) in self.messages:
            body = dict(req.body or {})
            if "flags" in body:  # ignored, except that the filled-in message may switch to components v2
                body["flags"] = int(body["flags"] or 0) & FLAG_COMPONENTS_V2
            message = self._edit_message(original, body, req.uploads, record.size_limit)
            message["flags"] &= ~FLAG_LOADING
            message["edited_timestamp"] = None
        else:
            fields = self._compose(req.body, req.uploads, channel_id=record.channel_id, size_limit=record.size_limit)
            extra = {
                "webhook_id": str(self.application_id),
                "application_id": str(self.application_id),
                "type": 0 if record.payload["type"] != 2 else 20,
            }
            message = self._new_message(fields, channel_id=record.channel_id, author=self.bot_user, extra=extra)
        record.followups.append(message)
        record._saw(message["content"])
        await record._notify()
        if req.query.get("wait", "").lower() not in ("1", "true"):
            return 204, None
        return 200, self._public(message)

    @_route("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def _get_webhook_message(self, req: _Request) -> _Reply:
        record = self._interaction_for_webhook(req)
        return 200, self._public(self._interaction_message(record, req.params["message_id"]))

    @_route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def _patch_webhook_message(self, req: _Request) -> _Reply:
        record = self._interaction_for_webhook(req)
        message = self._interaction_message(record, req.params["message_id"])
        message = self._edit_message(message, req.body, req.uploads, record.size_limit)
        message["flags"] &= ~FLAG_LOADING
        if message is record.original:
            record.original_edits.append(req.body)
        record._saw((req.body or {}).get("content"))
        await record._notify()
        return 200, self._public(message)

    @_route("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def _delete_webhook_message(self, req: _Request) -> _Reply:
        record = self._interaction_for_webhook(req)
        message = self._interaction_message(record, req.params["message_id"])
        del self.messages[int(message["id"])]
        if message is record.original:
            record.original = None
        await record._notify()
        return 204, None

    # ------------------------------------------------------------------ interactions: injection

    def _find_command(self, name: str, command_type: int) -> dict:
        for store in (self._guild_commands, self._global_commands):
            if (name, command_type) in store:
                return store[(name, command_type)]
        synced = sorted(f"{n} (type {t})" for n, t in [*self._guild_commands, *self._global_commands])
        raise KeyError(f"the bot has not synced a type-{command_type} command {name!r}; synced: {synced}")

    def _resolve_user(self, value: Any, resolved: dict) -> str:
        user = value if isinstance(value, dict) else self._members[int(value)]["user"]
        member = self._member_payload(user)
        member.pop("user")
        resolved.setdefault("users", {})[user["id"]] = user
        resolved.setdefault("members", {})[user["id"]] = member
        return user["id"]

    def _build_options(self, definitions: list[dict], values: dict, resolved: dict, focused: str | None) -> list[dict]:
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
            elif option_type == ATTACHMENT_OPTION:
                resolved.setdefault("attachments", {})[value["id"]] = value
                option["value"] = value["id"]
            elif option_type == RESOLVED_USER_OPTION or (option_type == MENTIONABLE_OPTION and isinstance(value, dict)):
                option["value"] = self._resolve_user(value, resolved)
            elif option_type in (RESOLVED_ROLE_OPTION, MENTIONABLE_OPTION):
                resolved.setdefault("roles", {})[str(value)] = self.roles[int(value)]
                option["value"] = str(value)
            elif option_type == RESOLVED_CHANNEL_OPTION:
                channel = self.channels[int(value)]
                resolved.setdefault("channels", {})[str(value)] = {**channel, "permissions": str(ALL_PERMISSIONS)}
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
        self, name: str, options: dict | None, subcommand: str | None, group: str | None, focused: str | None = None
    ) -> dict:
        command = self._find_command(name, 1)
        resolved: dict[str, dict] = {}
        definitions = command.get("options") or []
        path: list[tuple[int, str]] = []
        for part_type, part in ((SUBCOMMAND_GROUP, group), (SUBCOMMAND, subcommand)):
            if part is None:
                continue
            parent = next((o for o in definitions if o["name"] == part and o["type"] == part_type), None)
            if parent is None:
                raise KeyError(f"command {name!r} has no {'group' if part_type == 2 else 'subcommand'} {part!r}")
            definitions = parent.get("options") or []
            path.append((part_type, part))
        built = self._build_options(definitions, options or {}, resolved, focused)
        for part_type, part in reversed(path):
            built = [{"name": part, "type": part_type, "options": built}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": built}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    async def _inject(
        self,
        kind: int,
        data: dict,
        *,
        user: dict | None,
        channel_id: int | None = None,
        size_limit: int | None = None,
        permissions: int | None = None,
        message: dict | None = None,
    ) -> InteractionRecord:
        """Builds an INTERACTION_CREATE of type ``kind``, sends it on the gateway and returns its record."""
        await asyncio.wait_for(self.ready.wait(), 10)
        channel_id = channel_id or self.channel_id
        channel = self._channel(channel_id)
        member = self._member_payload(user or self.member, permissions)
        size_limit = self.attachment_size_limit if size_limit is None else size_limit
        payload: dict[str, Any] = {
            "id": str(self._snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": self.guild_locale, "features": []},
            "channel_id": str(channel_id),
            "channel": {**channel, "permissions": member["permissions"]},
            "member": member,
            "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(BOT_PERMISSIONS),
            "locale": self.locale,
            "guild_locale": self.guild_locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": size_limit,
        }
        if message is not None:
            payload["message"] = self._public(message)
        record = InteractionRecord(payload, created=self.now(), size_limit=size_limit)
        self._interactions[record.id] = record
        self._by_token[record.token] = record
        await self._dispatch("INTERACTION_CREATE", payload)
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
    ) -> InteractionRecord:
        """Runs the synced slash command ``name`` as ``user`` (default: ``self.member``).  Option values:
        str/int/float/bool; attachment dicts from :meth:`add_attachment`; user dicts for user options;
        role ids for role options; channel ids for channel options."""
        data = self._command_data(name, options, subcommand, group)
        return await self._inject(
            2, data, user=user, channel_id=channel_id, size_limit=attachment_size_limit, permissions=permissions
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
    ) -> InteractionRecord:
        """Sends an autocomplete interaction (type 4) with ``focused`` as the focused option; its
        typed text is ``options[focused]`` ("" when absent)."""
        options = {**options, focused: options.get(focused, "")}
        return await self._inject(4, self._command_data(name, options, subcommand, group, focused), user=user)

    async def click(
        self, message: dict, custom_id: str, *, user: dict | None = None, values: list[str] | None = None
    ) -> InteractionRecord:
        """Clicks the button (or picks ``values`` in the select) ``custom_id`` of ``message``."""
        message = self.messages.get(int(message["id"]), message)
        component = _find_component(message.get("components") or [], custom_id)
        if component is None:
            raise KeyError(f"message {message['id']} has no component {custom_id!r}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in SELECT_COMPONENT_TYPES:
            data["values"] = list(values or [])
        return await self._inject(3, data, user=user, channel_id=int(message["channel_id"]), message=message)

    async def submit_modal(
        self,
        custom_id: str,
        components: list[dict],
        *,
        user: dict | None = None,
        resolved_attachments: list[dict] = (),  # type: ignore[assignment]
        message: dict | None = None,
    ) -> InteractionRecord:
        """Submits the modal ``custom_id`` with ``components`` (mirroring the modal: action rows of
        text inputs, or Labels ``{"type": 18, "component": {...}}``).  File-upload values are
        attachment ids whose attachments are given in ``resolved_attachments``."""
        data: dict[str, Any] = {"custom_id": custom_id, "components": components}
        if resolved_attachments:
            data["resolved"] = {"attachments": {att["id"]: att for att in resolved_attachments}}
        if message is not None:
            message = self.messages.get(int(message["id"]), message)
        channel_id = int(message["channel_id"]) if message is not None else None
        return await self._inject(5, data, user=user, channel_id=channel_id, message=message)

    async def message_command(self, name: str, message: dict, *, user: dict | None = None) -> InteractionRecord:
        """Runs the synced message context-menu command ``name`` on ``message``."""
        command = self._find_command(name, 3)
        message = self.messages.get(int(message["id"]), message)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: self._public(message)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._inject(2, data, user=user, channel_id=int(message["channel_id"]))

    # ------------------------------------------------------------------ gateway

    async def _send(self, socket: web.WebSocketResponse, frame: dict) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await socket.send_str(json.dumps(frame))

    async def _dispatch(self, event: str, data: dict) -> None:
        """Sends a dispatch (op 0) with the next sequence number; kept for replay on RESUME."""
        async with self._send_lock:
            self._sequence += 1
            frame = {"op": 0, "t": event, "s": self._sequence, "d": data}
            self._dispatched.append(frame)
            if self._socket is not None and not self._socket.closed:
                await self._send(self._socket, frame)

    async def _gateway_notify(self) -> None:
        async with self._gateway_changed:
            self._gateway_changed.notify_all()

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(max_msg_size=0)
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            await self._send(
                socket, {"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}
            )
            async for msg in socket:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == 1:
                    await self._send(socket, {"op": 11, "s": None, "t": None, "d": None})
                elif op == 2:
                    await self._identify(socket, data)
                elif op == 6:
                    await self._resume(socket, data)
                elif op == 8:
                    await self._request_members(data)
        finally:
            self._sockets.discard(socket)
            if self._socket is socket:
                self._socket = None
            await self._gateway_notify()
        return socket

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.token

    async def _identify(self, socket: web.WebSocketResponse, data: dict) -> None:
        if not self._token_ok(data.get("token")):
            await socket.close(code=4004, message=b"Authentication failed.")
            return
        async with self._send_lock:
            self._socket = socket
            self._session_id = secrets.token_hex(16)
            self._sequence = 0
            self._dispatched = []
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": self._session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "user_settings": {},
            "_trace": ["discord-emulator"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        self.identify_count += 1
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", self._guild_create_payload())
        self.ready.set()
        await self._gateway_notify()

    async def _resume(self, socket: web.WebSocketResponse, data: dict) -> None:
        if not self._token_ok(data.get("token")) or data.get("session_id") != self._session_id:
            await self._send(socket, {"op": 9, "s": None, "t": None, "d": False})
            return
        async with self._send_lock:
            self._socket = socket
            since = int(data.get("seq") or 0)
            for frame in self._dispatched:
                if frame["s"] > since:
                    await self._send(socket, frame)
        await self._dispatch("RESUMED", {"_trace": ["discord-emulator"]})
        self.resume_count += 1
        await self._gateway_notify()

    async def _request_members(self, data: dict) -> None:
        members = list(self._members.values())
        wanted = data.get("user_ids")
        if wanted:
            wanted_ids = {str(user_id) for user_id in (wanted if isinstance(wanted, list) else [wanted])}
            members = [m for m in members if m["user"]["id"] in wanted_ids]
        chunk: dict[str, Any] = {
            "guild_id": str(self.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def force_reconnect(self, *, drop: bool = False, timeout: float = 10) -> None:
        """Makes the client reconnect and waits until it has resumed its session.

        By default sends op 7 RECONNECT.  With ``drop=True`` the socket is closed abruptly (code
        4000) instead; dispatches injected before the client is back are replayed on RESUME."""
        async with self._send_lock:
            socket, self._socket = self._socket, (None if drop else self._socket)
        if socket is None:
            raise RuntimeError("no client is connected to the gateway")
        resumed = self.resume_count
        if drop:
            await socket.close(code=4000)
        else:
            await self._send(socket, {"op": 7, "s": None, "t": None, "d": None})
        async with self._gateway_changed:
            await asyncio.wait_for(self._gateway_changed.wait_for(lambda: self.resume_count > resumed), timeout)

    # ------------------------------------------------------------------ OpenAPI conformance

    def openapi_violations(self) -> list[str]:
        """Checks each recorded call against Discord's OpenAPI document: the path template and
        method exist, query parameters are declared, and JSON body keys are known to the request
        schema (two levels deep).  [] when the document is absent."""
        if not OPENAPI_PATH.is_file():
            return []
        spec = _load_spec(str(OPENAPI_PATH))
        violations = []
        for call in self.calls:
            if (call.method, call.path) in SPEC_GAPS:
                continue
            template = _match_template(spec, call.path)
            where = f"{call.method} {call.path}"
            if template is None:
                violations.append(f"{where}: no such path in the OpenAPI document")
                continue
            item = spec["paths"][template]
            operation = item.get(call.method.lower())
            if operation is None:
                violations.append(f"{where}: method not allowed on {template}")
                continue
            known_query = {
                p["name"]
                for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                if p.get("in") == "query"
            }
            violations += [f"{where}: unknown query parameter {key!r}" for key in call.query if key not in known_query]
            content = (operation.get("requestBody") or {}).get("content", {})
            schema = (content.get("application/json") or content.get("multipart/form-data") or {}).get("schema")
            if call.json is not None and schema is not None:
                violations += [
                    f"{where}: {problem}" for problem in _schema_key_problems(spec, schema, call.json, "body", 2)
                ]
        return violations


# ---------------------------------------------------------------------- helpers (module level)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None


def _snowflake_param(value: str) -> int:
    if not value.isdigit():
        raise _form_error([], "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return int(value)


def _validate_command(command: Any, where: list[str | int]) -> None:
    """Discord's rules for one application command in a bulk overwrite."""
    if not isinstance(command, dict):
        raise _form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    command_type = command.get("type", 1)
    name, description = command.get("name"), command.get("description", "")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise _form_error([*where, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if command_type == 1:
        if not COMMAND_NAME_RE.match(name) or name != name.lower():
            raise _form_error([*where, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            raise _form_error([*where, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        _validate_options(command.get("options") or [], [*where, "options"])
    elif description:
        raise _form_error(
            [*where, "description"],
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        )


def _validate_options(options: list[dict], where: list[str | int]) -> None:
    """Option rules, recursively through subcommands and groups."""
    if len(options) > 25:
        raise _form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    optional_seen = False
    kinds = {option.get("type") in (SUBCOMMAND, SUBCOMMAND_GROUP) for option in options}
    if len(kinds) > 1:
        raise _form_error(
            where,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        )
    for index, option in enumerate(options):
        here = [*where, index]
        name, description = option.get("name"), option.get("description")
        if not isinstance(name, str) or not COMMAND_NAME_RE.match(name) or name != name.lower():
            raise _form_error([*here, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if name in names:
            raise _form_error(
                [*here, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique"
            )
        names.add(name)
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            raise _form_error([*here, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("required"):
            if optional_seen:
                raise _form_error(
                    [*here, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        if len(option.get("choices") or []) > 25:
            raise _form_error([*here, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if option.get("type") == SUBCOMMAND_GROUP and any(
            sub.get("type") != SUBCOMMAND for sub in option.get("options") or []
        ):
            raise _form_error(
                [*here, "options"],
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command groups may only contain sub-commands",
            )
        if option.get("type") in (SUBCOMMAND, SUBCOMMAND_GROUP):
            _validate_options(option.get("options") or [], [*here, "options"])


def _validate_message_fields(fields: dict) -> None:
    """Content/embed/component limits and the empty-message rule for a resulting message."""
    content, embeds, components = fields["content"] or "", fields["embeds"] or [], fields["components"] or []
    if len(content) > 2000:
        raise _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    if len(embeds) > 10:
        raise _form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            if len(embed.get(key) or "") > limit:
                raise _form_error(
                    ["embeds", index, key], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        total += sum(len(embed.get(key) or "") for key in ("title", "description"))
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields") or [])
        total += len((embed.get("footer") or {}).get("text", "")) + len((embed.get("author") or {}).get("name", ""))
    if total > 6000:
        raise _form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    if len(fields["attachments"]) > 10:
        raise _form_error(["attachments"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if fields["flags"] & FLAG_COMPONENTS_V2:
        if content or embeds:
            raise _form_error(
                ["content"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )
        if _count_components(components) > 40:
            raise _form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length.")
    else:
        if len(components) > 5:
            raise _form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        for index, row in enumerate(components):
            if row.get("type") != 1:
                raise _form_error(
                    ["components", index, "type"], "UNION_TYPE_CHOICES", "Top-level components must be action rows"
                )
            if not 1 <= len(row.get("components") or []) <= 5:
                raise _form_error(
                    ["components", index, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                )
    if not (content.strip() or embeds or components or fields["attachments"]):
        raise _ApiError(400, 50006, "Cannot send an empty message")


def _count_components(components: list[dict]) -> int:
    count = 0
    for component in components:
        count += 1
        count += _count_components(component.get("components") or [])
        count += _count_components([component["accessory"]] if component.get("accessory") else [])
        count += _count_components([component["component"]] if component.get("component") else [])
    return count


def _find_component(components: list[dict], custom_id: str) -> dict | None:
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        children = [
            *(component.get("components") or []),
            *([component["accessory"]] if component.get("accessory") else []),
            *([component["component"]] if component.get("component") else []),
        ]
        found = _find_component(children, custom_id)
        if found is not None:
            return found
    return None


def _validate_choices(choices: Any) -> None:
    if not isinstance(choices, list):
        raise _form_error(["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
    if len(choices) > 25:
        raise _form_error(["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")


def _validate_modal(data: dict) -> None:
    if not data.get("custom_id"):
        raise _form_error(["data", "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if not 1 <= len(data.get("title") or "") <= 45:
        raise _form_error(["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    if not 1 <= len(data.get("components") or []) <= 5:
        raise _form_error(["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")


@functools.cache
def _load_spec(path: str) -> dict:
    return json.loads(Path(path).read_text())


@functools.cache
def _spec_templates(path_keys: tuple[str, ...]) -> list[tuple[int, str, re.Pattern[str]]]:
    compiled = []
    for template in path_keys:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        literal_segments = sum(1 for segment in template.split("/") if segment and "{" not in segment)
        compiled.append((literal_segments, template, re.compile(pattern + "$")))
    return sorted(compiled, key=lambda entry: -entry[0])


def _match_template(spec: dict, path: str) -> str | None:
    for _, template, pattern in _spec_templates(tuple(spec["paths"])):
        if pattern.match(path):
            return template
    return None


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _schema_properties(spec: dict, schema: dict) -> dict[str, list[dict]] | None:
    """Every property an object schema (incl. its anyOf/oneOf/allOf branches) allows, each with the
    schemas it may have, or None when the schema does not restrict keys."""
    extra = SPEC_EXTRA_KEYS.get(schema.get("$ref", "").rsplit("/", 1)[-1], set())
    schema = _resolve(spec, schema)
    properties: dict[str, list[dict]] = {key: [value] for key, value in (schema.get("properties") or {}).items()}
    properties.update({key: [] for key in extra})
    restricted = "properties" in schema and not schema.get("additionalProperties")
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            branch_properties = _schema_properties(spec, branch)
            if branch_properties is None:
                if _resolve(spec, branch).get("type") not in ("null", "array"):
                    return None
                continue
            restricted = True
            for name, schemas in branch_properties.items():
                properties.setdefault(name, []).extend(schemas)
    return properties if restricted else None


def _schema_items(spec: dict, schema: dict) -> dict | None:
    schema = _resolve(spec, schema)
    if "items" in schema:
        return schema["items"]
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, []):
            items = _schema_items(spec, branch)
            if items is not None:
                return items
    return None


def _schema_key_problems(spec: dict, schema: dict, value: Any, where: str, depth: int) -> list[str]:
    """Keys of ``value`` that ``schema`` does not know, down to ``depth`` object levels."""
    if depth <= 0:
        return []
    if isinstance(value, list):
        items = _schema_items(spec, schema)
        if items is None:
            return []
        return [
            problem
            for index, item in enumerate(value)
            for problem in _schema_key_problems(spec, items, item, f"{where}[{index}]", depth)
        ]
    if not isinstance(value, dict):
        return []
    properties = _schema_properties(spec, schema)
    if properties is None:
        return []
    problems = [f"{where}.{key} is not in the request schema" for key in value if key not in properties]
    for key, item in value.items():
        if properties.get(key) and isinstance(item, (dict, list)):
            union = {"anyOf": properties[key]}
            problems += _schema_key_problems(spec, union, item, f"{where}.{key}", depth - 1)
    return problems
