"""Interaction REST routes: the initial callback (3-second window, one acknowledgement, allowed
callback types) and the interaction webhook (followups, @original edits and deletes, 15-minute token)."""

from __future__ import annotations

import copy
import hmac
from typing import Any

from .interactions import InteractionRecord
from .parts import Parts
from .protocol import (
    TOKEN_LIFETIME,
    USER_INSTALL_FOLLOWUP_LIMIT,
    ApiError,
    ApiRequest,
    CallbackType,
    CommandType,
    ErrorCode,
    IntegrationType,
    InteractionType,
    MessageFlag,
    MessageType,
    Reply,
    form_error,
    snowflake_param,
)
from .rest import route
from .validation import under, validate_choices, validate_modal

# The callbacks each interaction type allows (a modal submit from a message may also update it).
ALLOWED_CALLBACKS = {
    InteractionType.APPLICATION_COMMAND: {
        CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
        CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        CallbackType.MODAL,
    },
    InteractionType.MESSAGE_COMPONENT: {
        CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
        CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        CallbackType.DEFERRED_UPDATE_MESSAGE,
        CallbackType.UPDATE_MESSAGE,
        CallbackType.MODAL,
    },
    InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE: {CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT},
    InteractionType.MODAL_SUBMIT: {
        CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
        CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    },
}
UPDATES = {CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE}


class Webhooks(Parts):
    """Mixin: the interaction callback and webhook routes of :class:`~emulators.discord.DiscordEmulator`."""

    def _init_webhooks(self) -> None:
        self._interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}

    def _interaction_for_callback(self, req: ApiRequest) -> InteractionRecord:
        record = self._interactions.get(snowflake_param(req.params["interaction_id"]))
        if record is None:
            raise ApiError(404, ErrorCode.UNKNOWN_INTERACTION, "Unknown interaction")
        if not hmac.compare_digest(record.token, req.params["interaction_token"]):
            raise ApiError(401, ErrorCode.INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
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

    @route("POST", "/interactions/{interaction_id}/{interaction_token}/callback")
    async def _callback(self, req: ApiRequest) -> Reply:
        record = self._interaction_for_callback(req)
        if record.acknowledged:
            raise ApiError(400, ErrorCode.ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        if self.now() > record.created + self.response_deadline:
            raise ApiError(404, ErrorCode.UNKNOWN_INTERACTION, "Unknown interaction")
        body = req.body
        if not isinstance(body, dict) or not isinstance(body.get("type"), int):
            raise form_error(["type"], "BASE_TYPE_REQUIRED", "This field is required")
        kind, callback_type = record.payload["type"], body["type"]
        target = self._target_message(record)
        allowed = ALLOWED_CALLBACKS[kind] | (UPDATES if kind == InteractionType.MODAL_SUBMIT and target else set())
        if callback_type not in allowed:
            raise form_error(
                ["type"],
                "INTERACTION_CALLBACK_TYPE_INVALID",
                f"Callback type {callback_type} is not valid for interaction type {kind}",
            )
        data = body.get("data") or {}
        message_type = MessageType.DEFAULT
        if kind == InteractionType.APPLICATION_COMMAND:
            chat_input = record.payload["data"].get("type", CommandType.CHAT_INPUT) == CommandType.CHAT_INPUT
            message_type = MessageType.CHAT_INPUT_COMMAND if chat_input else MessageType.CONTEXT_MENU_COMMAND
        extra = {
            "type": message_type,
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": _metadata(record),
        }
        resource: dict[str, Any] = {"type": callback_type}
        loading = False
        if callback_type == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            with under("data"):
                fields = self._compose(data, req.uploads, channel_id=record.channel_id, size_limit=record.size_limit)
            if record.forced_ephemeral:
                fields["flags"] |= MessageFlag.EPHEMERAL
            record.original = self._new_message(fields, channel_id=record.channel_id, author=self.bot_user, extra=extra)
            record.ephemeral = bool(fields["flags"] & MessageFlag.EPHEMERAL)
        elif callback_type == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = MessageFlag.LOADING | (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
            if record.forced_ephemeral:
                flags |= MessageFlag.EPHEMERAL
            fields = {"content": "", "embeds": [], "components": [], "attachments": [], "flags": flags, "files": []}
            record.original = self._new_message(fields, channel_id=record.channel_id, author=self.bot_user, extra=extra)
            record.ephemeral = bool(flags & MessageFlag.EPHEMERAL)
            loading = True
        elif callback_type in UPDATES:
            assert target is not None
            if callback_type == CallbackType.UPDATE_MESSAGE:
                with under("data"):
                    self._edit_message(target, data, req.uploads, record.size_limit)
            record.original = target
            record.ephemeral = bool(target["flags"] & MessageFlag.EPHEMERAL)
        elif callback_type == CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT:
            validate_choices(data.get("choices"))
        else:
            validate_modal(data)
        record.responses.append(body)
        if callback_type in (CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, CallbackType.UPDATE_MESSAGE):
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
        if (
            callback_type not in (CallbackType.MODAL, CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT)
            and record.original is not None
        ):
            interaction["response_message_id"] = record.original["id"]
            if callback_type != CallbackType.DEFERRED_UPDATE_MESSAGE:
                resource["message"] = self._public(record.original)
        return 200, {"interaction": interaction, "resource": resource}

    def _interaction_for_webhook(self, req: ApiRequest) -> InteractionRecord:
        """The interaction a webhook route's token belongs to, enforcing Discord's token rules."""
        if snowflake_param(req.params["webhook_id"]) != self.application_id:
            raise ApiError(404, ErrorCode.UNKNOWN_WEBHOOK, "Unknown Webhook")
        record = self._by_token.get(req.params["webhook_token"])
        if record is None or self.now() > record.created + TOKEN_LIFETIME:
            raise ApiError(401, ErrorCode.INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")
        if not record.acknowledged:
            raise ApiError(404, ErrorCode.UNKNOWN_WEBHOOK, "Unknown Webhook")
        return record

    def _interaction_message(self, record: InteractionRecord, message_id: str) -> dict:
        if message_id == "@original":
            message = record.original
        else:
            wanted = snowflake_param(message_id)
            message = next((m for m in [record.original, *record.followups] if m and int(m["id"]) == wanted), None)
        if message is None or int(message["id"]) not in self.messages:
            raise ApiError(404, ErrorCode.UNKNOWN_MESSAGE, "Unknown Message")
        return message

    @route("POST", "/webhooks/{webhook_id}/{webhook_token}")
    async def _followup(self, req: ApiRequest) -> Reply:
        record = self._interaction_for_webhook(req)
        if _user_install_only(record) and len(record.followups) >= USER_INSTALL_FOLLOWUP_LIMIT:
            # Create Followup Message: "Apps are limited to 5 followup messages per interaction if it was
            # initiated from a user-installed app and isn't installed in the server"; the answer is code 40094
            # "This interaction has hit the maximum number of follow up messages" (Opcodes and Status Codes,
            # JSON Error Codes; the 400 is ours, as for Discord's other 40xxx refusals). Every followup
            # created counts, the one that filled a deferral too: the limit "only affects the Create Followup
            # Message endpoint" (changelog 2024-06-27, discord-api-docs#6958), which that one went through.
            hit = "This interaction has hit the maximum number of follow up messages"
            raise ApiError(400, ErrorCode.MAX_FOLLOWUP_MESSAGES, hit)
        original = record.original
        if original is not None and original["flags"] & MessageFlag.LOADING and int(original["id"]) in self.messages:
            # The followup then "will function as Edit Original Interaction Response ... The ephemeral flag
            # will be ignored" (Receiving and Responding, Create Followup Message): the flags an edit may
            # set, SUPPRESS_EMBEDS and IS_COMPONENTS_V2 (Resources → Webhook, Edit Webhook Message), stay.
            body = dict(req.body or {})
            if "flags" in body:
                body["flags"] = int(body["flags"] or 0) & (MessageFlag.SUPPRESS_EMBEDS | MessageFlag.IS_COMPONENTS_V2)
            message = self._edit_message(original, body, req.uploads, record.size_limit)
            message["flags"] &= ~MessageFlag.LOADING
            message["edited_timestamp"] = None
        else:
            fields = self._compose(req.body, req.uploads, channel_id=record.channel_id, size_limit=record.size_limit)
            if record.forced_ephemeral:
                fields["flags"] |= MessageFlag.EPHEMERAL
            extra = {
                "webhook_id": str(self.application_id),
                "application_id": str(self.application_id),
                "type": MessageType.CHAT_INPUT_COMMAND
                if record.payload["type"] == InteractionType.APPLICATION_COMMAND
                else MessageType.DEFAULT,
                # A followup says which interaction made it, as the response does (Message Interaction Metadata).
                "interaction_metadata": _metadata(record),
            }
            message = self._new_message(fields, channel_id=record.channel_id, author=self.bot_user, extra=extra)
        record.followups.append(message)
        record._saw(message["content"])
        await record._notify()
        if req.query.get("wait", "").lower() not in ("1", "true"):
            return 204, None
        return 200, self._public(message)

    @route("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def _get_webhook_message(self, req: ApiRequest) -> Reply:
        record = self._interaction_for_webhook(req)
        return 200, self._public(self._interaction_message(record, req.params["message_id"]))

    @route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def _patch_webhook_message(self, req: ApiRequest) -> Reply:
        record = self._interaction_for_webhook(req)
        message = self._interaction_message(record, req.params["message_id"])
        message = self._edit_message(message, req.body, req.uploads, record.size_limit)
        message["flags"] &= ~MessageFlag.LOADING
        if message is record.original:
            record.original_edits.append(req.body)
        record._saw((req.body or {}).get("content"))
        await record._notify()
        return 200, self._public(message)

    @route("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}")
    async def _delete_webhook_message(self, req: ApiRequest) -> Reply:
        record = self._interaction_for_webhook(req)
        message = self._interaction_message(record, req.params["message_id"])
        self._delete(message)
        if message is record.original:
            record.original = None
        await record._notify()
        return 204, None


def _user_install_only(record: InteractionRecord) -> bool:
    """Whether only a user install authorised the interaction (the app is not installed where it happened)."""
    return set(record.payload["authorizing_integration_owners"]) == {str(IntegrationType.USER_INSTALL)}


def _metadata(record: InteractionRecord) -> dict[str, Any]:
    """The ``interaction_metadata`` of a message an interaction made: who, and through which installations."""
    return {
        "id": str(record.id),
        "type": record.payload["type"],
        "user": record.user,
        "authorizing_integration_owners": record.payload["authorizing_integration_owners"],
    }
