"""The gateway: HELLO/heartbeats, IDENTIFY (token, privileged intents, shard) → READY and one
GUILD_CREATE per guild of the shard that the bot is in, RESUME with replay, and dispatches routed by shard: a guild's
events go to every session of shard ``(guild_id >> 22) % shard_count``, DMs to shard 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .parts import Parts
from .protocol import HEARTBEAT_INTERVAL_MS, PRIVILEGED_INTENTS, GatewayClose, GatewayOp, Intent, without_content


@dataclass
class Session:
    """One identified gateway session: its shard, the intents it asked for, and what it was sent."""

    id: str
    shard_id: int
    shard_count: int
    intents: int
    socket: web.WebSocketResponse | None
    sequence: int = 0
    dispatched: list[dict] = field(default_factory=list)

    def receives(self, guild_id: int | None) -> bool:
        """Whether a guild's events (``None``: a DM's) are routed to this session's shard."""
        wanted = 0 if guild_id is None else (guild_id >> 22) % self.shard_count
        return self.shard_id == wanted


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard a guild's events go to."""
    return (guild_id >> 22) % shard_count


class Gateway(Parts):
    """Mixin: the gateway of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_gateway(self) -> None:
        self.ready = asyncio.Event()
        self.identify_count = 0
        self.resume_count = 0
        self.sessions: dict[str, Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._send_lock = asyncio.Lock()
        self._gateway_changed = asyncio.Condition()

    # ------------------------------------------------------------------ test-facing

    async def force_reconnect(self, *, drop: bool = False, timeout: float = 10) -> None:
        """Makes every connected session reconnect and waits until each has resumed.

        By default sends op 7 RECONNECT.  With ``drop=True`` the socket is closed abruptly (code
        4000) instead; dispatches injected before the client is back are replayed on RESUME."""
        async with self._send_lock:
            live = [s for s in self.sessions.values() if s.socket is not None and not s.socket.closed]
            sockets = [s.socket for s in live]
            if drop:
                for session in live:
                    session.socket = None
        if not live:
            raise RuntimeError("no client is connected to the gateway")
        resumed = self.resume_count
        for socket in sockets:
            assert socket is not None
            if drop:
                await socket.close(code=GatewayClose.UNKNOWN_ERROR)
            else:
                await self._send(socket, {"op": GatewayOp.RECONNECT, "s": None, "t": None, "d": None})
        async with self._gateway_changed:
            await asyncio.wait_for(
                self._gateway_changed.wait_for(lambda: self.resume_count >= resumed + len(live)), timeout
            )

    async def wait_for_sessions(self, count: int, timeout: float = 10) -> list[Session]:
        """Waits until ``count`` sessions have identified and received their guilds."""
        async with self._gateway_changed:
            await asyncio.wait_for(self._gateway_changed.wait_for(lambda: len(self.sessions) >= count), timeout)
        return list(self.sessions.values())

    def received(self, event: str) -> dict[int, list[dict]]:
        """Per shard id, the ``d`` of every ``event`` dispatch sent to its sessions (all sessions merged)."""
        found: dict[int, list[dict]] = {}
        for session in self.sessions.values():
            frames = [frame["d"] for frame in session.dispatched if frame["t"] == event]
            found.setdefault(session.shard_id, []).extend(frames)
        return found

    # ------------------------------------------------------------------ dispatching

    async def _send(self, socket: web.WebSocketResponse, frame: dict) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await socket.send_str(json.dumps(frame))

    async def _send_to(self, session: Session, event: str, data: dict) -> None:
        """Sends a dispatch (op 0) with the session's next sequence number; kept for replay on RESUME."""
        session.sequence += 1
        frame = {"op": GatewayOp.DISPATCH, "t": event, "s": session.sequence, "d": data}
        session.dispatched.append(frame)
        if session.socket is not None and not session.socket.closed:
            await self._send(session.socket, frame)

    async def _dispatch(
        self,
        event: str,
        data: dict,
        *,
        guild_id: int | None = None,
        shape: Callable[[Session, dict], dict | None] | None = None,
    ) -> None:
        """Sends ``event`` to every session of the shard that owns ``guild_id`` (None: shard 0);
        ``shape`` may adapt the payload per session (or return None to skip it)."""
        async with self._send_lock:
            for session in list(self.sessions.values()):
                if not session.receives(guild_id):
                    continue
                payload = data if shape is None else shape(session, data)
                if payload is not None:
                    await self._send_to(session, event, payload)

    async def _dispatch_message(self, message: dict) -> None:
        """MESSAGE_CREATE to sessions with GUILD_MESSAGES (DIRECT_MESSAGES for DMs), stripped of its
        content for sessions without MESSAGE_CONTENT unless the message is exempt."""
        guild_id = int(message["guild_id"]) if "guild_id" in message else None
        if guild_id is None:
            reaches_bot = self.is_bot_dm(self.channels[int(message["channel_id"])])
        else:
            reaches_bot = self.application_id in self.guilds[guild_id].members
        if not reaches_bot:
            return  # a DM between users, or a server the bot is not in
        needed = Intent.GUILD_MESSAGES if guild_id is not None else Intent.DIRECT_MESSAGES
        public = self._public(message)
        exempt = self._content_exempt(message)

        def shape(session: Session, data: dict) -> dict | None:
            if not session.intents & needed:
                return None
            if exempt or session.intents & Intent.MESSAGE_CONTENT:
                return data
            return without_content(data)

        await self._dispatch("MESSAGE_CREATE", public, guild_id=guild_id, shape=shape)

    async def _gateway_notify(self) -> None:
        async with self._gateway_changed:
            self._gateway_changed.notify_all()

    # ------------------------------------------------------------------ the socket

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(max_msg_size=0)
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            hello = {"op": GatewayOp.HELLO, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}
            await self._send(socket, hello)
            async for msg in socket:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == GatewayOp.HEARTBEAT:
                    await self._send(socket, {"op": GatewayOp.HEARTBEAT_ACK, "s": None, "t": None, "d": None})
                elif op == GatewayOp.IDENTIFY:
                    await self._identify(socket, data)
                elif op == GatewayOp.RESUME:
                    await self._resume(socket, data)
                elif op == GatewayOp.REQUEST_GUILD_MEMBERS:
                    await self._request_members(data)
        finally:
            self._sockets.discard(socket)
            for session in self.sessions.values():
                if session.socket is socket:
                    session.socket = None
            await self._gateway_notify()
        return socket

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.token

    async def _identify(self, socket: web.WebSocketResponse, data: dict) -> None:
        if not self._token_ok(data.get("token")):
            await socket.close(code=GatewayClose.AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await socket.close(code=GatewayClose.DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < shard_count:
            await socket.close(code=GatewayClose.INVALID_SHARD, message=b"Invalid shard.")
            return
        session = Session(secrets.token_hex(16), shard_id, shard_count, intents, socket)
        guilds = [
            guild
            for guild in self.guilds.values()
            if shard_of(guild.id, shard_count) == shard_id and self.application_id in guild.members
        ]
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.id,
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
            ready["shard"] = [shard_id, shard_count]
        async with self._send_lock:
            self.sessions[session.id] = session
            self.identify_count += 1
            await self._send_to(session, "READY", ready)
            for guild in guilds:
                await self._send_to(session, "GUILD_CREATE", self._guild_create_payload(guild))
        self.ready.set()
        await self._gateway_notify()

    async def _resume(self, socket: web.WebSocketResponse, data: dict) -> None:
        session = self.sessions.get(data.get("session_id") or "")
        if not self._token_ok(data.get("token")) or session is None:
            await self._send(socket, {"op": GatewayOp.INVALID_SESSION, "s": None, "t": None, "d": False})
            return
        async with self._send_lock:
            session.socket = socket
            since = int(data.get("seq") or 0)
            for frame in session.dispatched:
                if frame["s"] > since:
                    await self._send(socket, frame)
            await self._send_to(session, "RESUMED", {"_trace": ["discord-emulator"]})
        self.resume_count += 1
        await self._gateway_notify()

    async def _request_members(self, data: dict) -> None:
        guild = self.guilds.get(int(data.get("guild_id") or 0))
        if guild is None or self.application_id not in guild.members:
            return
        members = list(guild.members.values())
        wanted = data.get("user_ids")
        if wanted:
            wanted_ids = {str(user_id) for user_id in (wanted if isinstance(wanted, list) else [wanted])}
            members = [m for m in members if m["user"]["id"] in wanted_ids]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._dispatch("GUILD_MEMBERS_CHUNK", chunk, guild_id=guild.id)
