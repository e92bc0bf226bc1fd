"""Discord's protocol numbers the tests assert, by name: the emulator's own definitions, under short names."""

from __future__ import annotations

from emulators.discord.protocol import CallbackType, ComponentType, MessageFlag

EPHEMERAL = MessageFlag.EPHEMERAL

# Interaction callback types
CHANNEL_MESSAGE = CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
DEFERRED_CHANNEL_MESSAGE = CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
AUTOCOMPLETE_RESULT = CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
MODAL = CallbackType.MODAL

# Component types
BUTTON = ComponentType.BUTTON
STRING_SELECT = ComponentType.STRING_SELECT
TEXT_INPUT = ComponentType.TEXT_INPUT
LABEL = ComponentType.LABEL
TEXT_DISPLAY = ComponentType.TEXT_DISPLAY
MEDIA_GALLERY = ComponentType.MEDIA_GALLERY
