"""A loopback Discord for end-to-end tests and benchmarks: REST, gateway and CDN on 127.0.0.1 that the
real, unmodified discord.py client logs into.  It is as strict as Discord wherever the bot depends
on it, records everything the bot does, and lets tests inject interactions and faults.

Modules: ``protocol`` (numbers by name, shared shapes), ``world`` (guilds, channels, roles, members,
permission calculation), ``cdn`` (signed URLs, ephemeral attachments), ``rest`` (routing, faults,
rate limits, ban; login, gateway and guild routes), ``commands``, ``messages``, ``webhooks``
(interaction callback and followups), ``interactions`` (:class:`InteractionRecord`, injection),
``gateway`` (identify/resume, shard routing), ``validation`` (body rules), ``schema`` (every request
body validated against ``openapi.json``, Discord's own document), ``emulator`` (:class:`DiscordEmulator`).

What it models (each checked against discord.py 2.7's source and Discord's documentation):

* Login (``/users/@me``, ``/oauth2/applications/@me``), ``GET /gateway`` (no token needed) and
  ``GET /gateway/bot`` (token needed; ``shards``, ``session_start_limit``), guilds and members reads,
  ``POST /users/@me/channels`` (the bot's one DM channel with a user, opened on first use).
  A server the bot is not in: ``GET /guilds/{id}`` 404 10004 (discord-api-docs#5840), its members,
  guild commands and channels 403 50001 Missing Access; it is in no READY or GUILD_CREATE.
* Gateway: HELLO, heartbeat ACKs, IDENTIFY (bad token → 4004; a privileged intent the application
  has not enabled → 4014; invalid shard → 4010), READY and one GUILD_CREATE per guild of the shard,
  RESUME with replay, op 7 RECONNECT, dropped sockets, GUILD_MEMBERS_CHUNK.  Events are routed by
  shard: a guild's to every session of shard ``(guild_id >> 22) % shard_count``, DMs' to shard 0.
  MESSAGE_CREATE for messages in channels (GUILD_MESSAGES / DIRECT_MESSAGES intents).
* The MESSAGE_CONTENT rule: without the intent, another user's guild message has empty
  ``content``, ``embeds``, ``attachments``, ``components`` and ``poll`` in REST reads (decided by
  the application's enabled privileged intents, as Discord does) and in MESSAGE_CREATE (decided by
  the session's IDENTIFY intents); exempt: the bot's own messages, DMs, messages mentioning the bot,
  and interaction payloads (``data.resolved.messages``, a click's ``message``).
* Permissions: base permissions from @everyone and the member's roles (owner and Administrator:
  all), then channel overwrites (@everyone, roles together, member), no View Channel → nothing, no
  Send Messages → no attaching/embedding.  They decide what the bot may read, post, attach and
  delete (403 50001 / 50013) and the ``app_permissions`` / ``member.permissions`` of interactions.
* Interactions: slash commands (options, subcommands, resolved users/roles/channels/attachments),
  autocomplete, button/select clicks, modal submits (with file uploads), message commands; every
  interaction carries ``locale`` (and ``guild_locale`` in servers).  Where: a server's channel
  (context 0: ``member``, ``guild_id``, partial ``guild``), the bot's DM (context 1) and DMs or group
  DMs between users (context 2: top-level ``user``, no guild), with ``authorizing_integration_owners``
  (``{"0": guild_id}`` / ``{"0": "0"}`` for the guild install, ``{"1": user_id}`` for a user install)
  narrowed to what the command supports, and ``app_permissions`` as Discord computes them (the bot's in
  its servers, @everyone's in a server without it, the documented sets in DMs).  A command is offered
  only where Discord would offer it (guild commands in their server only; a global command's
  ``contexts``, ``dm_permission`` and ``integration_types``); the injecting helper refuses the rest.
  In a server without the bot, a member without Use External Apps gets every response ephemeral
  (``InteractionRecord.forced_ephemeral``), as Discord forces it.  An interaction authorised by a user
  install alone takes 5 followups; the 6th is refused (400 40094).
  The 3-second acknowledgement window, one acknowledgement, allowed callback types per interaction
  type, deferred "thinking" messages whose first followup fills them in (only its SUPPRESS_EMBEDS
  and IS_COMPONENTS_V2 flags kept; ephemerality is the defer's), 15-minute tokens (401 50027).
* Messages: content/embed/component/attachment limits, empty messages, unique custom ids,
  ``allowed_mentions`` rules, the sticky components-v2 flag, ephemerality fixed at send, link
  unfurling unless SUPPRESS_EMBEDS, mentions parsed from content, edits and deletes.
* Uploads: per file, the guild's boost tier for the bot's own messages (10/10/50/100 MiB for tiers
  0–3) or the interaction's ``attachment_size_limit`` for responses and followups, and 25 MiB per
  request; over → 413 40005.
* CDN: signed URLs (``ex``/``is``/``hm``) that 404 after ``ex`` by the emulator clock; command and
  modal uploads are ephemeral attachments (``/ephemeral-attachments/…``) that :meth:`purge_ephemeral`
  removes; files of deleted messages are gone; ``POST /attachments/refresh-urls`` (undocumented, can
  be made to fail with ``fail_next``) re-signs only files that still exist and repeats the original
  URL for the others.
* Rate limits: per-route buckets per major parameter, of the sizes clients observe (messages 5/5 s
  per channel, deletes 5/1 s, interaction followups and webhook message edits 5/2 s per token: see
  ``rest.ROUTE_RATE_LIMITS`` for the sources), with ``X-RateLimit-Limit/Remaining/Reset/Reset-After/
  Bucket`` and real 429s (``retry_after``, ``global``, ``Via``, ``X-RateLimit-Scope``); the global
  50 requests/s of the bot token (of the IP without one) on every route but the interaction
  endpoints; 401/403/429 answers (but shared-scope 429s) are counted and past
  ``invalid_request_limit`` in 10 minutes every request gets Cloudflare's 429 without ``Via``
  (discord.py raises).
* Command sync: bulk overwrite rules (names, descriptions, options, duplicates), ids kept for
  unchanged commands, global and per guild.
* Request bodies against Discord's OpenAPI document (:mod:`.schema`), at every depth, before the
  route's handler runs: the JSON body or a multipart body's ``payload_json``, refused as Discord
  refuses them (400, 50035, the error tree by field path; a component of a type not taken where it
  stands at the component itself, 'Value of field "type" must be one of (…).'), with Discord's limits
  for a bot where the document is kinder (message ``content`` 2000, not 4000; a string choice's
  ``value`` 100, not 6000).  Unknown paths, methods, query parameters
  and body keys, which Discord ignores, are recorded, not refused.  Every call records what was
  refused (``RestCall.refusal``: form errors, empty messages, too large, a followup past a user
  install's 5; not injected faults, permissions or tokens) and ignored (``RestCall.violations``);
  ``CALL_OBSERVERS`` see every call.

What it does NOT model: voice, stage, threads and forum channels, reactions, pins, polls (beyond
hiding them), stickers and emojis, presences, guild member/role/channel events after login (changes
made by tests after IDENTIFY are enforced but not announced), an app installed to a server without its
bot, PING interactions and HTTP interactions endpoints,
entitlements and monetization, embeds' field-level validation beyond lengths, the slower buckets
for deleting older messages, per-guild webhook limits, the gateway's own rate limits and
``session_start_limit`` accounting, zlib transport compression, the
``max_concurrency`` identify pacing, audit logs, webhooks other than interaction webhooks, and
Discord's exact error wording for every rule.
"""

from .emulator import DiscordEmulator
from .gateway import Session, shard_of
from .interactions import InteractionRecord
from .protocol import (
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    MIB,
    CallbackType,
    ChannelType,
    CommandType,
    ComponentType,
    ErrorCode,
    GatewayClose,
    GatewayOp,
    IntegrationType,
    Intent,
    InteractionContext,
    InteractionType,
    MessageFlag,
    MessageType,
    OptionType,
    Permission,
    RestCall,
    UploadedFile,
)
from .rest import CALL_OBSERVERS
from .schema import OPENAPI_PATH, check_request
from .world import BOOST_TIER_UPLOAD_LIMIT, Guild

__all__ = [
    "ALL_PERMISSIONS",
    "BOOST_TIER_UPLOAD_LIMIT",
    "BOT_PERMISSIONS",
    "CALL_OBSERVERS",
    "EVERYONE_PERMISSIONS",
    "MIB",
    "OPENAPI_PATH",
    "CallbackType",
    "ChannelType",
    "CommandType",
    "ComponentType",
    "DiscordEmulator",
    "ErrorCode",
    "GatewayClose",
    "GatewayOp",
    "Guild",
    "IntegrationType",
    "Intent",
    "InteractionContext",
    "InteractionRecord",
    "InteractionType",
    "MessageFlag",
    "MessageType",
    "OptionType",
    "Permission",
    "RestCall",
    "Session",
    "UploadedFile",
    "check_request",
    "shard_of",
]
