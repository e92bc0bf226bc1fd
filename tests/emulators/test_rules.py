"""The Discord emulator refuses what Discord refuses beyond its OpenAPI document: one payload per documented
rule, sent through the real REST routes, answered 400 50035 with the error at the right path and code, and
its good twin accepted.  Each case names its source: a path under https://discord.com/developers/docs/
("components reference" = components/reference, "commands" = interactions/application-commands,
"responding" = interactions/receiving-and-responding) or a discord-api-docs issue or pull request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from emulators.discord import DiscordEmulator, InteractionRecord
from tests.helpers import multipart, raw

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(56))
V2 = 1 << 15  # IS_COMPONENTS_V2
MESSAGE, COMMANDS, MODAL, CALLBACK, AUTOCOMPLETE, AFTER_MODAL = (
    "message",
    "commands",
    "modal",
    "callback",
    "autocomplete",
    "after modal",
)


# ---------------------------------------------------------------------------------------- payload builders


def option(value: str, **extra: Any) -> dict:
    return {"label": value, "value": value, **extra}


def select(**extra: Any) -> dict:
    """A string select of two options (discord.py's shape: `required` always sent)."""
    return {"type": 3, "custom_id": "pick", "options": [option("a"), option("b")], **extra}


def button(custom_id: str = "go", **extra: Any) -> dict:
    return {"type": 2, "style": 1, "label": "Go", "custom_id": custom_id, **extra}


def link(**extra: Any) -> dict:
    return {"type": 2, "style": 5, "label": "Open", "url": "https://example.com/", **extra}


def row(*children: dict) -> dict:
    return {"type": 1, "components": list(children)}


def legacy(*rows: dict, **extra: Any) -> dict:
    return {"content": "hi", "components": list(rows), **extra}


def text(content: str = "hi") -> dict:
    return {"type": 10, "content": content}


def section(*texts: dict, **extra: Any) -> dict:
    return {"type": 9, "components": list(texts), **extra}


def thumbnail(url: str = "https://example.com/a.png") -> dict:
    return {"type": 11, "media": {"url": url}}


def gallery(*urls: str) -> dict:
    return {"type": 12, "items": [{"media": {"url": url}} for url in urls]}


def container(*children: dict) -> dict:
    return {"type": 17, "components": list(children)}


def v2(*components: dict, **extra: Any) -> dict:
    return {"flags": V2, "components": list(components), **extra}


def text_input(custom_id: str = "prompt", **extra: Any) -> dict:
    """A text input as discord.py sends it inside a Label (`label` null)."""
    return {"type": 4, "custom_id": custom_id, "style": 1, "label": None, "required": True, **extra}


def label(component: dict | None = None, **extra: Any) -> dict:
    body = {"type": 18, "label": "Prompt", **extra}
    if component is not None:
        body["component"] = component
    return body


def modal(*components: dict, **extra: Any) -> dict:
    return {"type": 9, "data": {"custom_id": "form", "title": "Edit", "components": list(components), **extra}}


def command(**extra: Any) -> dict:
    return {"name": "probe", "description": "Probes", "type": 1, **extra}


def string_option(**extra: Any) -> dict:
    return {"type": 3, "name": "word", "description": "A word", **extra}


def choice(name: str = "one", value: Any = "one", **extra: Any) -> dict:
    return {"name": name, "value": value, **extra}


def choices(*items: dict) -> dict:
    return {"type": 8, "data": {"choices": list(items)}}


def many(count: int, make: Any) -> list:
    return [make(index) for index in range(count)]


def sized(total: int, **extra: Any) -> dict:
    """A slash command whose size is exactly `total` by the docs' count (commands, "Slash Commands": names,
    descriptions and choice values): 100 for itself, 25 options of 100, then choices of 200 (a name and a value
    of 100 each) and one choice that makes up the rest."""
    options = [{"type": 3, "name": f"o{i:02d}", "description": "x" * 97} for i in range(25)]
    rest = total - 100 - 25 * 100
    made = [choice(f"n{i:03d}" + "n" * 96, f"v{i:03d}" + "v" * 96) for i in range(rest // 200)]
    if rest % 200:
        made.append(choice("last", "l" * (rest % 200 - 4)))
    for index in range(0, len(made), 25):
        options[index // 25]["choices"] = made[index : index + 25]
    return {"name": "big", "description": "d" * 97, "type": 1, "options": options, **extra}


# ---------------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Rule:
    """A body Discord refuses (``bad``) and its accepted twin (``good``), the route that takes it, and
    where and how the refusal points."""

    route: str
    bad: Any
    good: Any
    path: str
    code: str
    files: dict[str, bytes] = field(default_factory=dict)
    good_files: dict[str, bytes] | None = None  # when the good twin uploads other files than the bad one
    message: str | None = None  # the refusal's exact words, where Discord's are on record


RULES = {
    # ------------------------------------------------ selects: components reference, "String Select" and others
    # issue #7800, PR #8177: required (omitted = true) with min_values 0 is refused, in messages too.
    "select required with min_values 0": Rule(
        MESSAGE,
        legacy(row(select(min_values=0, max_values=2, required=True))),
        legacy(row(select(min_values=0, max_values=2, required=False))),
        "components.0.components.0.min_values",
        "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
    ),
    "select with min_values 0 and required omitted": Rule(
        MESSAGE,
        legacy(row(select(min_values=0, max_values=2))),
        legacy(row(select(min_values=1, max_values=2))),
        "components.0.components.0.min_values",
        "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
    ),
    "user select required with min_values 0": Rule(
        MESSAGE,
        legacy(row({"type": 5, "custom_id": "who", "min_values": 0, "required": True})),
        legacy(row({"type": 5, "custom_id": "who", "min_values": 0, "required": False})),
        "components.0.components.0.min_values",
        "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
    ),
    "select min_values above max_values": Rule(
        MESSAGE,
        legacy(row(select(min_values=2, max_values=1))),
        legacy(row(select(min_values=1, max_values=2))),
        "components.0.components.0.min_values",
        "NUMBER_TYPE_MAX",
    ),
    "select max_values above its options": Rule(
        MESSAGE,
        legacy(row(select(max_values=3))),
        legacy(row(select(max_values=2))),
        "components.0.components.0.options",
        "BASE_TYPE_MIN_LENGTH",
    ),
    "select without options": Rule(
        MESSAGE,
        legacy(row(select(options=[]))),
        legacy(row(select(options=[option("a")]))),
        "components.0.components.0.options",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "select of 26 options": Rule(
        MESSAGE,
        legacy(row(select(options=many(26, lambda i: option(f"v{i}"))))),
        legacy(row(select(options=many(25, lambda i: option(f"v{i}"))))),
        "components.0.components.0.options",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "select option values repeated": Rule(
        MESSAGE,
        legacy(row(select(options=[option("a"), option("a")]))),
        legacy(row(select(options=[option("a"), {"label": "a", "value": "b"}]))),
        "components.0.components.0.options.1",
        "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
    ),
    "select option label over 100": Rule(
        MESSAGE,
        legacy(row(select(options=[{"label": "l" * 101, "value": "a"}]))),
        legacy(row(select(options=[{"label": "l" * 100, "value": "a"}]))),
        "components.0.components.0.options.0.label",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "select option value over 100": Rule(
        MESSAGE,
        legacy(row(select(options=[{"label": "a", "value": "v" * 101}]))),
        legacy(row(select(options=[{"label": "a", "value": "v" * 100}]))),
        "components.0.components.0.options.0.value",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "select option description over 100": Rule(
        MESSAGE,
        legacy(row(select(options=[option("a", description="d" * 101)]))),
        legacy(row(select(options=[option("a", description="d" * 100)]))),
        "components.0.components.0.options.0.description",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "select placeholder over 150": Rule(
        MESSAGE,
        legacy(row(select(placeholder="p" * 151))),
        legacy(row(select(placeholder="p" * 150))),
        "components.0.components.0.placeholder",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "select of one value with two defaults": Rule(
        MESSAGE,
        legacy(row(select(options=[option("a", default=True), option("b", default=True)]))),
        legacy(row(select(options=[option("a", default=True), option("b")]))),
        "components.0.components.0.options",
        "SELECT_COMPONENT_TOO_MANY_DEFAULT_VALUES",
    ),
    "user select with more defaults than max_values": Rule(
        MESSAGE,
        legacy(row({"type": 5, "custom_id": "who", "default_values": [{"id": "1", "type": "user"}] * 2})),
        legacy(row({"type": 5, "custom_id": "who", "default_values": [{"id": "1", "type": "user"}]})),
        "components.0.components.0.default_values",
        "SELECT_COMPONENT_TOO_MANY_DEFAULT_VALUES",
    ),
    # ------------------------------------------------ action rows and buttons: components reference
    "row of six buttons": Rule(
        MESSAGE,
        legacy(row(*many(6, lambda i: button(f"b{i}")))),
        legacy(row(*many(5, lambda i: button(f"b{i}")))),
        "components.0.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "select sharing a row with a button": Rule(
        MESSAGE,
        legacy(row(select(), button())),
        legacy(row(select()), row(button())),
        "components.0.components.1",
        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
    ),
    "empty row": Rule(
        MESSAGE,
        legacy(row()),
        legacy(row(button())),
        "components.0.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "button label over 80": Rule(
        MESSAGE,
        legacy(row(button(label="l" * 81))),
        legacy(row(button(label="l" * 80))),
        "components.0.components.0.label",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "link button without url": Rule(
        MESSAGE,
        legacy(row({"type": 2, "style": 5, "label": "Open"})),
        legacy(row(link())),
        "components.0.components.0.url",
        "BASE_TYPE_REQUIRED",
    ),
    "link button with a custom id": Rule(
        MESSAGE,
        legacy(row(link(custom_id="x"))),
        legacy(row(link())),
        "components.0.components.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
    ),
    "link button url over 512": Rule(
        MESSAGE,
        legacy(row(link(url="https://example.com/" + "u" * 493))),
        legacy(row(link(url="https://example.com/" + "u" * 492))),
        "components.0.components.0.url",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "primary button without custom id": Rule(
        MESSAGE,
        legacy(row({"type": 2, "style": 1, "label": "Go"})),
        legacy(row(button())),
        "components.0.components.0.custom_id",
        "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED",
    ),
    "primary button with a url": Rule(
        MESSAGE,
        legacy(row(button(url="https://example.com/"))),
        legacy(row(button())),
        "components.0.components.0.url",
        "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
    ),
    "premium button with a label": Rule(
        MESSAGE,
        legacy(row({"type": 2, "style": 6, "sku_id": "1", "label": "Buy"})),
        legacy(row({"type": 2, "style": 6, "sku_id": "1"})),
        "components.0.components.0.label",
        "BUTTON_COMPONENT_PREMIUM_FIELDS_INVALID",
    ),
    "premium button without sku_id": Rule(
        MESSAGE,
        legacy(row({"type": 2, "style": 6})),
        legacy(row({"type": 2, "style": 6, "sku_id": "1"})),
        "components.0.components.0.sku_id",
        "BASE_TYPE_REQUIRED",
    ),
    "button without label or emoji": Rule(
        MESSAGE,
        legacy(row({"type": 2, "style": 1, "custom_id": "go"})),
        legacy(row({"type": 2, "style": 1, "custom_id": "go", "emoji": {"name": "🔁"}})),
        "components.0.components.0.label",
        "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
    ),
    # ------------------------------------------------ components v2: components reference (introduction and each
    # component), changelog 2025-04-29 (40 in all), PR #8562 (4000 characters of text displays in all)
    "v2 with content": Rule(
        MESSAGE,
        v2(text(), content="hi"),
        v2(text()),
        "content",
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
    ),
    "v2 with embeds": Rule(
        MESSAGE,
        v2(text(), embeds=[{"title": "t"}]),
        v2(text()),
        "embeds",
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
    ),
    "v2 with a poll": Rule(
        MESSAGE,
        v2(text(), poll={"question": {"text": "?"}, "answers": [{"poll_media": {"text": "a"}}]}),
        v2(text()),
        "poll",
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
    ),
    "v2 with stickers": Rule(
        MESSAGE,
        v2(text(), sticker_ids=["1"]),
        v2(text()),
        "sticker_ids",
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
    ),
    "v2 of 41 components": Rule(
        MESSAGE,
        v2(container(*many(40, lambda i: text(f"t{i}")))),
        v2(container(*many(39, lambda i: text(f"t{i}")))),
        "components",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "v2 text displays over 4000 in all": Rule(
        MESSAGE,
        v2(text("a" * 2000), container(text("b" * 2001))),
        v2(text("a" * 2000), container(text("b" * 2000))),
        "components.1.components.0.content",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "section of four text displays": Rule(
        MESSAGE,
        v2(section(text(), text(), text(), text(), accessory=button())),
        v2(section(text(), text(), text(), accessory=button())),
        "components.0.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "section without accessory": Rule(
        MESSAGE,
        v2(section(text())),
        v2(section(text(), accessory=thumbnail())),
        "components.0.accessory",
        "BASE_TYPE_REQUIRED",
    ),
    "section with a select accessory": Rule(
        MESSAGE,
        v2(section(text(), accessory=select())),
        v2(section(text(), accessory=button())),
        "components.0.accessory",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (2, 11).',
    ),
    "thumbnail at the top level": Rule(
        MESSAGE,
        v2(thumbnail()),
        v2(section(text(), accessory=thumbnail())),
        "components.0",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (1, 9, 10, 12, 13, 14, 17).',
    ),
    "thumbnail in a container": Rule(
        MESSAGE,
        v2(container(thumbnail())),
        v2(container(section(text(), accessory=thumbnail()))),
        "components.0.components.0",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (1, 9, 10, 12, 13, 14).',
    ),
    "media gallery of 11 items": Rule(
        MESSAGE,
        v2(gallery(*many(11, lambda i: f"https://example.com/{i}.png"))),
        v2(gallery(*many(10, lambda i: f"https://example.com/{i}.png"))),
        "components.0.items",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "empty media gallery": Rule(
        MESSAGE,
        v2(gallery()),
        v2(gallery("https://example.com/a.png")),
        "components.0.items",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "label in a container": Rule(
        MESSAGE,
        v2(container(label(text_input()))),
        v2(container(text())),
        "components.0.components.0",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (1, 9, 10, 12, 13, 14).',
    ),
    "attachment:// naming no file of the request": Rule(
        MESSAGE,
        v2(gallery("attachment://dog.png")),
        v2(gallery("attachment://cat.png")),
        "components.0.items.0.media.url",
        "ATTACHMENT_NOT_FOUND",
        files={"cat.png": PNG},
    ),
    "thumbnail naming no file of the request": Rule(
        MESSAGE,
        v2(section(text(), accessory=thumbnail("attachment://dog.png"))),
        v2(section(text(), accessory=thumbnail("attachment://cat.png"))),
        "components.0.accessory.media.url",
        "ATTACHMENT_NOT_FOUND",
        files={"cat.png": PNG},
    ),
    "file component with a link": Rule(
        MESSAGE,
        v2({"type": 13, "file": {"url": "https://example.com/cat.png"}}),
        v2({"type": 13, "file": {"url": "attachment://cat.png"}}),
        "components.0.file.url",
        "UNFURLED_MEDIA_ITEM_ATTACHMENT_REQUIRED",
        files={"cat.png": PNG},
    ),
    "v2 component without the flag": Rule(
        MESSAGE,
        {"components": [text()]},
        v2(text()),
        "components.0",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (1,).',
    ),
    "six legacy rows": Rule(
        MESSAGE,
        legacy(*many(6, lambda i: row(button(f"b{i}")))),
        legacy(*many(5, lambda i: row(button(f"b{i}")))),
        "components",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "v2 row holding a select and a button": Rule(
        MESSAGE,
        v2(container(row(select(), button()))),
        v2(container(row(select()), row(button()))),
        "components.0.components.0.components.1",
        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
    ),
    # ------------------------------------------------ messages in general: resources/message
    "content over 2000": Rule(
        MESSAGE, {"content": "c" * 2001}, {"content": "c" * 2000}, "content", "BASE_TYPE_MAX_LENGTH"
    ),
    "eleven embeds": Rule(
        MESSAGE,
        {"embeds": many(11, lambda i: {"title": f"t{i}"})},
        {"embeds": many(10, lambda i: {"title": f"t{i}"})},
        "embeds",
        "BASE_TYPE_MAX_LENGTH",
    ),
    # Uploaded as discord.py uploads, one `attachments` entry per file: refused at `attachments`, which
    # Discord's OpenAPI document caps at 10 items (no answer of Discord's on record names another field).
    "eleven files": Rule(
        MESSAGE,
        {"content": "files", "attachments": many(11, lambda i: {"id": i, "filename": f"f{i}.png"})},
        {"content": "files", "attachments": many(10, lambda i: {"id": i, "filename": f"f{i}.png"})},
        "attachments",
        "BASE_TYPE_MAX_LENGTH",
        files={f"f{i}.png": PNG for i in range(11)},
        good_files={f"f{i}.png": PNG for i in range(10)},
    ),
    "allowed_mentions parsing users and naming users": Rule(
        MESSAGE,
        {"content": "hi", "allowed_mentions": {"parse": ["users"], "users": ["1"]}},
        {"content": "hi", "allowed_mentions": {"parse": [], "users": ["1"]}},
        "allowed_mentions",
        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
    ),
    "nonce over 25": Rule(
        MESSAGE,
        {"content": "hi", "nonce": "n" * 26},
        {"content": "hi", "nonce": "n" * 25},
        "nonce",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "custom id over 100": Rule(
        MESSAGE,
        legacy(row(button("c" * 101))),
        legacy(row(button("c" * 100))),
        "components.0.components.0.custom_id",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "custom ids repeated": Rule(
        MESSAGE,
        legacy(row(button("same"), button("same"))),
        legacy(row(button("same"), button("other"))),
        "components.0.components.1.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    "an interaction's message under data": Rule(
        CALLBACK,
        {"type": 4, "data": legacy(row(select(min_values=0)))},
        {"type": 4, "data": legacy(row(select(min_values=0, required=False)))},
        "data.components.0.components.0.min_values",
        "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
    ),
    # ------------------------------------------------ modals: responding, "Modal"; components reference, "Label",
    # "Text Input", "File Upload"; PR #7773 (no label on a text input inside a Label, no disabled selects)
    "modal title over 45": Rule(
        MODAL,
        modal(label(text_input()), title="t" * 46),
        modal(label(text_input()), title="t" * 45),
        "data.title",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "modal of six components": Rule(
        MODAL,
        modal(*many(6, lambda i: label(text_input(f"t{i}")))),
        modal(*many(5, lambda i: label(text_input(f"t{i}")))),
        "data.components",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "Label text over 45": Rule(
        MODAL,
        modal(label(text_input(), label="l" * 46)),
        modal(label(text_input(), label="l" * 45)),
        "data.components.0.label",
        "BASE_TYPE_BAD_LENGTH",
    ),
    # 1–100 in Discord's OpenAPI document, so "Must be between 1 and 100 in length."
    "Label description over 100": Rule(
        MODAL,
        modal(label(text_input(), description="d" * 101)),
        modal(label(text_input(), description="d" * 100)),
        "data.components.0.description",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "Label without a component": Rule(
        MODAL,
        modal(label()),
        modal(label(text_input())),
        "data.components.0.component",
        "BASE_TYPE_REQUIRED",
    ),
    "Label holding a button": Rule(
        MODAL,
        modal(label(button())),
        modal(label(text_input())),
        "data.components.0.component",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (3, 4, 5, 6, 7, 8, 19, 21, 22, 23).',
    ),
    "modal row holding a button": Rule(
        MODAL,
        modal(row(button())),
        modal(row(text_input(label="Prompt"))),
        "data.components.0.components.0",
        "UNION_TYPE_CHOICES",
        message='Value of field "type" must be one of (4,).',
    ),
    "text input custom id over 100": Rule(
        MODAL,
        modal(label(text_input("c" * 101))),
        modal(label(text_input("c" * 100))),
        "data.components.0.component.custom_id",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "text input value over 4000": Rule(
        MODAL,
        modal(label(text_input(value="v" * 4001))),
        modal(label(text_input(value="v" * 4000))),
        "data.components.0.component.value",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "text input placeholder over 100": Rule(
        MODAL,
        modal(label(text_input(placeholder="p" * 101))),
        modal(label(text_input(placeholder="p" * 100))),
        "data.components.0.component.placeholder",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "text input min_length over 4000": Rule(
        MODAL,
        modal(label(text_input(min_length=4001))),
        modal(label(text_input(min_length=4000))),
        "data.components.0.component.min_length",
        "NUMBER_TYPE_MAX",
    ),
    "text input max_length 0": Rule(
        MODAL,
        modal(label(text_input(max_length=0))),
        modal(label(text_input(max_length=1))),
        "data.components.0.component.max_length",
        "NUMBER_TYPE_MIN",
    ),
    "text input max_length over 4000": Rule(
        MODAL,
        modal(label(text_input(max_length=4001))),
        modal(label(text_input(max_length=4000))),
        "data.components.0.component.max_length",
        "NUMBER_TYPE_MAX",
    ),
    "text input min_length above max_length": Rule(
        MODAL,
        modal(label(text_input(min_length=5, max_length=4))),
        modal(label(text_input(min_length=4, max_length=4))),
        "data.components.0.component.min_length",
        "NUMBER_TYPE_MAX",
    ),
    "text input with its own label inside a Label": Rule(
        MODAL,
        modal(label(text_input(label="Prompt"))),
        modal(label(text_input(label=None))),
        "data.components.0.component.label",
        "TEXT_INPUT_LABEL_NOT_ALLOWED_IN_LABEL",
    ),
    "legacy text input without label": Rule(
        MODAL,
        modal(row(text_input())),
        modal(row(text_input(label="Prompt"))),
        "data.components.0.components.0.label",
        "BASE_TYPE_REQUIRED",
    ),
    "modal custom ids repeated": Rule(
        MODAL,
        modal(label(text_input("same")), label(text_input("same"))),
        modal(label(text_input("same")), label(text_input("other"))),
        "data.components.1.component.custom_id",
        "COMPONENT_CUSTOM_ID_DUPLICATED",
    ),
    "modal select required with min_values 0": Rule(
        MODAL,
        modal(label(select(min_values=0, required=True))),
        modal(label(select(min_values=0, required=False))),
        "data.components.0.component.min_values",
        "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
    ),
    "modal select disabled": Rule(
        MODAL,
        modal(label(select(disabled=True))),
        modal(label(select(disabled=False))),
        "data.components.0.component.disabled",
        "COMPONENT_DISABLED_IN_MODAL",
    ),
    "file upload required with min_values 0": Rule(
        MODAL,
        modal(label({"type": 19, "custom_id": "mask", "min_values": 0, "max_values": 1, "required": True})),
        modal(label({"type": 19, "custom_id": "mask", "min_values": 0, "max_values": 1, "required": False})),
        "data.components.0.component.min_values",
        "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
    ),
    # responding, "Interaction Callback Type": MODAL is "Not available for MODAL_SUBMIT and PING interactions".
    "a modal in answer to a modal submit": Rule(
        AFTER_MODAL,
        modal(label(text_input())),
        {"type": 4, "data": {"content": "thanks", "flags": 64}},
        "type",
        "INTERACTION_CALLBACK_TYPE_INVALID",
    ),
    # ------------------------------------------------ commands: commands, "Application Command Object",
    # "Localization", "Slash Commands", "Registering a Command"; reference, "Locales"
    "locale key not Discord's": Rule(
        COMMANDS,
        [command(description_localizations={"en": "Probes"})],
        [command(description_localizations={"en-GB": "Probes"})],
        "0.description_localizations.en",
        "BASE_TYPE_CHOICES",
    ),
    "option locale key not Discord's": Rule(
        COMMANDS,
        [command(options=[string_option(name_localizations={"pt": "palavra"})])],
        [command(options=[string_option(name_localizations={"pt-BR": "palavra"})])],
        "0.options.0.name_localizations.pt",
        "BASE_TYPE_CHOICES",
    ),
    "localized name not lowercase": Rule(
        COMMANDS,
        [command(name_localizations={"de": "Sonde"})],
        [command(name_localizations={"de": "sonde"})],
        "0.name_localizations.de",
        "APPLICATION_COMMAND_INVALID_NAME",
    ),
    "localized name with a space": Rule(
        COMMANDS,
        [command(name_localizations={"fr": "une sonde"})],
        [command(name_localizations={"fr": "une-sonde"})],
        "0.name_localizations.fr",
        "APPLICATION_COMMAND_INVALID_NAME",
    ),
    "localized name over 32": Rule(
        COMMANDS,
        [command(name_localizations={"de": "s" * 33})],
        [command(name_localizations={"de": "s" * 32})],
        "0.name_localizations.de",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "localized description over 100": Rule(
        COMMANDS,
        [command(description_localizations={"de": "d" * 101})],
        [command(description_localizations={"de": "d" * 100})],
        "0.description_localizations.de",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "localized option description empty": Rule(
        COMMANDS,
        [command(options=[string_option(description_localizations={"ja": ""})])],
        [command(options=[string_option(description_localizations={"ja": "言葉"})])],
        "0.options.0.description_localizations.ja",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "choice name over 100": Rule(
        COMMANDS,
        [command(options=[string_option(choices=[choice("n" * 101)])])],
        [command(options=[string_option(choices=[choice("n" * 100)])])],
        "0.options.0.choices.0.name",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "choice value over 100": Rule(
        COMMANDS,
        [command(options=[string_option(choices=[choice(value="v" * 101)])])],
        [command(options=[string_option(choices=[choice(value="v" * 100)])])],
        "0.options.0.choices.0.value",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "localized choice name over 100": Rule(
        COMMANDS,
        [command(options=[string_option(choices=[choice(name_localizations={"de": "n" * 101})])])],
        [command(options=[string_option(choices=[choice(name_localizations={"de": "n" * 100})])])],
        "0.options.0.choices.0.name_localizations.de",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "26 choices": Rule(
        COMMANDS,
        [command(options=[string_option(choices=many(26, lambda i: choice(f"c{i}", f"c{i}")))])],
        [command(options=[string_option(choices=many(25, lambda i: choice(f"c{i}", f"c{i}")))])],
        "0.options.0.choices",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "autocomplete with choices": Rule(
        COMMANDS,
        [command(options=[string_option(autocomplete=True, choices=[choice()])])],
        [command(options=[string_option(autocomplete=True)])],
        "0.options.0.autocomplete",
        "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_WITH_CHOICES",
    ),
    "autocomplete on a boolean option": Rule(
        COMMANDS,
        [command(options=[{"type": 5, "name": "yes", "description": "Yes?", "autocomplete": True}])],
        [command(options=[{"type": 5, "name": "yes", "description": "Yes?"}])],
        "0.options.0.autocomplete",
        "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
    ),
    "command over 8000 characters": Rule(
        COMMANDS,
        [sized(8001)],
        [sized(8000)],
        "0",
        "APPLICATION_COMMAND_TOO_LARGE",
    ),
    "command over 8000 by its longest localization": Rule(
        COMMANDS,
        [sized(8000, description_localizations={"de": "d" * 98})],
        [sized(8000, description_localizations={locale: "d" * 97 for locale in ("de", "fr", "ja", "ko", "hi")})],
        "0",
        "APPLICATION_COMMAND_TOO_LARGE",
    ),
    "min_value above max_value": Rule(
        COMMANDS,
        [command(options=[{"type": 4, "name": "count", "description": "How many", "min_value": 5, "max_value": 4}])],
        [command(options=[{"type": 4, "name": "count", "description": "How many", "min_value": 4, "max_value": 4}])],
        "0.options.0.min_value",
        "NUMBER_TYPE_MAX",
    ),
    "integer bound beyond 2^53": Rule(
        COMMANDS,
        [command(options=[{"type": 4, "name": "count", "description": "How many", "max_value": 2**53}])],
        [command(options=[{"type": 4, "name": "count", "description": "How many", "max_value": 2**53 - 1}])],
        "0.options.0.max_value",
        "NUMBER_TYPE_MAX",
    ),
    "min_length over 6000": Rule(
        COMMANDS,
        [command(options=[string_option(min_length=6001)])],
        [command(options=[string_option(min_length=6000)])],
        "0.options.0.min_length",
        "NUMBER_TYPE_MAX",
    ),
    "max_length 0": Rule(
        COMMANDS,
        [command(options=[string_option(max_length=0)])],
        [command(options=[string_option(max_length=1)])],
        "0.options.0.max_length",
        "NUMBER_TYPE_MIN",
    ),
    "min_length above max_length": Rule(
        COMMANDS,
        [command(options=[string_option(min_length=10, max_length=9)])],
        [command(options=[string_option(min_length=9, max_length=9)])],
        "0.options.0.min_length",
        "NUMBER_TYPE_MAX",
    ),
    "min_length on an integer option": Rule(
        COMMANDS,
        [command(options=[{"type": 4, "name": "count", "description": "How many", "min_length": 1}])],
        [command(options=[{"type": 4, "name": "count", "description": "How many", "min_value": 1}])],
        "0.options.0.min_length",
        "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
    ),
    "integration type 2": Rule(
        COMMANDS,
        [command(integration_types=[0, 2])],
        [command(integration_types=[0, 1])],
        "0.integration_types.1",
        "BASE_TYPE_CHOICES",
    ),
    "context 3": Rule(
        COMMANDS,
        [command(contexts=[0, 3])],
        [command(contexts=[0, 1, 2])],
        "0.contexts.1",
        "BASE_TYPE_CHOICES",
    ),
    # measured: chenhg5/cc-connect issue #504 (more than 130 in one overwrite)
    "131 commands": Rule(
        COMMANDS,
        many(101, lambda i: command(name=f"c{i}"))
        + many(15, lambda i: {"name": f"U{i}", "type": 2})
        + many(15, lambda i: {"name": f"M{i}", "type": 3}),
        many(100, lambda i: command(name=f"c{i}"))
        + many(15, lambda i: {"name": f"U{i}", "type": 2})
        + many(15, lambda i: {"name": f"M{i}", "type": 3}),
        "",
        "BASE_TYPE_MAX_LENGTH",
    ),
    # ------------------------------------------------ autocomplete answers: responding, "Autocomplete"; commands,
    # "Application Command Option Choice Structure"
    "26 autocomplete choices": Rule(
        AUTOCOMPLETE,
        choices(*many(26, lambda i: choice(f"c{i}", f"c{i}"))),
        choices(*many(25, lambda i: choice(f"c{i}", f"c{i}"))),
        "data.choices",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "autocomplete choice name empty": Rule(
        AUTOCOMPLETE,
        choices(choice("", "x")),
        choices(choice("x", "x")),
        "data.choices.0.name",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "autocomplete choice name over 100": Rule(
        AUTOCOMPLETE,
        choices(choice("n" * 101, "x")),
        choices(choice("n" * 100, "x")),
        "data.choices.0.name",
        "BASE_TYPE_BAD_LENGTH",
    ),
    "autocomplete choice value over 100": Rule(
        AUTOCOMPLETE,
        choices(choice("x", "v" * 101)),
        choices(choice("x", "v" * 100)),
        "data.choices.0.value",
        "BASE_TYPE_MAX_LENGTH",
    ),
    "autocomplete choice localized for no Discord locale": Rule(
        AUTOCOMPLETE,
        choices(choice(name_localizations={"xx": "eins"})),
        choices(choice(name_localizations={"de": "eins"})),
        "data.choices.0.name_localizations.xx",
        "BASE_TYPE_CHOICES",
    ),
}


# ---------------------------------------------------------------------------------------- sending


async def request(
    emu: DiscordEmulator, method: str, path: str, body: Any, *, files: dict[str, bytes] | None = None
) -> tuple[int, Any]:
    """``body`` to ``path`` as a bot would send it (JSON, or multipart with ``files[n]``), with its token."""
    if files:
        return await raw(emu, method, path, data=multipart(body, files))
    return await raw(emu, method, path, json=body)


def refusal(answer: Any) -> tuple[str, str, str]:
    """The one error of a 50035 answer: its dotted path, its code and its message."""
    assert answer["code"] == 50035 and answer["message"] == "Invalid Form Body", answer
    path, tree = [], answer["errors"]
    while "_errors" not in tree:
        [(key, tree)] = tree.items()
        path.append(key)
    assert list(tree) == ["_errors"], answer  # one error, none beside or under it
    [error] = tree["_errors"]
    return ".".join(path), error["code"], error["message"]


@contextlib.asynccontextmanager
async def connected(emu: DiscordEmulator) -> AsyncIterator[discord.Client]:
    """A real discord.py client logged in (interactions need a session to go to); it answers nothing."""
    client = discord.Client(intents=discord.Intents.default())
    with emu.patch_discord():
        task = asyncio.create_task(client.start(emu.token))
        try:
            await asyncio.wait_for(emu.ready.wait(), 10)
            yield client
        finally:
            await client.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


async def interaction(emu: DiscordEmulator, route: str) -> InteractionRecord:
    """A fresh interaction the test answers itself: a slash command, its autocomplete, or a modal submit."""
    probe = command(options=[string_option(autocomplete=True)])
    status, _ = await request(emu, "PUT", f"/applications/{emu.application_id}/guilds/{emu.guild_id}/commands", [probe])
    assert status == 200
    if route == AUTOCOMPLETE:
        return await emu.autocomplete("probe", {}, "word")
    if route == AFTER_MODAL:
        return await emu.submit_modal("form", [label(text_input(value="hi"))])
    return await emu.slash("probe")


async def send(emu: DiscordEmulator, rule: Rule, body: Any, record: InteractionRecord | None) -> tuple[int, Any]:
    if rule.route == MESSAGE:
        files = rule.good_files if body is rule.good and rule.good_files is not None else rule.files
        return await request(emu, "POST", f"/channels/{emu.channel_id}/messages", body, files=files)
    if rule.route == COMMANDS:
        return await request(emu, "PUT", f"/applications/{emu.application_id}/commands", body)
    assert record is not None
    return await request(emu, "POST", f"/interactions/{record.id}/{record.token}/callback?with_response=1", body)


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator() as emulator:
        yield emulator


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
async def test_the_bad_payload_is_refused_and_its_twin_accepted(emu: DiscordEmulator, rule: Rule) -> None:
    async with contextlib.AsyncExitStack() as stack:
        record = None
        if rule.route in (MODAL, CALLBACK, AUTOCOMPLETE, AFTER_MODAL):
            await stack.enter_async_context(connected(emu))
            record = await interaction(emu, rule.route)
        status, answer = await send(emu, rule, rule.bad, record)
        assert status == 400
        path, code, message = refusal(answer)
        assert (path, code) == (rule.path, rule.code)
        assert message == (rule.message or message)
        # A refused answer acknowledges nothing: the same interaction takes the good twin.
        status, answer = await send(emu, rule, rule.good, record)
        assert status == 200, answer


async def test_too_many_commands_of_one_type_is_30032(emu: DiscordEmulator) -> None:
    # commands, "Registering a Command": 100 slash, 15 user, 15 message per scope; answer measured by
    # chenhg5/cc-connect issue #504.
    path = f"/applications/{emu.application_id}/commands"
    for kind, limit, name in ((1, 100, "c{}"), (2, 15, "User {}"), (3, 15, "Message {}")):
        made = [
            {"name": name.format(i), "type": kind, **({"description": "d"} if kind == 1 else {})}
            for i in range(limit + 1)
        ]
        status, answer = await request(emu, "PUT", path, made)
        assert (status, answer["code"]) == (400, 30032)
        assert answer["message"] == f"Maximum number of application commands reached ({limit})"
        status, answer = await request(emu, "PUT", path, made[:limit])
        assert status == 200 and len(answer) == limit


async def test_an_edit_may_show_a_file_the_message_keeps(emu: DiscordEmulator) -> None:
    """components reference, "Uploading a file" / "Unfurled Media Item": an attachment:// reference names a
    file of the message, uploaded with this request or kept from before; one the edit drops is refused."""
    channel = f"/channels/{emu.channel_id}/messages"
    body = v2(gallery("attachment://cat.png"), attachments=[{"id": 0, "filename": "cat.png"}])
    status, message = await request(emu, "POST", channel, body, files={"cat.png": PNG})
    assert status == 200
    [kept] = message["attachments"]
    redrawn = v2(text("still the cat"), gallery("attachment://cat.png"))
    status, answer = await request(emu, "PATCH", f"{channel}/{message['id']}", {**redrawn, "attachments": []})
    assert status == 400 and refusal(answer)[:2] == ("components.1.items.0.media.url", "ATTACHMENT_NOT_FOUND")
    status, edited = await request(emu, "PATCH", f"{channel}/{message['id']}", {**redrawn, "attachments": [kept]})
    assert status == 200 and edited["components"][0]["content"] == "still the cat"
    assert [a["filename"] for a in edited["attachments"]] == ["cat.png"]


async def test_a_member_picks_only_what_the_select_offers(emu: DiscordEmulator) -> None:
    """The emulator clicks as Discord's client does: between min_values and max_values values, among the options."""
    async with connected(emu):
        status, message = await request(emu, "POST", f"/channels/{emu.channel_id}/messages", legacy(row(select())))
        assert status == 200
        with pytest.raises(ValueError, match="takes 1–1 values"):
            await emu.click(message, "pick", values=[])
        with pytest.raises(ValueError, match="offers"):
            await emu.click(message, "pick", values=["z"])
        record = await emu.click(message, "pick", values=["b"])
        assert record.payload["data"]["values"] == ["b"]


@pytest.mark.parametrize(
    ("user_install_only", "sixth"),
    [(True, (400, 40094)), (False, (200, None))],
    ids=["a user install alone: 5", "the server's install too: no limit"],
)
async def test_a_user_install_alone_takes_5_followups(
    emu: DiscordEmulator, user_install_only: bool, sixth: tuple[int, int | None]
) -> None:
    """responding, "Create Followup Message": "Apps are limited to 5 followup messages per interaction if it was
    initiated from a user-installed app and isn't installed in the server (meaning the authorizing integration
    owners object only contains USER_INSTALL)"; the code is 40094 (topics/opcodes-and-status-codes). The twin:
    the same user install in the bot's own server, where the server's install authorises it too."""
    probe = command(integration_types=[0, 1], contexts=[0, 1, 2])
    status, _ = await request(emu, "PUT", f"/applications/{emu.application_id}/commands", [probe])
    assert status == 200
    user, channel_id = emu.member, emu.channel_id
    if user_install_only:
        elsewhere = emu.add_guild(name="elsewhere", with_bot=False)
        user = emu.add_member(name="visitor", guild_id=elsewhere.id)
        channel_id = emu.add_channel("chat", guild_id=elsewhere.id)
    # Six followups at once: this test is about their number, not the 5-per-2-s bucket.
    emu.set_rate_limit("POST", "/webhooks/{webhook_id}/{webhook_token}", 10, 2.0)
    async with connected(emu):
        record = await emu.slash("probe", user=user, channel_id=channel_id, user_install=True)
        owners = record.payload["authorizing_integration_owners"]
        assert set(owners) == ({"1"} if user_install_only else {"0", "1"})
        status, _ = await request(emu, "POST", f"/interactions/{record.id}/{record.token}/callback", {"type": 5})
        assert status == 204
        webhook = f"/webhooks/{emu.application_id}/{record.token}?wait=true"
        for number in range(1, 6):
            status, _ = await request(emu, "POST", webhook, {"content": f"followup {number}"})
            assert status == 200
        status, answer = await request(emu, "POST", webhook, {"content": "followup 6"})
        assert (status, answer.get("code")) == sixth, answer
        if status == 400:
            assert answer["message"] == "This interaction has hit the maximum number of follow up messages"
            # Editing the original response is no followup: it stays open.
            status, _ = await request(
                emu, "PATCH", f"/webhooks/{emu.application_id}/{record.token}/messages/@original", {"content": "ok"}
            )
            assert status == 200
