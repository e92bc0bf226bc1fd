"""Discord's protocol numbers the tests assert, by name, taken from discord.py's own enums."""

from __future__ import annotations

from discord import ComponentType, InteractionResponseType, MessageFlags

EPHEMERAL = MessageFlags.ephemeral.flag

# Interaction callback types
CHANNEL_MESSAGE = InteractionResponseType.channel_message.value
DEFERRED_CHANNEL_MESSAGE = InteractionResponseType.deferred_channel_message.value
AUTOCOMPLETE_RESULT = InteractionResponseType.autocomplete_result.value
MODAL = InteractionResponseType.modal.value

# Component types
STRING_SELECT = ComponentType.string_select.value
TEXT_INPUT = ComponentType.text_input.value
LABEL = ComponentType.label.value
