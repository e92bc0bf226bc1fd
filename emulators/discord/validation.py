"""Discord's documented rules for request bodies that its OpenAPI document does not carry: messages and
their components (legacy and components v2), modals, application commands and autocomplete answers.

Every refusal is what Discord answers: 400, code 50035 "Invalid Form Body", with the error tree at the
field's path (:func:`~.protocol.form_error`), using Discord's own error code and wording where an answer
quoting them is on record (mostly discord-api-docs issues); where none is, the code is ours, named in the
same style, and the comment says so.  Each rule names its source beside it; paths are of
https://discord.com/developers/docs/…: "components reference" is ``components/reference``, "commands" is
``interactions/application-commands``, "responding" is ``interactions/receiving-and-responding``.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from .protocol import (
    SELECT_COMPONENT_TYPES,
    ApiError,
    ButtonStyle,
    CommandType,
    ComponentType,
    ErrorCode,
    MessageFlag,
    OptionType,
    form_error,
    form_errors,
    one_of,
    union_type_error,
)

Path = list[str | int]

# ---------------------------------------------------------------------------------------- small checks


def _present(node: dict, key: str) -> bool:
    """Whether ``key`` is given a value (discord.py sends ``null`` for some fields it does not set)."""
    return node.get(key) is not None


def _required(node: dict, key: str, where: Path) -> Any:
    if not _present(node, key):
        raise form_error([*where, key], "BASE_TYPE_REQUIRED", "This field is required")
    return node[key]


def _bad_length(value: Any, low: int, high: int, where: Path) -> None:
    """A string or list of ``low``..``high`` characters or items."""
    if not isinstance(value, str | list) or not low <= len(value) <= high:
        raise form_error(where, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _max_length(value: Any, limit: int, where: Path) -> None:
    """At most ``limit`` characters or items (absent or null: nothing to check)."""
    if value is not None and len(value) > limit:
        raise form_error(where, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _in_range(value: Any, low: int, high: int, where: Path) -> None:
    """An integer from ``low`` to ``high`` (absent or null: nothing to check)."""
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise form_error(where, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    if value < low:
        raise form_error(where, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}.")
    if value > high:
        raise form_error(where, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")


def _not_above(low: Any, high: Any, where: Path) -> None:
    """A lower bound (``min_values``, ``min_length``, ``min_value``) not above its upper bound (Discord once
    answered a select's with a 500, discord-api-docs issue #3202; the field and code here are ours)."""
    if low is not None and high is not None and low > high:
        raise form_error(where, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")


def _type_in(component: Any, allowed: tuple[int, ...], where: Path) -> int:
    """The component's type when it is one of ``allowed``; a component in the wrong place is refused
    at the component, as Discord does and as the schema check words it (:func:`~.protocol.union_type_error`)."""
    if not isinstance(component, dict):
        raise form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    kind = _required(component, "type", where)
    if kind not in allowed:
        raise form_errors([union_type_error(where, allowed)])
    return int(kind)


@contextlib.contextmanager
def under(*prefix: str | int) -> Iterator[None]:
    """Moves the error tree of a form error raised inside under ``prefix``: an interaction callback's
    message is its ``data``, so Discord's paths there start with ``data`` (``data.components.0…``)."""
    try:
        yield
    except ApiError as error:
        if error.body.get("code") == ErrorCode.INVALID_FORM_BODY and "errors" in error.body:
            tree = error.body["errors"]
            for key in reversed(prefix):
                tree = {str(key): tree}
            error.body["errors"] = tree
        raise


def walk_components(components: list[dict], where: Path) -> list[tuple[Path, dict]]:
    """Every component with its field path, depth first (rows, containers, sections, labels)."""
    found: list[tuple[Path, dict]] = []
    for index, component in enumerate(components):
        found += _walk(component, [*where, index])
    return found


def _walk(component: dict, here: Path) -> list[tuple[Path, dict]]:
    found = [(here, component), *walk_components(component.get("components") or [], [*here, "components"])]
    for key in ("accessory", "component"):  # a section's accessory, a Label's component: one each
        if isinstance(component.get(key), dict):
            found += _walk(component[key], [*here, key])
    return found


def find_component(components: list[dict], custom_id: str) -> dict | None:
    """The component with ``custom_id`` anywhere in ``components``, or None."""
    return next((c for _, c in walk_components(components, []) if c.get("custom_id") == custom_id), None)


def _unique_custom_ids(components: list[dict], where: Path) -> None:
    """Custom ids of 1–100 characters, unique within the message or modal (components reference,
    "Custom ID"; the code is Discord's)."""
    seen: set[str] = set()
    for path, component in walk_components(components, where):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
            raise form_error([*path, "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if custom_id in seen:
            raise form_error(
                [*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
            )
        seen.add(custom_id)


# ---------------------------------------------------------------------------------------- components

# Where each component may stand (components reference: "Component Types", "Action Row Child
# Components", "Section Child/Accessory Components", "Container Child Components", "Label Child
# Components"; the v2 top level from "Legacy Message Component Behavior" and changelog 2025-04-29).
LEGACY_TOP_LEVEL = (ComponentType.ACTION_ROW,)
V2_TOP_LEVEL = (
    ComponentType.ACTION_ROW,
    ComponentType.SECTION,
    ComponentType.TEXT_DISPLAY,
    ComponentType.MEDIA_GALLERY,
    ComponentType.FILE,
    ComponentType.SEPARATOR,
    ComponentType.CONTAINER,
)
CONTAINER_CHILDREN = tuple(kind for kind in V2_TOP_LEVEL if kind != ComponentType.CONTAINER)
SECTION_CHILDREN = (ComponentType.TEXT_DISPLAY,)
SECTION_ACCESSORIES = (ComponentType.BUTTON, ComponentType.THUMBNAIL)
MESSAGE_ROW_CHILDREN = (ComponentType.BUTTON, *sorted(SELECT_COMPONENT_TYPES))
MODAL_TOP_LEVEL = (ComponentType.ACTION_ROW, ComponentType.TEXT_DISPLAY, ComponentType.LABEL)
MODAL_ROW_CHILDREN = (ComponentType.TEXT_INPUT,)
LABEL_CHILDREN = (
    ComponentType.STRING_SELECT,
    ComponentType.TEXT_INPUT,
    ComponentType.USER_SELECT,
    ComponentType.ROLE_SELECT,
    ComponentType.MENTIONABLE_SELECT,
    ComponentType.CHANNEL_SELECT,
    ComponentType.FILE_UPLOAD,
    ComponentType.RADIO_GROUP,
    ComponentType.CHECKBOX_GROUP,
    ComponentType.CHECKBOX,
)
ATTACHMENT_SCHEME = "attachment://"
MAX_V2_COMPONENTS = 40  # components reference, introduction ("up to 40 total components"); changelog 2025-04-29
MAX_V2_TEXT = 4000  # all text displays of a message together: discord-api-docs PR #8562
MAX_LEGACY_ROWS = 5  # components reference, "Legacy Message Component Behavior"


def _action_row(row: dict, where: Path, *, modal: bool) -> None:
    """1–5 buttons, or one select (a select, like a modal's text input, fills the row's width): components
    reference, "Action Row"; a select beside a button answers COMPONENT_LAYOUT_WIDTH_EXCEEDED
    (Discord's code, quoted by many bots' bug reports)."""
    children = row.get("components")
    _bad_length(children, 1, 5, [*where, "components"])
    assert isinstance(children, list)
    allowed = MODAL_ROW_CHILDREN if modal else MESSAGE_ROW_CHILDREN
    kinds = [_type_in(child, allowed, [*where, "components", index]) for index, child in enumerate(children)]
    wide = any(kind != ComponentType.BUTTON for kind in kinds)
    if wide and len(children) > 1:
        raise form_error(
            [*where, "components", 1],
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "The specified component exceeds the maximum width",
        )
    for index, child in enumerate(children):
        here = [*where, "components", index]
        if child["type"] == ComponentType.BUTTON:
            _button(child, here)
        elif child["type"] == ComponentType.TEXT_INPUT:
            _text_input(child, here, in_label=False)
        else:
            _select(child, here, modal=modal)


def _button(button: dict, where: Path) -> None:
    """Components reference, "Button": label ≤ 80; link buttons (5) need a ``url`` (≤ 512) and no
    ``custom_id``; premium buttons (6) a ``sku_id`` and no custom id, label, url or emoji; the other styles
    a ``custom_id`` and no ``url`` or ``sku_id``; a label or an emoji on all but premium ones.  The codes
    BUTTON_COMPONENT_CUSTOM_ID_REQUIRED and …_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE are Discord's; the others
    (…_SKU_ID_INVALID, …_PREMIUM_FIELDS_INVALID, …_LABEL_OR_EMOJI_REQUIRED) are ours."""
    style = button.get("style")
    if style not in tuple(ButtonStyle):
        raise form_error([*where, "style"], "BASE_TYPE_CHOICES", f"Value must be one of {one_of(ButtonStyle)}.")
    _max_length(button.get("label"), 80, [*where, "label"])
    if style == ButtonStyle.PREMIUM:
        _required(button, "sku_id", where)
        for key in ("custom_id", "label", "url", "emoji"):
            if _present(button, key):
                raise form_error(
                    [*where, key],
                    "BUTTON_COMPONENT_PREMIUM_FIELDS_INVALID",
                    "Premium buttons cannot have a custom_id, label, url or emoji",
                )
        return
    if _present(button, "sku_id"):
        raise form_error([*where, "sku_id"], "BUTTON_COMPONENT_SKU_ID_INVALID", "Only premium buttons take a sku_id")
    if style == ButtonStyle.LINK:
        if _present(button, "custom_id"):
            raise form_error(
                [*where, "custom_id"],
                "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                "A custom id and url cannot both be specified",
            )
        _max_length(_required(button, "url", where), 512, [*where, "url"])
    else:
        if not _present(button, "custom_id"):
            raise form_error([*where, "custom_id"], "BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required")
        if _present(button, "url"):
            raise form_error(
                [*where, "url"],
                "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                "A custom id and url cannot both be specified",
            )
    if not button.get("label") and not _present(button, "emoji"):
        raise form_error(
            [*where, "label"], "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED", "A label or an emoji is required"
        )


def _choice_count(component: dict, where: Path, *, most: int) -> tuple[int, int]:
    """``min_values`` 0..most and ``max_values`` 1..most, the lower not above the upper, and the rule of
    discord-api-docs issue #7800 / PR #8177 (every select, file upload and checkbox group): "`min_values`
    must be either omitted or at least `1` if `required` is omitted or `true`" — in messages too,
    although ``required`` is otherwise ignored there; the code and words are Discord's, from #7800."""
    low, high = component.get("min_values"), component.get("max_values")
    _in_range(low, 0, most, [*where, "min_values"])
    _in_range(high, 1, most, [*where, "max_values"])
    if component.get("required") is not False and low == 0:
        raise form_error(
            [*where, "min_values"],
            "SELECT_COMPONENT_REQUIRED_ZERO_MIN_VALUES",
            "Select menus marked as required cannot have a min_values of 0",
        )
    low, high = 1 if low is None else low, 1 if high is None else high
    _not_above(low, high, [*where, "min_values"])
    return low, high


def _select(select: dict, where: Path, *, modal: bool) -> None:
    """Components reference, "String/User/Role/Mentionable/Channel Select": a custom id; placeholder ≤ 150;
    min/max values (see ``_choice_count``); not ``disabled`` in a modal ("Using `disabled` in a modal will
    result in an error", code ours); a string select has 1–25 options with label and value 1–100 and
    description ≤ 100, unique values, at least ``max_values`` of them, and no more defaults than
    ``max_values``; the others no more ``default_values`` than that.  The codes for duplicated values, too
    many defaults and too few options (BASE_TYPE_MIN_LENGTH on ``options``) are Discord's as an open-source
    Discord API mock on GitHub records them (not published by Discord)."""
    _required(select, "custom_id", where)
    _max_length(select.get("placeholder"), 150, [*where, "placeholder"])
    _, high = _choice_count(select, where, most=25)
    if modal and select.get("disabled"):
        raise form_error(
            [*where, "disabled"], "COMPONENT_DISABLED_IN_MODAL", "Modals cannot have disabled components in them"
        )
    if select["type"] != ComponentType.STRING_SELECT:
        defaults = select.get("default_values") or []
        if len(defaults) > high:
            raise form_error(
                [*where, "default_values"],
                "SELECT_COMPONENT_TOO_MANY_DEFAULT_VALUES",
                "The specified number of default values exceeds the specified maximum values",
            )
        return
    options = select.get("options")
    _bad_length(options, 1, 25, [*where, "options"])
    assert isinstance(options, list)
    values: set[str] = set()
    for index, option in enumerate(options):
        here = [*where, "options", index]
        for key in ("label", "value"):
            _bad_length(_required(option, key, here), 1, 100, [*here, key])
        _max_length(option.get("description"), 100, [*here, "description"])
        if option["value"] in values:
            raise form_error(
                here, "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED", "The specified option value is already used"
            )
        values.add(option["value"])
    if high > len(options):
        raise form_error([*where, "options"], "BASE_TYPE_MIN_LENGTH", f"Must be {high} or more in length.")
    if sum(1 for option in options if option.get("default")) > high:
        raise form_error(
            [*where, "options"],
            "SELECT_COMPONENT_TOO_MANY_DEFAULT_VALUES",
            "The specified number of default values exceeds the specified maximum values",
        )


def _text_input(text_input: dict, where: Path, *, in_label: bool) -> None:
    """Components reference, "Text Input": custom id 1–100, style 1 or 2, value ≤ 4000, placeholder ≤ 100,
    ``min_length`` 0–4000, ``max_length`` 1–4000, the minimum not above the maximum; its own ``label`` is
    refused inside a Label (discord-api-docs PR #7773: "the `label` field on the Text Input is not
    allowed"; discord.py's ``null`` is accepted; code ours) and required (1–45) in a legacy action row."""
    _bad_length(_required(text_input, "custom_id", where), 1, 100, [*where, "custom_id"])
    if text_input.get("style") not in (1, 2):
        raise form_error([*where, "style"], "BASE_TYPE_CHOICES", f"Value must be one of {one_of((1, 2))}.")
    if in_label and _present(text_input, "label"):
        raise form_error(
            [*where, "label"],
            "TEXT_INPUT_LABEL_NOT_ALLOWED_IN_LABEL",
            "A text input inside a Label cannot have its own label",
        )
    if not in_label:
        _bad_length(_required(text_input, "label", where), 1, 45, [*where, "label"])
    _max_length(text_input.get("value"), 4000, [*where, "value"])
    _max_length(text_input.get("placeholder"), 100, [*where, "placeholder"])
    low, high = text_input.get("min_length"), text_input.get("max_length")
    _in_range(low, 0, 4000, [*where, "min_length"])
    _in_range(high, 1, 4000, [*where, "max_length"])
    _not_above(low, high, [*where, "min_length"])


def _label(label: dict, where: Path) -> None:
    """Components reference, "Label": label 1–45, description ≤ 100, exactly one child of the allowed
    types; "File Upload" (0–10 files), "Radio Group" (2–10 options), "Checkbox Group" (1–10 options)."""
    _bad_length(_required(label, "label", where), 1, 45, [*where, "label"])
    if _present(label, "description"):  # 1–100 in Discord's OpenAPI document, hence "between 1 and 100"
        _bad_length(label["description"], 1, 100, [*where, "description"])
    child = _required(label, "component", where)
    here = [*where, "component"]
    kind = _type_in(child, LABEL_CHILDREN, here)
    if kind == ComponentType.TEXT_INPUT:
        _text_input(child, here, in_label=True)
    elif kind in SELECT_COMPONENT_TYPES:
        _select(child, here, modal=True)
    elif kind == ComponentType.FILE_UPLOAD:
        _required(child, "custom_id", here)
        _choice_count(child, here, most=10)
    elif kind in (ComponentType.RADIO_GROUP, ComponentType.CHECKBOX_GROUP):
        _required(child, "custom_id", here)
        fewest = 2 if kind == ComponentType.RADIO_GROUP else 1
        _bad_length(child.get("options"), fewest, 10, [*here, "options"])
        if kind == ComponentType.CHECKBOX_GROUP:
            _choice_count(child, here, most=10)


def _media(media: Any, where: Path, filenames: set[str], *, attachment_only: bool = False) -> None:
    """An unfurled media item: an ``attachment://name`` must name a file of the message (uploaded with
    this request or kept from before), and a File component takes nothing else (components reference,
    "File", "Unfurled Media Item", "Uploading a file"; codes ours)."""
    if not isinstance(media, dict):
        raise form_error(where, "BASE_TYPE_REQUIRED", "This field is required")
    url = _required(media, "url", where)
    if not isinstance(url, str):
        raise form_error([*where, "url"], "BASE_TYPE_REQUIRED", "This field is required")
    if url.startswith(ATTACHMENT_SCHEME):
        if url[len(ATTACHMENT_SCHEME) :] not in filenames:
            raise form_error([*where, "url"], "ATTACHMENT_NOT_FOUND", f"Unknown attachment {url}")
    elif attachment_only:
        raise form_error(
            [*where, "url"], "UNFURLED_MEDIA_ITEM_ATTACHMENT_REQUIRED", "Only attachment:// references are allowed"
        )


def _message_component(component: dict, where: Path, filenames: set[str]) -> None:
    """The v2 layout (components reference, "Section", "Text Display", "Thumbnail", "Media Gallery",
    "File", "Container"): sections of 1–3 text displays with one button or thumbnail accessory, thumbnails
    only there, galleries of 1–10 items, containers of the allowed children, text displays of 1–4000."""
    kind = component["type"]
    if kind == ComponentType.ACTION_ROW:
        _action_row(component, where, modal=False)
    elif kind == ComponentType.TEXT_DISPLAY:
        _bad_length(component.get("content"), 1, MAX_V2_TEXT, [*where, "content"])
    elif kind == ComponentType.SECTION:
        children = component.get("components")
        _bad_length(children, 1, 3, [*where, "components"])
        assert isinstance(children, list)
        for index, child in enumerate(children):
            _type_in(child, SECTION_CHILDREN, [*where, "components", index])
            _message_component(child, [*where, "components", index], filenames)
        accessory = _required(component, "accessory", where)
        here = [*where, "accessory"]
        if _type_in(accessory, SECTION_ACCESSORIES, here) == ComponentType.BUTTON:
            _button(accessory, here)
        else:
            _media(accessory.get("media"), [*here, "media"], filenames)
            _max_length(accessory.get("description"), 1024, [*here, "description"])
    elif kind == ComponentType.MEDIA_GALLERY:
        items = component.get("items")
        _bad_length(items, 1, 10, [*where, "items"])
        assert isinstance(items, list)
        for index, item in enumerate(items):
            _media(item.get("media") if isinstance(item, dict) else None, [*where, "items", index, "media"], filenames)
    elif kind == ComponentType.FILE:
        _media(component.get("file"), [*where, "file"], filenames, attachment_only=True)
    elif kind == ComponentType.CONTAINER:
        children = component.get("components")
        if not isinstance(children, list):
            raise form_error([*where, "components"], "BASE_TYPE_REQUIRED", "This field is required")
        for index, child in enumerate(children):
            here = [*where, "components", index]
            _type_in(child, CONTAINER_CHILDREN, here)
            _message_component(child, here, filenames)


def _message_components(components: list[dict], flags: int, filenames: set[str]) -> None:
    """Without IS_COMPONENTS_V2 (1 << 15): at most 5 top-level components, all action rows (components
    reference, "Legacy Message Component Behavior"; a v2 type there answers "must be one of (1,)").  With
    it: the v2 top-level types, at most 40 components counting nested ones, and at most 4000 characters
    in all the text displays together (discord-api-docs PR #8562; counted at the display that passes)."""
    where: Path = ["components"]
    v2 = bool(flags & MessageFlag.IS_COMPONENTS_V2)
    if v2 and len(walk_components(components, where)) > MAX_V2_COMPONENTS:
        raise form_error(where, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
    if not v2:
        _max_length(components, MAX_LEGACY_ROWS, where)
    for index, component in enumerate(components):
        here = [*where, index]
        _type_in(component, V2_TOP_LEVEL if v2 else LEGACY_TOP_LEVEL, here)
        _message_component(component, here, filenames)
    text = 0
    for path, component in walk_components(components, where):
        if component.get("type") == ComponentType.TEXT_DISPLAY:
            text += len(component.get("content") or "")
            if text > MAX_V2_TEXT:
                raise form_error(
                    [*path, "content"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_TEXT} or fewer in length."
                )


# ---------------------------------------------------------------------------------------- messages

ALLOWED_MENTION_TYPES = ("users", "roles", "everyone")  # in the order of the OpenAPI document's AllowedMentionTypes
# Message fields a components-v2 message cannot use (components reference, introduction: "The `content`
# and `embeds` fields will no longer work", "The `poll` and `stickers` fields are disabled"; the code
# and words are Discord's).
LEGACY_FIELDS = ("content", "embeds", "poll", "sticker_ids")


def _no_legacy_fields(where: str) -> ApiError:
    return form_error(
        [where],
        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
        "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
    )


def validate_message_body(body: dict) -> None:
    """Rules on a create/edit body that are not about the resulting message: ``allowed_mentions``
    (known ``parse`` types, ``parse`` of a type excludes an id list of it, at most 100 ids; resources/message
    "Allowed Mentions Object"), the ``nonce`` (≤ 25), ``attachments`` (≤ 10), custom ids (1–100, unique),
    and no ``poll`` or ``sticker_ids`` beside IS_COMPONENTS_V2."""
    mentions = body.get("allowed_mentions")
    if mentions is not None:
        parse = mentions.get("parse") or []
        for index, kind in enumerate(parse):
            if kind not in ALLOWED_MENTION_TYPES:
                raise form_error(
                    ["allowed_mentions", "parse", index],
                    "BASE_TYPE_CHOICES",
                    f"Value must be one of {one_of(ALLOWED_MENTION_TYPES)}.",
                )
        for kind in ("users", "roles"):
            ids = mentions.get(kind) or []
            if kind in parse and ids:
                raise form_error(
                    ["allowed_mentions"],
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
            _max_length(ids, 100, ["allowed_mentions", kind])
    nonce = body.get("nonce")
    if isinstance(nonce, str):
        _max_length(nonce, 25, ["nonce"])  # resources/message "Create Message"
    # At most 10 attachments, refused at the list before its files are counted (as the schema check does,
    # from the OpenAPI document's maxItems): discord.py sends one entry per file it uploads.
    _max_length(body.get("attachments"), 10, ["attachments"])
    _unique_custom_ids(body.get("components") or [], ["components"])
    if int(body.get("flags") or 0) & MessageFlag.IS_COMPONENTS_V2:
        for key in ("poll", "sticker_ids"):
            if body.get(key):
                raise _no_legacy_fields(key)


def validate_message_fields(fields: dict) -> None:
    """The resulting message (``fields`` from the emulator's compose step): content ≤ 2000, 10 embeds
    within their limits (resources/message "Embed Limits"), 10 files, not empty (50006), and its
    components under the legacy or the v2 rules; ``attachment://`` names are the message's files."""
    content, embeds, components = fields["content"] or "", fields["embeds"] or [], fields["components"] or []
    _max_length(content, 2000, ["content"])
    _max_length(embeds, 10, ["embeds"])
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            _max_length(embed.get(key), limit, ["embeds", index, key])
        total += sum(len(embed.get(key) or "") for key in ("title", "description"))
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields") or [])
        total += len((embed.get("footer") or {}).get("text", "")) + len((embed.get("author") or {}).get("name", ""))
    if total > 6000:
        raise form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    _max_length(fields["attachments"], 10, ["attachments"])
    if fields["flags"] & MessageFlag.IS_COMPONENTS_V2:
        if content:
            raise _no_legacy_fields("content")
        if embeds:
            raise _no_legacy_fields("embeds")
    filenames = {attachment["filename"] for attachment in fields["attachments"]}
    _message_components(components, fields["flags"], filenames)
    if not (content.strip() or embeds or components or fields["attachments"]):
        raise ApiError(400, ErrorCode.EMPTY_MESSAGE, "Cannot send an empty message")


# ---------------------------------------------------------------------------------------- modals


def validate_modal(data: dict) -> None:
    """Responding, "Modal": custom id 1–100, title 1–45, 1–5 components (action rows of one text input,
    text displays, Labels); custom ids unique across the modal."""
    where: Path = ["data"]
    _bad_length(_required(data, "custom_id", where), 1, 100, [*where, "custom_id"])
    _bad_length(data.get("title"), 1, 45, [*where, "title"])
    components = data.get("components")
    _bad_length(components, 1, 5, [*where, "components"])
    assert isinstance(components, list)
    for index, component in enumerate(components):
        here = [*where, "components", index]
        kind = _type_in(component, MODAL_TOP_LEVEL, here)
        if kind == ComponentType.ACTION_ROW:
            _action_row(component, here, modal=True)
        elif kind == ComponentType.LABEL:
            _label(component, here)
        else:
            _bad_length(component.get("content"), 1, 4000, [*here, "content"])
    _unique_custom_ids(components, [*where, "components"])


# ---------------------------------------------------------------------------------------- commands

# Reference, "Locales": the keys of every *_localizations dictionary.
# fmt: off
LOCALES = frozenset((
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl", "pt-BR",
    "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
))
# fmt: on
# Commands, "Registering a Command": per scope, 100 slash, 15 user and 15 message commands; a bulk
# overwrite of more than their sum is a form error, else too many of one type is 30032 (both answers
# measured by chenhg5/cc-connect issue #504).
COMMAND_LIMITS = {CommandType.CHAT_INPUT: 100, CommandType.USER: 15, CommandType.MESSAGE: 15}
MAX_COMMAND_SIZE = 8000  # commands, "Slash Commands" warning
CHOICE_OPTION_TYPES = (OptionType.STRING, OptionType.INTEGER, OptionType.NUMBER)
MAX_SAFE_INTEGER = 2**53  # commands, "Application Command Option Type": INTEGER within ±(2^53 − 1)
INTEGRATION_TYPES = (0, 1)  # resources/application "Application Integration Types"
CONTEXT_TYPES = (0, 1, 2)  # responding, "Interaction Context Types"


def _is_command_name(name: Any, command_type: int) -> bool:
    """Commands, "Application Command Naming": 1–32 characters; a slash command's (and an option's) match
    ``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`` and use the lowercase variant of every letter."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return False
    if command_type != CommandType.CHAT_INPUT:
        return True

    def allowed(char: str) -> bool:
        if char in "-_'" or unicodedata.category(char)[0] in "LN":
            return True
        return unicodedata.name(char, "").startswith(("DEVANAGARI", "THAI"))

    return all(allowed(char) for char in name) and name == name.lower()


def _name(name: Any, command_type: int, where: Path) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise form_error(where, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if not _is_command_name(name, command_type):
        raise form_error(where, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _localizations(node: dict, key: str, where: Path, check: Callable[[Any, Path], None]) -> None:
    """``key`` (``name_localizations`` / ``description_localizations``): keys from the locale list, values
    under the same restrictions as the field itself (commands, "Localization"; unknown-locale code ours)."""
    localized = node.get(key)
    if localized is None:
        return
    if not isinstance(localized, dict):
        raise form_error([*where, key], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    for locale, value in localized.items():
        if locale not in LOCALES:
            raise form_error(
                [*where, key, locale], "BASE_TYPE_CHOICES", f"Value must be one of {one_of(sorted(LOCALES))}."
            )
        check(value, [*where, key, locale])


def _description(value: Any, where: Path) -> None:
    _bad_length(value, 1, 100, where)


def _longest(node: dict, key: str) -> int:
    """The length that counts toward a command's size: the longest of the field and its localizations."""
    localized = node.get(f"{key}_localizations") or {}
    return max([len(node.get(key) or ""), *(len(v) for v in localized.values() if isinstance(v, str))])


def command_size(node: dict) -> int:
    """Commands, "Slash Commands": "combined name, description, and value properties for each command, its
    options (including subcommands and groups), and choices … only the longest localization for each
    field (including the default value) is counted"."""
    size = _longest(node, "name") + _longest(node, "description")
    for choice in node.get("choices") or []:
        size += _longest(choice, "name") + len(str(choice.get("value", "")))
    return size + sum(command_size(option) for option in node.get("options") or [])


def validate_command_counts(commands: list[Any]) -> None:
    """At most 100 slash, 15 user and 15 message commands in one bulk overwrite (one scope)."""
    _max_length(commands, sum(COMMAND_LIMITS.values()), [])
    for command_type, limit in COMMAND_LIMITS.items():
        if sum(1 for c in commands if isinstance(c, dict) and c.get("type", 1) == command_type) > limit:
            raise ApiError(
                400, ErrorCode.MAX_APPLICATION_COMMANDS, f"Maximum number of application commands reached ({limit})"
            )


def validate_command(command: Any, where: Path) -> None:
    """Discord's rules for one application command in a bulk overwrite (commands, "Application Command
    Object"): names and descriptions and their localizations, ``integration_types`` and ``contexts``,
    options, and the size limit of a slash command (APPLICATION_COMMAND_TOO_LARGE, "Command exceeds
    maximum size (8000)": Discord's words, quoted by many bots' bug reports)."""
    if not isinstance(command, dict):
        raise form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    command_type = command.get("type", CommandType.CHAT_INPUT)
    _name(command.get("name"), command_type, [*where, "name"])
    _localizations(command, "name_localizations", where, lambda v, w: _name(v, command_type, w))
    for key, allowed in (("integration_types", INTEGRATION_TYPES), ("contexts", CONTEXT_TYPES)):
        for index, value in enumerate(command.get(key) or []):
            if value not in allowed:
                raise form_error([*where, key, index], "BASE_TYPE_CHOICES", f"Value must be one of {one_of(allowed)}.")
    if command_type == CommandType.CHAT_INPUT:
        _description(command.get("description"), [*where, "description"])
        _localizations(command, "description_localizations", where, _description)
        validate_options(command.get("options") or [], [*where, "options"])
        if command_size(command) > MAX_COMMAND_SIZE:
            raise form_error(
                where, "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({MAX_COMMAND_SIZE})"
            )
    elif command.get("description"):
        raise form_error(
            [*where, "description"],
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        )


def _choice(choice: Any, where: Path) -> None:
    """Commands, "Application Command Option Choice Structure": name 1–100 (and its localizations), a
    string value ≤ 100 characters (the OpenAPI document says 6000; the docs say 100, and Discord wins)."""
    if not isinstance(choice, dict):
        raise form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    _bad_length(choice.get("name"), 1, 100, [*where, "name"])
    _localizations(choice, "name_localizations", where, lambda v, w: _bad_length(v, 1, 100, w))
    value = _required(choice, "value", where)
    if isinstance(value, str):
        _max_length(value, 100, [*where, "value"])


def validate_options(options: list[dict], where: Path) -> None:
    """Option rules (commands, "Application Command Option Structure"), recursively through subcommands and
    groups: at most 25, unique names, required before optional, subcommands not mixed with other types,
    names and descriptions and their localizations, at most 25 valid choices, ``autocomplete`` and
    ``choices`` only on string, integer and number options and never together, and sane bounds."""
    _max_length(options, 25, where)
    names: set[str] = set()
    optional_seen = False
    kinds = {option.get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP) for option in options}
    if len(kinds) > 1:
        raise form_error(
            where,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        )
    for index, option in enumerate(options):
        here = [*where, index]
        name, kind = option.get("name"), option.get("type")
        _name(name, CommandType.CHAT_INPUT, [*here, "name"])
        assert isinstance(name, str)
        _localizations(option, "name_localizations", here, lambda v, w: _name(v, CommandType.CHAT_INPUT, w))
        if name in names:
            raise form_error(
                [*here, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique"
            )
        names.add(name)
        _description(option.get("description"), [*here, "description"])
        _localizations(option, "description_localizations", here, _description)
        if option.get("required"):
            if optional_seen:
                raise form_error(
                    [*here, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = option.get("choices") or []
        _max_length(choices, 25, [*here, "choices"])
        for key, given in (("choices", bool(choices)), ("autocomplete", bool(option.get("autocomplete")))):
            if given and kind not in CHOICE_OPTION_TYPES:
                raise form_error(
                    [*here, key],
                    "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
                    f"Only string, integer and number options take {key}",
                )
        if choices and option.get("autocomplete"):
            # commands: "`autocomplete` may not be set to true if `choices` are present" (code ours)
            raise form_error(
                [*here, "autocomplete"],
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_WITH_CHOICES",
                "Autocomplete cannot be enabled on an option with choices",
            )
        for position, choice in enumerate(choices):
            _choice(choice, [*here, "choices", position])
        _bounds(option, here)
        if kind == OptionType.SUB_COMMAND_GROUP and any(
            sub.get("type") != OptionType.SUB_COMMAND for sub in option.get("options") or []
        ):
            raise form_error(
                [*here, "options"],
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command groups may only contain sub-commands",
            )
        if kind in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
            validate_options(option.get("options") or [], [*here, "options"])


def _bounds(option: dict, where: Path) -> None:
    """``min_value``/``max_value`` on integer and number options (integers within ±(2^53 − 1)),
    ``min_length`` 0–6000 and ``max_length`` 1–6000 on string options, each minimum not above its maximum."""
    kind = option.get("type")
    for key in ("min_value", "max_value", "min_length", "max_length"):
        numeric = key.endswith("_value")
        if _present(option, key) and kind not in (
            (OptionType.INTEGER, OptionType.NUMBER) if numeric else (OptionType.STRING,)
        ):
            raise form_error(
                [*where, key], "APPLICATION_COMMAND_OPTION_TYPE_INVALID", f"Option type {kind} cannot have {key}"
            )
    if kind == OptionType.INTEGER:
        for key in ("min_value", "max_value"):
            _in_range(option.get(key), 1 - MAX_SAFE_INTEGER, MAX_SAFE_INTEGER - 1, [*where, key])
    _not_above(option.get("min_value"), option.get("max_value"), [*where, "min_value"])
    _in_range(option.get("min_length"), 0, 6000, [*where, "min_length"])
    _in_range(option.get("max_length"), 1, 6000, [*where, "max_length"])
    _not_above(option.get("min_length"), option.get("max_length"), [*where, "min_length"])


def validate_choices(choices: Any) -> None:
    """An autocomplete answer (responding, "Autocomplete"): at most 25 choices, each under the choice rules."""
    where: Path = ["data", "choices"]
    if not isinstance(choices, list):
        raise form_error(where, "BASE_TYPE_REQUIRED", "This field is required")
    _max_length(choices, 25, where)
    for index, choice in enumerate(choices):
        _choice(choice, [*where, index])
