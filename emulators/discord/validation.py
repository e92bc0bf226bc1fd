"""Discord's rules for request bodies: commands, messages, components, modals, autocomplete choices."""

from __future__ import annotations

from typing import Any

from .protocol import (
    COMMAND_NAME_RE,
    ApiError,
    CommandType,
    ComponentType,
    ErrorCode,
    MessageFlag,
    OptionType,
    form_error,
)


def validate_command(command: Any, where: list[str | int]) -> None:
    """Discord's rules for one application command in a bulk overwrite."""
    if not isinstance(command, dict):
        raise form_error(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    command_type = command.get("type", 1)
    name, description = command.get("name"), command.get("description", "")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise form_error([*where, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if command_type == CommandType.CHAT_INPUT:
        if not COMMAND_NAME_RE.match(name) or name != name.lower():
            raise form_error([*where, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            raise form_error([*where, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        validate_options(command.get("options") or [], [*where, "options"])
    elif description:
        raise form_error(
            [*where, "description"],
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        )


def validate_options(options: list[dict], where: list[str | int]) -> None:
    """Option rules, recursively through subcommands and groups."""
    if len(options) > 25:
        raise form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
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
        name, description = option.get("name"), option.get("description")
        if not isinstance(name, str) or not COMMAND_NAME_RE.match(name) or name != name.lower():
            raise form_error([*here, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if name in names:
            raise form_error(
                [*here, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique"
            )
        names.add(name)
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            raise form_error([*here, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("required"):
            if optional_seen:
                raise form_error(
                    [*here, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        if len(option.get("choices") or []) > 25:
            raise form_error([*here, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if option.get("type") == OptionType.SUB_COMMAND_GROUP and any(
            sub.get("type") != OptionType.SUB_COMMAND for sub in option.get("options") or []
        ):
            raise form_error(
                [*here, "options"],
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command groups may only contain sub-commands",
            )
        if option.get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
            validate_options(option.get("options") or [], [*here, "options"])


def validate_message_fields(fields: dict) -> None:
    """Content/embed/component limits and the empty-message rule for a resulting message."""
    content, embeds, components = fields["content"] or "", fields["embeds"] or [], fields["components"] or []
    if len(content) > 2000:
        raise form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    if len(embeds) > 10:
        raise form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            if len(embed.get(key) or "") > limit:
                raise form_error(["embeds", index, key], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
        total += sum(len(embed.get(key) or "") for key in ("title", "description"))
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields") or [])
        total += len((embed.get("footer") or {}).get("text", "")) + len((embed.get("author") or {}).get("name", ""))
    if total > 6000:
        raise form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    if len(fields["attachments"]) > 10:
        raise form_error(["attachments"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if fields["flags"] & MessageFlag.IS_COMPONENTS_V2:
        if content or embeds:
            raise form_error(
                ["content"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )
        if len(walk_components(components, [])) > 40:
            raise form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 40 or fewer in length.")
    else:
        if len(components) > 5:
            raise form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        for index, row in enumerate(components):
            if row.get("type") != ComponentType.ACTION_ROW:
                raise form_error(
                    ["components", index, "type"], "UNION_TYPE_CHOICES", "Top-level components must be action rows"
                )
            if not 1 <= len(row.get("components") or []) <= 5:
                raise form_error(
                    ["components", index, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                )
    if not (content.strip() or embeds or components or fields["attachments"]):
        raise ApiError(400, ErrorCode.EMPTY_MESSAGE, "Cannot send an empty message")


def find_component(components: list[dict], custom_id: str) -> dict | None:
    """The component with ``custom_id`` anywhere in ``components``, or None."""
    return next((c for _, c in walk_components(components, []) if c.get("custom_id") == custom_id), None)


def validate_choices(choices: Any) -> None:
    if not isinstance(choices, list):
        raise form_error(["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
    if len(choices) > 25:
        raise form_error(["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")


def validate_modal(data: dict) -> None:
    if not data.get("custom_id"):
        raise form_error(["data", "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if not 1 <= len(data.get("title") or "") <= 45:
        raise form_error(["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    if not 1 <= len(data.get("components") or []) <= 5:
        raise form_error(["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")


ALLOWED_MENTION_TYPES = {"roles", "users", "everyone"}


def validate_message_body(body: dict) -> None:
    """Rules on a create/edit body that are not about the resulting message: ``allowed_mentions``
    (known ``parse`` types, ``parse`` of a type excludes an id list of it, at most 100 ids), the
    ``nonce`` length, and custom ids (1–100 characters, unique within the message)."""
    mentions = body.get("allowed_mentions")
    if mentions is not None:
        parse = mentions.get("parse") or []
        for index, kind in enumerate(parse):
            if kind not in ALLOWED_MENTION_TYPES:
                raise form_error(
                    ["allowed_mentions", "parse", index],
                    "BASE_TYPE_CHOICES",
                    f"Value must be one of {ALLOWED_MENTION_TYPES}.",
                )
        for kind in ("users", "roles"):
            ids = mentions.get(kind) or []
            if kind in parse and ids:
                raise form_error(
                    ["allowed_mentions"],
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
            if len(ids) > 100:
                raise form_error(["allowed_mentions", kind], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    nonce = body.get("nonce")
    if isinstance(nonce, str) and len(nonce) > 25:
        raise form_error(["nonce"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen: set[str] = set()
    for path, component in walk_components(body.get("components") or [], ["components"]):
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


def walk_components(components: list[dict], where: list[str | int]) -> list[tuple[list[str | int], dict]]:
    """Every component with its field path, depth first (rows, containers, sections, labels)."""
    found: list[tuple[list[str | int], dict]] = []
    for index, component in enumerate(components):
        here = [*where, index]
        found.append((here, component))
        found += walk_components(component.get("components") or [], [*here, "components"])
        for key in ("accessory", "component"):
            if component.get(key):
                found += walk_components([component[key]], [*here, key])
    return found
