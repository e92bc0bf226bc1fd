"""Channel message routes and the one place a message body becomes a stored message: validation,
uploads (per file the boost tier's or the interaction's size limit, 25 MiB per request), link unfurling,
mentions, and what a reader without the MESSAGE_CONTENT intent gets to see."""

from __future__ import annotations

import copy
import mimetypes
import re
import time
from typing import Any

from .parts import Parts
from .protocol import (
    MESSAGE_FLAGS_SETTABLE,
    ApiError,
    ApiRequest,
    ChannelType,
    ErrorCode,
    Intent,
    MessageFlag,
    MessageType,
    Permission,
    Reply,
    UploadedFile,
    form_error,
    iso,
    snowflake_param,
    without_content,
)
from .rest import REQUEST_SIZE_LIMIT, route
from .validation import validate_message_body, validate_message_fields
from .world import BOOST_TIER_UPLOAD_LIMIT

# Links Discord unfurls: not in <angle brackets>, not message links (the client renders those itself).
URL_RE = re.compile(r"(?<!<)https?://(?!(?:\w+\.)?discord(?:app)?\.com/channels/)[^\s<>]+")
USER_MENTION_RE = re.compile(r"<@!?(\d+)>")
MESSAGE_FIELDS = ("content", "embeds", "components", "attachments", "flags", "files")


class Messages(Parts):
    """Mixin: the messages of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_messages(self) -> None:
        self.messages: dict[int, dict] = {}

    # ------------------------------------------------------------------ test-facing

    def add_message(
        self,
        content: str = "",
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        attachments: list[dict] = (),  # type: ignore[assignment]
    ) -> dict:
        """Stores a message a user posted (e.g. as the target of :meth:`message_command`), without
        telling the client.  ``attachments`` are dicts from :meth:`add_attachment`; they become
        files of the channel (no longer ephemeral)."""
        channel_id = channel_id or self.channel_id
        fields = {
            "content": content,
            "embeds": self._unfurl(content, [], 0),
            "components": [],
            "attachments": [self._rehome(attachment, channel_id) for attachment in attachments],
            "flags": 0,
            "files": [],
        }
        return self._new_message(fields, channel_id=channel_id, author=user or self.member)

    def delete_message(self, message_id: int | str) -> None:
        """Deletes a stored message as its author would (without telling the client); its files
        leave the CDN with it."""
        self._delete(self.messages[int(message_id)])

    async def post_message(
        self,
        content: str = "",
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        attachments: list[dict] = (),  # type: ignore[assignment]
    ) -> dict:
        """Like :meth:`add_message`, and sends MESSAGE_CREATE to the sessions that get it (by shard)."""
        message = self.add_message(content, user=user, channel_id=channel_id, attachments=attachments)
        await self._dispatch_message(message)
        return message

    def as_seen_by_bot(self, message: dict) -> dict:
        """A stored message as the bot reads it through REST: another user's guild message loses
        content, embeds, attachments, components and poll unless the application has the
        MESSAGE_CONTENT intent enabled (``privileged_intents``) or the message mentions the bot."""
        public = self._public(message)
        if self.privileged_intents & Intent.MESSAGE_CONTENT or self._content_exempt(message):
            return public
        return without_content(public)

    # ------------------------------------------------------------------ composing

    def _content_exempt(self, message: dict) -> bool:
        if int(message["author"]["id"]) == self.application_id:
            return True
        if self.channels.get(int(message["channel_id"]), {}).get("type") == ChannelType.DM:
            return True
        return any(int(user["id"]) == self.application_id for user in message.get("mentions") or [])

    def _upload_limit(self, channel_id: int) -> int:
        """The bot's own per-file upload limit in a channel: the server's boost tier."""
        channel = self._channel(channel_id)
        if "guild_id" not in channel:
            return BOOST_TIER_UPLOAD_LIMIT[0]
        return self.guilds[int(channel["guild_id"])].upload_limit

    @staticmethod
    def _unfurl(content: str, embeds: list[dict], flags: int) -> list[dict]:
        """The body's embeds plus one link embed per URL in ``content`` (at most 5 embeds from links),
        none when the message suppresses embeds or uses components v2."""
        explicit = [embed for embed in embeds if embed.get("type") != "link"]
        if flags & (MessageFlag.SUPPRESS_EMBEDS | MessageFlag.IS_COMPONENTS_V2):
            return explicit
        links = list(dict.fromkeys(match.rstrip(".,)") for match in URL_RE.findall(content or "")))[:5]
        return [*explicit, *({"type": "link", "url": url} for url in links)]

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
            raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        validate_message_body(body)
        # "The file upload size limit applies to each file in a request" (Reference, "Uploading Files"),
        # and "the maximum request size when sending a message is 25 MiB" (Resources → Message).
        if any(len(upload.data) > size_limit for upload in uploads.values()) or (
            sum(len(upload.data) for upload in uploads.values()) > REQUEST_SIZE_LIMIT
        ):
            raise ApiError(413, ErrorCode.REQUEST_ENTITY_TOO_LARGE, "Request entity too large")
        if len(uploads) > 10:
            raise form_error(["files"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if previous is None:
            fields: dict[str, Any] = {"content": "", "embeds": [], "components": [], "attachments": [], "flags": 0}
            fields["files"] = []
        else:
            fields = {key: copy.copy(previous[key]) for key in MESSAGE_FIELDS}
        for key in ("content", "embeds", "components"):
            if key in body:
                fields[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "flags" in body and body["flags"] is not None:
            requested = int(body["flags"])
            keep = fields["flags"] & ~MESSAGE_FLAGS_SETTABLE if previous is not None else 0
            fields["flags"] = keep | (requested & MESSAGE_FLAGS_SETTABLE)
            if previous is not None:
                if previous["flags"] & MessageFlag.IS_COMPONENTS_V2 and not requested & MessageFlag.IS_COMPONENTS_V2:
                    raise form_error(
                        ["flags"],
                        "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG",
                        "The IS_COMPONENTS_V2 flag cannot be removed once set",
                    )
                # ephemerality cannot change after sending
                fields["flags"] = (fields["flags"] & ~MessageFlag.EPHEMERAL) | (
                    previous["flags"] & MessageFlag.EPHEMERAL
                )

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
                    raise form_error(
                        ["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", f"Unknown attachment {ref}"
                    )
            kept_ids = {att["id"] for att in kept}
            self._delete_files([att for att in fields["attachments"] if att["id"] not in kept_ids])
            fields["attachments"] = kept
        fields["attachments"] = fields["attachments"] + [
            store_upload(index, None) for index in sorted(uploads) if index not in new_files
        ]
        validate_message_fields(fields)
        fields["embeds"] = self._unfurl(fields["content"], fields["embeds"], fields["flags"])
        return fields

    def _mentions(self, content: str) -> list[dict]:
        ids = dict.fromkeys(int(match) for match in USER_MENTION_RE.findall(content or ""))
        return [self.users[user_id] for user_id in ids if user_id in self.users]

    def _new_message(self, fields: dict, *, channel_id: int, author: dict, extra: dict | None = None) -> dict:
        """Stores a new message (``fields`` from :meth:`_compose`) and returns the stored dict."""
        message_id = self._snowflake()
        channel = self._channel(channel_id)
        message: dict[str, Any] = {
            "id": str(message_id),
            "type": MessageType.DEFAULT,
            "channel_id": str(channel_id),
            "author": author,
            "timestamp": iso(time.time()),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": self._mentions(fields["content"]),
            "mention_roles": [],
            "pinned": False,
            "reactions": [],
            **fields,
            **(extra or {}),
        }
        if "guild_id" in channel:
            message["guild_id"] = channel["guild_id"]
        self.messages[message_id] = message
        return message

    def _edit_message(self, message: dict, body: Any, uploads: dict[int, UploadedFile], size_limit: int) -> dict:
        fields = self._compose(
            body, uploads, channel_id=int(message["channel_id"]), size_limit=size_limit, previous=message
        )
        message.update(fields)
        message["mentions"] = self._mentions(message["content"])
        message["edited_timestamp"] = iso(time.time())
        return message

    def _delete(self, message: dict) -> None:
        del self.messages[int(message["id"])]
        self._delete_files(message.get("attachments") or [])

    @staticmethod
    def _public(message: dict) -> dict:
        """A stored message as sent on the wire (without the recorded upload bytes)."""
        return {key: value for key, value in message.items() if key != "files"}

    def _channel_message(self, req: ApiRequest) -> dict:
        channel_id = snowflake_param(req.params["channel_id"])
        self._channel(channel_id)
        message = self.messages.get(snowflake_param(req.params["message_id"]))
        if message is None or int(message["channel_id"]) != channel_id or message["flags"] & MessageFlag.EPHEMERAL:
            raise ApiError(404, ErrorCode.UNKNOWN_MESSAGE, "Unknown Message")
        return message

    # ------------------------------------------------------------------ routes

    @route("GET", "/channels/{channel_id}")
    async def _get_channel(self, req: ApiRequest) -> Reply:
        channel_id = snowflake_param(req.params["channel_id"])
        self._require(channel_id, Permission.VIEW_CHANNEL)
        return 200, self._channel(channel_id)

    @route("POST", "/channels/{channel_id}/typing")
    async def _typing(self, req: ApiRequest) -> Reply:
        self._require(snowflake_param(req.params["channel_id"]), Permission.SEND_MESSAGES)
        return 204, None

    @route("GET", "/channels/{channel_id}/messages")
    async def _list_messages(self, req: ApiRequest) -> Reply:
        channel_id = snowflake_param(req.params["channel_id"])
        self._require(channel_id, Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY)
        limit = int(req.query.get("limit", 50))
        if not 1 <= limit <= 100:
            raise form_error(["limit"], "NUMBER_TYPE_MAX", "Int value should be between 1 and 100.")
        found = [
            self.as_seen_by_bot(m)
            for mid, m in sorted(self.messages.items(), reverse=True)
            if int(m["channel_id"]) == channel_id and not m["flags"] & MessageFlag.EPHEMERAL
        ]
        return 200, found[:limit]

    @route("POST", "/channels/{channel_id}/messages")
    async def _create_message(self, req: ApiRequest) -> Reply:
        channel_id = snowflake_param(req.params["channel_id"])
        body = req.body or {}
        needed = Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES
        if req.uploads:
            needed |= Permission.ATTACH_FILES
        if isinstance(body, dict) and body.get("message_reference"):
            needed |= Permission.READ_MESSAGE_HISTORY
        self._require(channel_id, needed)
        limit = self._upload_limit(channel_id)
        fields = self._compose(req.body, req.uploads, channel_id=channel_id, size_limit=limit)
        if fields["flags"] & MessageFlag.EPHEMERAL:
            raise form_error(["flags"], "MESSAGE_FLAGS_INVALID", "Ephemeral flag is only valid for interactions.")
        extra: dict[str, Any] = {}
        reference = body.get("message_reference") if isinstance(body, dict) else None
        if reference:
            extra = {"type": MessageType.REPLY, "message_reference": reference}
        message = self._new_message(fields, channel_id=channel_id, author=self.bot_user, extra=extra)
        await self._dispatch_message(message)
        return 200, self._public(message)

    @route("GET", "/channels/{channel_id}/messages/{message_id}")
    async def _get_message(self, req: ApiRequest) -> Reply:
        self._require(
            snowflake_param(req.params["channel_id"]), Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY
        )
        return 200, self.as_seen_by_bot(self._channel_message(req))

    @route("PATCH", "/channels/{channel_id}/messages/{message_id}")
    async def _patch_message(self, req: ApiRequest) -> Reply:
        channel_id = snowflake_param(req.params["channel_id"])
        message = self._channel_message(req)
        self._require(channel_id, Permission.VIEW_CHANNEL)
        if int(message["author"]["id"]) != self.application_id:
            raise ApiError(403, ErrorCode.CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user")
        if req.uploads:
            self._require(channel_id, Permission.ATTACH_FILES)
        limit = self._upload_limit(channel_id)
        return 200, self._public(self._edit_message(message, req.body, req.uploads, limit))

    @route("DELETE", "/channels/{channel_id}/messages/{message_id}")
    async def _delete_message(self, req: ApiRequest) -> Reply:
        channel_id = snowflake_param(req.params["channel_id"])
        message = self._channel_message(req)
        own = int(message["author"]["id"]) == self.application_id
        self._require(channel_id, Permission.VIEW_CHANNEL | (0 if own else Permission.MANAGE_MESSAGES))
        self._delete(message)
        return 204, None

    @route("POST", "/attachments/refresh-urls")
    async def _refresh_urls(self, req: ApiRequest) -> Reply:
        urls = (req.body or {}).get("attachment_urls")
        if not isinstance(urls, list) or not 1 <= len(urls) <= 50:
            raise form_error(["attachment_urls"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 50 in length.")
        return 200, {"refreshed_urls": [{"original": url, "refreshed": self._refreshed(url)} for url in urls]}
