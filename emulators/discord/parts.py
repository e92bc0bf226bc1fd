"""What the parts of :class:`~emulators.discord.DiscordEmulator` share: the state one part sets up and
others read, and the methods one part provides to the others. Each part (``World``, ``Cdn``, ``Rest``,
``Commands``, ``Messages``, ``Webhooks``, ``Injection``, ``Gateway``) derives from :class:`Parts`, so a
type checker sees every cross-part call; at run time the methods come from the part that defines them
(``Parts`` is last in the emulator's method resolution order and defines none of them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gateway import Session
    from .interactions import InteractionRecord
    from .protocol import UploadedFile
    from .world import Guild


class Parts:
    """The shared state and the cross-part methods (declared for the type checker only)."""

    # Set up by the emulator and World.
    token: str
    response_deadline: float
    attachment_size_limit: int
    privileged_intents: int
    application_id: int
    bot_user: dict
    owner: dict
    users: dict[int, dict]
    guilds: dict[int, Guild]
    channels: dict[int, dict]
    guild_id: int
    channel_id: int
    member: dict
    # Set up by Messages, Webhooks and Gateway.
    messages: dict[int, dict]
    ready: asyncio.Event
    _interactions: dict[int, InteractionRecord]
    _by_token: dict[str, InteractionRecord]

    if TYPE_CHECKING:

        @property
        def gateway_url(self) -> str: ...

        @property
        def cdn_base(self) -> str: ...

        # The emulator
        def now(self) -> float: ...
        def _snowflake(self) -> int: ...

        # World
        def guild(self, guild_id: int | None = None) -> Guild: ...
        def permissions_in(self, channel_id: int, user_id: int | None = None) -> int: ...
        def _channel(self, channel_id: int) -> dict: ...
        def _require(self, channel_id: int, needed: int) -> None: ...
        def _member_payload(self, guild: Guild, user: dict, channel: dict, permissions: int | None = None) -> dict: ...
        def _guild_create_payload(self, guild: Guild) -> dict: ...
        def bot_is_in(self, guild: Guild) -> bool: ...
        def _guild_of_bot(self, guild_id: int) -> Guild: ...
        def add_dm_channel(self, user: dict) -> int: ...
        @staticmethod
        def is_bot_dm(channel: dict) -> bool: ...

        # Cdn
        def _register_file(
            self,
            data: bytes,
            filename: str,
            content_type: str | None,
            channel_id: int | None,
            *,
            width: int | None = None,
            height: int | None = None,
            expires_in: float = ...,
            description: str | None = None,
        ) -> dict: ...
        def _rehome(self, attachment: dict, channel_id: int) -> dict: ...
        def _delete_files(self, attachments: list[dict]) -> None: ...
        def _refreshed(self, url: str) -> str: ...

        # Commands
        def _find_command(self, name: str, command_type: int, guild_id: int) -> dict: ...

        # Messages
        def _compose(
            self,
            body: Any,
            uploads: dict[int, UploadedFile],
            *,
            channel_id: int,
            size_limit: int,
            previous: dict | None = None,
        ) -> dict: ...
        def _new_message(self, fields: dict, *, channel_id: int, author: dict, extra: dict | None = None) -> dict: ...
        def _edit_message(
            self, message: dict, body: Any, uploads: dict[int, UploadedFile], size_limit: int
        ) -> dict: ...
        def _delete(self, message: dict) -> None: ...
        def _content_exempt(self, message: dict) -> bool: ...
        @staticmethod
        def _public(message: dict) -> dict: ...

        # Gateway
        async def _dispatch(
            self,
            event: str,
            data: dict,
            *,
            guild_id: int | None = None,
            shape: Callable[[Session, dict], dict | None] | None = None,
        ) -> None: ...
        async def _dispatch_message(self, message: dict) -> None: ...
