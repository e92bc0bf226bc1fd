"""REST plumbing: the route table, request parsing, injected faults, rate limits (per-route buckets of
the sizes clients observe, and the global 50 requests/s) with ``X-RateLimit-*`` headers, the
invalid-request ban, and the login, gateway and guild routes."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .parts import Parts
from .protocol import (
    API_PREFIX,
    MIB,
    ApiError,
    ApiRequest,
    ErrorCode,
    Reply,
    RestCall,
    UploadedFile,
    json_response,
    parse_json,
    snowflake_param,
)
from .schema import check_request

RouteHandler = Callable[[Any, ApiRequest], Awaitable[Reply]]
ROUTES: list[tuple[str, str, re.Pattern[str], str]] = []
# The parameters that make a route's rate-limit bucket distinct (Discord's "major parameters").
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id", "webhook_token", "interaction_id")
# Discord bans a client (Cloudflare, about an hour) after 10,000 401/403/429 answers in 10 minutes; 429s
# with ``X-RateLimit-Scope: shared`` do not count (Topics → Rate Limits, "Invalid Request Limit").
INVALID_REQUEST_LIMIT = 10_000
INVALID_REQUEST_WINDOW = 600.0
BAN_DURATION = 3600.0
# "The maximum request size when sending a message is 25 MiB" (Resources → Message, Create Message).
REQUEST_SIZE_LIMIT = 25 * MIB
# "All bots can make up to 50 requests per second to our API ... If no authorization header is provided,
# then the limit is applied to the IP address ... Interaction endpoints are not bound to the bot's Global
# Rate Limit" (Topics → Rate Limits, "Global Rate Limit").
GLOBAL_RATE_LIMIT = (50, 1.0)
# Per-route bucket sizes, (requests, seconds) per major parameter.  Discord publishes none ("rate limits
# should not be hard coded"); these are what clients read in the X-RateLimit headers, with their source.
# Routes not listed get the emulator's ``rate_limit`` (default 50/1 s: only the global limit binds them).
ROUTE_RATE_LIMITS: dict[tuple[str, str], tuple[int, float]] = {
    # 5 per 5 s per channel for creating and for editing a message: discord-api-docs#2761 ("POST
    # /channels/:channelId/messages and PATCH /channels/:channelId/messages/:messageId's bucket hashes of
    # 5/5"). Whether the two share one bucket is not said; they are kept apart here.
    ("POST", "/channels/{channel_id}/messages"): (5, 5.0),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): (5, 5.0),
    # 5 per 1 s per channel for deleting a message younger than 10 s (or an unknown one): discord-api-docs
    # #8330. Older messages have slower buckets of their own (3 per 0.333 s, 30 per 4 s past 2 weeks), not
    # modelled: the bot deletes only what it just posted.
    ("DELETE", "/channels/{channel_id}/messages/{message_id}"): (5, 1.0),
    # Interaction followups: 5 per 2 s per interaction ("the rate limits used are identical to webhook rate
    # limits", keyed by the interaction): discord-api-docs#2701. Editing, reading and deleting the
    # interaction's messages are webhook message routes of the same size (discordgo#1384: limit 5).
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"): (5, 2.0),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"): (5, 2.0),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"): (5, 2.0),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"): (5, 2.0),
}
# The 429 body's message per X-RateLimit-Scope (Topics → Rate Limits, the example responses).
RATE_LIMITED_MESSAGE = {
    "user": "You are being rate limited.",
    "global": "You are being rate limited.",
    "shared": "The resource is being rate limited.",
}
# Routes Discord answers without a token: Get Gateway "does not require authentication" (Events → Gateway);
# Get Gateway Bot "requires authentication using a valid bot token".
PUBLIC_ROUTES = {("GET", "/gateway")}
# Interaction endpoints (the callback, and the application's webhook): authorised by the interaction
# token, and not bound by the global limit.
INTERACTION_ROUTE_PREFIXES = ("/interactions/", "/webhooks/")
# Called with every REST call any emulator answered, once answered (a test session watches the bot's
# calls through it, see tests/discord_payloads.py).
CALL_OBSERVERS: list[Callable[[RestCall], None]] = []


def route(method: str, template: str) -> Callable[[RouteHandler], RouteHandler]:
    """Registers a REST handler for ``method template`` (template as in Discord's docs)."""
    pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")

    def register(handler: RouteHandler) -> RouteHandler:
        ROUTES.append((method, template, pattern, handler.__name__))
        return handler

    return register


@dataclass
class _Bucket:
    """A fixed window of ``limit`` requests per ``per`` seconds (wall clock: discord.py sleeps real time)."""

    name: str
    limit: int
    per: float
    scope: str = "user"
    used: int = 0
    reset_at: float = 0.0

    def take(self, now: float) -> tuple[bool, dict[str, str]]:
        if now >= self.reset_at:
            self.used, self.reset_at = 0, now + self.per
        allowed = self.used < self.limit
        if allowed:
            self.used += 1
        # Rounded up to the millisecond: a client that sleeps exactly this long finds the window reset.
        reset_after = math.ceil(max(self.reset_at - now, 0.0) * 1000) / 1000
        return allowed, {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - self.used),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.name,
        }


class Rest(Parts):
    """Mixin: the REST API of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_rest(self, *, invalid_request_limit: int, rate_limit: tuple[int, float], recommended_shards: int) -> None:
        self.calls: list[RestCall] = []
        self._faults: list[dict] = []
        self._closing = asyncio.Event()  # set as the emulator closes: stalled requests end then
        self.stalled: list[RestCall] = []  # requests held by `stall_next`
        self.invalid_request_limit = invalid_request_limit
        self._invalid_at: deque[float] = deque()
        self.banned_until: float | None = None
        self._default_rate_limit = rate_limit
        self._rate_limits: dict[tuple[str, str], tuple[int, float, str]] = {
            route: (limit, per, "user") for route, (limit, per) in ROUTE_RATE_LIMITS.items()
        }
        self._buckets: dict[tuple[str, str, tuple[str, ...]], _Bucket] = {}
        self.global_rate_limit = GLOBAL_RATE_LIMIT
        self._global_buckets: dict[str, _Bucket] = {}
        self.rate_limited_count = 0
        self.recommended_shards = recommended_shards
        self.request_size_limit = REQUEST_SIZE_LIMIT

    # ------------------------------------------------------------------ test-facing

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
        instead of handling them.  A 429 gets a ``Via`` header, a ``retry_after`` and an
        ``X-RateLimit-Scope`` (``user`` unless ``headers`` says ``shared``, which Discord does not count
        toward the invalid-request ban) by default, so discord.py retries it."""
        headers = dict(headers or {})
        default: dict[str, Any] = {"code": 0, "message": f"{status}: injected fault"}
        if status == 429:
            headers.setdefault("Via", "1.1 google")
            default = {"message": RATE_LIMITED_MESSAGE[headers.setdefault("X-RateLimit-Scope", "user")]}
        body = dict(body) if body is not None else default
        if status == 429:
            body.setdefault("retry_after", 0.05)
            body.setdefault("global", False)
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

    def stall_next(self, method: str, path_pattern: str, *, times: int = 1) -> None:
        """The next ``times`` matching requests (as ``fail_next`` matches them) are never answered: the
        connection stays open until the emulator closes, as when Discord has an outage mid-request."""
        self._faults.append(
            {"method": method.upper(), "pattern": re.compile(path_pattern), "stall": True, "times": times}
        )

    def set_rate_limit(self, method: str, template: str, limit: int, per: float, *, scope: str = "user") -> None:
        """Limits ``method template`` (e.g. ``"POST", "/channels/{channel_id}/messages"``) to ``limit``
        requests per ``per`` seconds per major parameter, as Discord's per-route buckets do, from the
        next bucket on.  With ``scope="shared"`` the limit is the resource's (Discord's "per resource
        limit"): its 429s say ``X-RateLimit-Scope: shared`` and do not count toward the ban."""
        if scope not in RATE_LIMITED_MESSAGE:
            raise ValueError(f"scope must be one of {sorted(RATE_LIMITED_MESSAGE)}, not {scope!r}")
        self._rate_limits[(method.upper(), template)] = (limit, per, scope)

    @property
    def banned(self) -> bool:
        """Whether the client is banned for too many invalid requests (see ``invalid_request_limit``)."""
        return self.banned_until is not None and self.now() < self.banned_until

    @property
    def invalid_request_count(self) -> int:
        """401, 403 and 429 answers within the last 10 minutes (emulator time)."""
        self._forget_old_invalid()
        return len(self._invalid_at)

    # ------------------------------------------------------------------ plumbing

    def _forget_old_invalid(self) -> None:
        while self._invalid_at and self._invalid_at[0] <= self.now() - INVALID_REQUEST_WINDOW:
            self._invalid_at.popleft()

    def _count_answer(self, status: int, headers: dict[str, str]) -> None:
        if status not in (401, 403, 429):
            return
        if status == 429 and headers.get("X-RateLimit-Scope") == "shared":
            return  # "429 errors returned with X-RateLimit-Scope: shared are not counted against you"
        self._invalid_at.append(self.now())
        self._forget_old_invalid()
        if len(self._invalid_at) >= self.invalid_request_limit:
            self.banned_until = self.now() + BAN_DURATION

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
                    payload = parse_json(await part.read())
                elif re.fullmatch(r"files\[\d+\]", name):
                    data = bytes(await part.read())
                    uploads[int(name[6:-1])] = UploadedFile(
                        part.filename or f"file{name[6:-1]}", part.headers.get("Content-Type"), data
                    )
            return payload, uploads
        raw = await request.read()
        return (parse_json(raw) if raw else None), uploads

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path[len(API_PREFIX) :]
        call = RestCall(request.method, path, dict(request.query), None)
        call.user_agent = request.headers.get("User-Agent", "")
        self.calls.append(call)
        if self.banned:
            # Cloudflare's ban: a 429 with a text body and no Via header; discord.py raises at once.
            call.status = 429
            self._observed(call)
            return web.Response(status=429, text="error code: 1015", headers={"Retry-After": "3600"})
        headers: dict[str, str] = {}
        try:
            if (request.content_length or 0) > self.request_size_limit:
                raise ApiError(413, ErrorCode.REQUEST_ENTITY_TOO_LARGE, "Request entity too large")
            call.json, uploads = await self._read_body(request)
            call.files = [uploads[index] for index in sorted(uploads)]
            check = check_request(request.method, path, call.query, call.json)
            call.violations = check.violations
            fault = self._take_fault(request.method, path)
            if fault is not None and fault.get("stall"):
                self.stalled.append(call)
                await self._closing.wait()
                raise ApiError(503, 0, "the emulator closed")
            if fault is not None:
                status, body, headers = fault["status"], fault["body"], fault["headers"]
            else:
                status, body, headers = await self._dispatch_route(request, path, call, uploads, check.refusal)
        except ApiError as error:
            status, body = error.status, error.body
            call.refusal = error.refusal
        call.status = status
        self._count_answer(status, headers)
        self._observed(call)
        if body is None:
            return web.Response(status=status, headers=headers)
        return json_response(status, body, headers)

    @staticmethod
    def _observed(call: RestCall) -> None:
        for observer in CALL_OBSERVERS:
            observer(call)

    def _rate_limit(self, method: str, template: str, params: dict[str, str]) -> tuple[bool, _Bucket, dict[str, str]]:
        limit, per, scope = self._rate_limits.get((method, template), (*self._default_rate_limit, "user"))
        major = tuple(params.get(key, "") for key in MAJOR_PARAMETERS)
        key = (method, template, major)
        bucket = self._buckets.get(key)
        if bucket is None:
            name = hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]
            bucket = self._buckets[key] = _Bucket(name, limit, per, scope)
        allowed, headers = bucket.take(time.monotonic())
        return allowed, bucket, headers

    def _global_limit(self, identity: str) -> tuple[bool, float]:
        """Takes one request of ``identity``'s (the bot token's, or the IP's) global allowance."""
        bucket = self._global_buckets.get(identity)
        if bucket is None or (bucket.limit, bucket.per) != self.global_rate_limit:
            bucket = self._global_buckets[identity] = _Bucket("global", *self.global_rate_limit, "global")
        allowed, headers = bucket.take(time.monotonic())
        return allowed, float(headers["X-RateLimit-Reset-After"])

    def _too_many(self, retry_after: float, scope: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Discord's 429 (Topics → Rate Limits, "Exceeding A Rate Limit"), with the ``Via`` header
        that tells discord.py it is not a Cloudflare ban."""
        self.rate_limited_count += 1
        body = {"message": RATE_LIMITED_MESSAGE[scope], "retry_after": retry_after, "global": scope == "global"}
        headers = headers | {
            "Via": "1.1 google",
            "X-RateLimit-Scope": scope,
            "Retry-After": str(math.ceil(retry_after)),
        }
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        return 429, body, headers

    async def _dispatch_route(
        self,
        request: web.Request,
        path: str,
        call: RestCall,
        uploads: dict[int, UploadedFile],
        refusal: ApiError | None,
    ) -> tuple[int, Any, dict[str, str]]:
        """Routes a request: 404/405 for no route, 401 without the bot token, 429 past the route's
        bucket, then ``refusal`` (the body breaks Discord's schema), else the route's handler."""
        allowed = False
        for method, template, pattern, handler_name in ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if method != request.method:
                continue
            interaction_route = template.startswith(INTERACTION_ROUTE_PREFIXES)
            authorised = request.headers.get("Authorization") == f"Bot {self.token}"
            if not (authorised or interaction_route or (method, template) in PUBLIC_ROUTES):
                raise ApiError(401, ErrorCode.GENERAL, "401: Unauthorized")
            if not interaction_route:
                within, retry_after = self._global_limit("bot" if authorised else f"ip:{request.remote}")
                if not within:
                    return self._too_many(retry_after, "global", {})
            within, bucket, headers = self._rate_limit(method, template, match.groupdict())
            if not within:
                return self._too_many(float(headers["X-RateLimit-Reset-After"]), bucket.scope, headers)
            if refusal is not None:
                raise refusal
            handler = getattr(self, handler_name)
            status, body = await handler(ApiRequest(match.groupdict(), call.query, call.json, uploads))
            return status, body, headers
        if allowed:
            raise ApiError(405, ErrorCode.GENERAL, "405: Method Not Allowed")
        raise ApiError(404, ErrorCode.GENERAL, "404: Not Found")

    # ------------------------------------------------------------------ login, gateway, guilds

    @route("GET", "/users/@me")
    async def _get_me(self, req: ApiRequest) -> Reply:
        return 200, {**self.bot_user, "verified": True, "mfa_enabled": False, "locale": "en-US", "email": None}

    @route("GET", "/users/{user_id}")
    async def _get_user(self, req: ApiRequest) -> Reply:
        user = self.users.get(snowflake_param(req.params["user_id"]))
        if user is None:
            raise ApiError(404, ErrorCode.UNKNOWN_USER, "Unknown User")
        return 200, user

    @route("POST", "/users/@me/channels")
    async def _create_dm(self, req: ApiRequest) -> Reply:
        # "Create DM": the existing DM with the recipient, else a new one (docs: resources/user#create-dm).
        body = req.body if isinstance(req.body, dict) else {}
        recipient = self.users.get(snowflake_param(str(body.get("recipient_id", ""))))
        if recipient is None:
            raise ApiError(400, ErrorCode.INVALID_RECIPIENTS, "Invalid Recipient(s)")
        found = next(
            (
                channel_id
                for channel_id, channel in self.channels.items()
                if self.is_bot_dm(channel) and channel["recipients"][0]["id"] == recipient["id"]
            ),
            None,
        )
        channel_id = found if found is not None else self.add_dm_channel(recipient)
        return 200, self.channels[channel_id]

    @route("GET", "/oauth2/applications/@me")
    async def _get_application(self, req: ApiRequest) -> Reply:
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

    @route("GET", "/gateway")
    async def _get_gateway(self, req: ApiRequest) -> Reply:
        return 200, {"url": self.gateway_url}

    @route("GET", "/gateway/bot")
    async def _get_gateway_bot(self, req: ApiRequest) -> Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": self.recommended_shards, "session_start_limit": limit}

    @route("GET", "/guilds/{guild_id}")
    async def _get_guild(self, req: ApiRequest) -> Reply:
        # A server the bot is not in reads like one that does not exist, 404 10004 Unknown Guild (so
        # since January 2023, discord-api-docs#5840; before, 403 50001 Missing Access).
        found = self.guilds.get(snowflake_param(req.params["guild_id"]))
        if found is None or not self.bot_is_in(found):
            raise ApiError(404, ErrorCode.UNKNOWN_GUILD, "Unknown Guild")
        guild = self._guild_create_payload(found)
        keys = ("id", "name", "icon", "owner_id", "roles", "emojis", "features", "stickers", "preferred_locale")
        return 200, {k: guild[k] for k in (*keys, "premium_tier", "description")}

    @route("GET", "/guilds/{guild_id}/members/{user_id}")
    async def _get_member(self, req: ApiRequest) -> Reply:
        guild = self._guild_of_bot(snowflake_param(req.params["guild_id"]))
        member = guild.members.get(snowflake_param(req.params["user_id"]))
        if member is None:
            raise ApiError(404, ErrorCode.UNKNOWN_MEMBER, "Unknown Member")
        return 200, member
