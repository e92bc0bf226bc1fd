"""Every request checked against Discord's own OpenAPI document (``openapi.json`` beside this file).

The document is Discord's (https://github.com/discord/discord-api-spec, MIT, see ``LICENSE-openapi``),
OpenAPI 3.1.0, whose schemas are JSON Schema 2020-12.  A request body (the JSON body, or the
``payload_json`` of a multipart body) is validated with ``jsonschema`` against its operation's
request schema, following every ``$ref``, ``oneOf``, ``anyOf`` and ``allOf`` to the bottom; what it
breaks is refused as Discord refuses it (400, code 50035, the error tree by field path).  What
Discord ignores rather than refuses (an unknown path, method, query parameter or body key) is not
refused but reported, since a key Discord silently drops is a bug in the client that sent it.
A missing document is an error, never a silent pass.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from .protocol import ApiError, form_errors, one_of, union_type_error

OPENAPI_PATH = Path(__file__).resolve().with_name("openapi.json")
_SPEC_URI = "urn:discord:openapi"
# The keywords the strict schemas refuse undeclared keys with (see _refuse_unknown_keys).
UNKNOWN_KEYS = {"additionalProperties", "unevaluatedProperties"}

# Real Discord endpoints the bot may call that the published OpenAPI document does not describe.
SPEC_GAPS = {("POST", "/attachments/refresh-urls")}
# Request keys the OpenAPI schemas lack although Discord accepts them, by schema: ``nsfw`` is
# documented for commands (docs: interactions/application-commands, "nsfw?"), and discord.py sends
# ``tts`` with every message edit, an interaction's UPDATE_MESSAGE callback included (Discord ignores it).
SPEC_EXTRA_KEYS: dict[str, dict[str, dict]] = {
    "ApplicationCommandUpdateRequest": {"nsfw": {"type": ["boolean", "null"]}},
    "IncomingWebhookUpdateRequestPartial": {"tts": {"type": ["boolean", "null"]}},
    "IncomingWebhookUpdateForInteractionCallbackRequestPartial": {"tts": {"type": ["boolean", "null"]}},
    "MessageEditRequestPartial": {"tts": {"type": ["boolean", "null"]}},
}
# The document's ``SnowflakeType`` is a digits-only string, but Discord also takes snowflakes as JSON
# integers: discord.py 2.7.1 sends the ids of an upload's ``attachments`` that way (``File.to_dict``:
# ``{"id": index, …}``) with every file it uploads, and real Discord accepts them (every discord.py bot
# uploads so; /work/shared/discord/NOTES.md, "one schema quirk").
SNOWFLAKE = {
    "type": ["string", "integer"],
    "pattern": "^(0|[1-9][0-9]*)$",
    "minimum": 0,
    "maximum": 2**63 - 1,
    "format": "snowflake",
}
# Where the document is kinder than Discord is to a bot, Discord's documented limit, by schema and key:
# a message's ``content`` is 4000 in the document (the limit of users with Nitro), 2000 for a bot
# (resources/message "Create Message": "Message contents (up to 2000 characters)"; Discord answers
# "Must be 2000 or fewer in length."); a string choice's ``value`` 6000 in the document, 100 in the
# docs (interactions/application-commands, "Application Command Option Choice Structure").
BOT_LIMITS: dict[str, dict[str, dict[str, int]]] = {
    "MessageCreateRequest": {"content": {"maxLength": 2000}},
    "MessageEditRequestPartial": {"content": {"maxLength": 2000}},
    "BaseCreateMessageCreateRequest": {"content": {"maxLength": 2000}},
    "ApplicationCommandOptionStringChoice": {"value": {"maxLength": 100}},
}
# The enum the document draws every component's ``type`` from: a schema whose ``type`` is drawn from it
# is a component (see _component_slots).
COMPONENT_TYPES_REF = "#/components/schemas/MessageComponentTypes"


@dataclass
class Check:
    """What checking one request found: ``refusal`` is the 400 Discord answers (None when the body is
    valid), ``violations`` what Discord ignores (unknown path, method, query parameter or body key)."""

    refusal: ApiError | None = None
    violations: list[str] = field(default_factory=list)


def check_request(method: str, path: str, query: Iterable[str], body: Any) -> Check:
    """Checks one request (``path`` relative to ``/api/v10``) against Discord's OpenAPI document.
    Raises FileNotFoundError when the document is missing."""
    if (method, path) in SPEC_GAPS:
        return Check()
    template = _match_template(path)
    if template is None:
        return Check(violations=["no such path in the OpenAPI document"])
    operation = _operation(method, template)
    if operation is None:
        return Check(violations=[f"method not allowed on {template}"])
    check = Check(violations=[f"unknown query parameter {key!r}" for key in query if key not in operation.query])
    if body is None or operation.validator is None or operation.strict is None:
        return check
    # The strict schemas differ from the others only by refusing undeclared keys, so a body they take
    # (the common case) needs no second pass; one they refuse for more than unknown keys is judged by
    # the lenient ones, since an unknown key can also fail a union branch Discord would have taken.
    leaves = [leaf for error in operation.strict.iter_errors(body) for leaf in _leaves(error)]
    if any(leaf.validator not in UNKNOWN_KEYS for leaf in leaves):
        problems = _problems(operation.validator.iter_errors(body))
        if problems:
            check.refusal = form_errors(problems)
            return check
    check.violations += [
        f"body key {_dotted([*leaf.absolute_path, key])} is not in the request schema (Discord ignores it)"
        for leaf in leaves
        if leaf.validator in UNKNOWN_KEYS
        for key in leaf.instance
        if key not in _declared(leaf.schema)
    ]
    return check


# ---------------------------------------------------------------------- the document


@dataclass(frozen=True)
class _Operation:
    query: frozenset[str]
    validator: Draft202012Validator | None
    strict: Draft202012Validator | None


@functools.cache
def _documents() -> tuple[dict, dict]:
    """The document with Discord's quirks applied, and its strict copy (unknown keys refused)."""
    if not OPENAPI_PATH.is_file():
        raise FileNotFoundError(f"Discord's OpenAPI document is missing: {OPENAPI_PATH}")
    spec = json.loads(OPENAPI_PATH.read_text())
    schemas = spec["components"]["schemas"]
    schemas["SnowflakeType"] = SNOWFLAKE
    for name, extra in SPEC_EXTRA_KEYS.items():
        schemas[name]["properties"].update(extra)
    for name, limits in BOT_LIMITS.items():
        for key, limit in limits.items():
            schemas[name]["properties"][key].update(limit)
    _component_slots(spec, spec)
    _simplify(spec, spec)
    strict = copy.deepcopy(spec)
    _refuse_unknown_keys(strict)
    return spec, strict


def _refuse_unknown_keys(node: Any) -> None:
    """Refuses undeclared keys in every object schema that declares its properties: one that declares
    them all itself gets ``additionalProperties: false`` (exact, and cheap: jsonschema evaluates
    ``unevaluatedProperties`` by validating every property's subtree again, level after level); one
    composed with ``allOf``, ``$ref`` or a union gets ``unevaluatedProperties: false``, which sees the
    keys its parts declare.  Each branch of a union is a whole object schema with its own, so a union
    does not misfire: a key is unknown only to the branch a value takes."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and not {"additionalProperties", "patternProperties"} & set(node):
            composed = {"allOf", "anyOf", "oneOf", "$ref", "if", "dependentSchemas"} & set(node)
            node["unevaluatedProperties" if composed else "additionalProperties"] = False
        for key, value in node.items():
            # ``properties`` maps names to schemas; a property named like a keyword is still a schema.
            children = value.values() if key == "properties" and isinstance(value, dict) else [value]
            for child in children:
                _refuse_unknown_keys(child)
    elif isinstance(node, list):
        for item in node:
            _refuse_unknown_keys(item)


def _component_slots(node: Any, spec: dict) -> None:
    """Makes every place that takes one component type (a modal's action row takes text inputs, a
    section's ``components`` text displays) a union of that one type, as every other place taking
    components is: a component of another type there is then refused as Discord refuses it, at the
    component (UNION_TYPE_CHOICES, "must be one of (4,)"; see :func:`~.protocol.union_type_error`),
    not at its ``type`` as a mismatched enum.  Runs before :func:`_simplify`, which drops the
    ``allOf`` that tells a component schema."""
    if isinstance(node, list):
        for item in node:
            _component_slots(item, spec)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, dict) and set(value) == {"$ref"} and _is_component(value, spec):
            node[key] = {"oneOf": [value]}
        else:
            _component_slots(value, spec)


def _is_component(schema: Mapping[str, Any], spec: dict) -> bool:
    kind = (_resolve(schema, spec).get("properties") or {}).get("type") or {}
    return any(branch.get("$ref") == COMPONENT_TYPES_REF for branch in kind.get("allOf") or [])


def _simplify(node: Any, spec: dict) -> None:
    """Rewrites the document's schemas into equivalent ones that validate in one evaluation where the
    document's take many (a request body is validated in about a millisecond instead of ten):

    * its enums, unions of titled constants (``{"title": "ACTION_ROW", "const": 1}``), as ``enum``;
    * a property's ``enum`` (``[3]``) beside ``allOf`` of the enum it is drawn from (all component
      types) as the ``enum`` alone;
    * a ``oneOf`` of branches of distinct JSON types as an ``anyOf``;
    * every union of object schemas told apart by their ``type`` property (components, command
      options, interaction callbacks) as ``{"x-type-union": {type: branch}}``, see :func:`_type_union`:
      only the branch a value's ``type`` names is evaluated and reports errors, which is also what makes
      an error useful (a plain ``oneOf`` evaluates every component schema against every nested one)."""
    if isinstance(node, list):
        for item in node:
            _simplify(item, spec)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _simplify(value, spec)
    constants = _union_constants(node)
    if constants is not None:
        for key in ("oneOf", "anyOf"):
            node.pop(key, None)
        node["enum"] = constants
    if "enum" in node and "allOf" in node:
        drawn_from = [_constants(_resolve(branch, spec)) for branch in node["allOf"]]
        if all(values is not None and all(value in values for value in node["enum"]) for values in drawn_from):
            del node["allOf"]
    union = next((key for key in ("oneOf", "anyOf") if isinstance(node.get(key), list)), None)
    if union is None:
        return
    branches = node[union]
    kinds = [_json_types(branch, spec) for branch in branches]
    if union == "oneOf" and all(kinds) and sum(map(len, kinds)) == len(set().union(*kinds)):
        # Branches of distinct JSON types (``null`` or an object, mostly) match one at most, so
        # ``anyOf`` takes the same values, stopping at the first branch that does: ``null`` last.
        del node["oneOf"]
        node["anyOf"] = branches = sorted(branches, key=lambda branch: _json_types(branch, spec) == {"null"})
        union = "anyOf"
    choices = [_type_choices(branch, spec) for branch in branches]
    flat = [str(kind) for kinds in choices for kind in kinds or [None]]
    objects = all(_resolve(branch, spec).get("type") == "object" for branch in branches)
    if "None" in flat or len(set(flat)) != len(flat) or not objects:
        return
    del node[union]
    node["x-type-union"] = {
        str(kind): branch for kinds, branch in zip(choices, branches, strict=True) for kind in kinds or []
    }


def _json_types(schema: Mapping[str, Any], spec: dict) -> set[str]:
    """The JSON types a schema declares (``integer`` counted as a ``number``), empty when it does not."""
    declared = _resolve(schema, spec).get("type") or []
    return {"number" if kind == "integer" else kind for kind in ([declared] if isinstance(declared, str) else declared)}


def _constants(schema: Mapping[str, Any]) -> list | None:
    """The values an enum schema takes (its ``enum``, or its union of constants), else None."""
    return list(schema["enum"]) if "enum" in schema else _union_constants(schema)


def _union_constants(schema: Mapping[str, Any]) -> list | None:
    """The distinct constants of an enum written as a union of (titled) constants, else None."""
    for key in ("oneOf", "anyOf"):
        branches = schema.get(key)
        titled = {"title", "description", "const"}
        if isinstance(branches, list) and all("const" in branch and set(branch) <= titled for branch in branches):
            constants = [branch["const"] for branch in branches]
            if len(set(map(json.dumps, constants))) == len(constants):
                return constants
    return None


def _type_union(
    validator: Draft202012Validator, branches: dict[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The ``x-type-union`` keyword (see :func:`_simplify`): an object whose ``type`` names a
    branch, valid under that branch."""
    if not validator.is_type(instance, "object"):
        yield ValidationError(f"{instance!r} is not of type 'object'", validator="type", validator_value="object")
    elif "type" not in instance:
        yield ValidationError("'type' is a required property", validator="required", validator_value=["type"])
    elif str(instance["type"]) not in branches:
        # At the object, not at its ``type``: where Discord reports it (see union_type_error).
        yield ValidationError(f"{instance['type']!r} names no branch")
    else:
        yield from validator.descend(instance, branches[str(instance["type"])])


_Validator = validators.extend(Draft202012Validator, {"x-type-union": _type_union})


@functools.cache
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    """The document's path templates as patterns, the most literal segments first (``/@me`` before
    ``/{user_id}``)."""
    compiled = []
    for template in _documents()[0]["paths"]:
        pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")
        literal = sum(1 for segment in template.split("/") if segment and "{" not in segment)
        compiled.append((literal, template, pattern))
    return [(template, pattern) for _, template, pattern in sorted(compiled, key=lambda entry: -entry[0])]


def _match_template(path: str) -> str | None:
    return next((template for template, pattern in _templates() if pattern.match(path)), None)


@functools.cache
def _operation(method: str, template: str) -> _Operation | None:
    """The operation's declared query parameters and its body validators, built once per operation."""
    spec, strict = _documents()
    item = spec["paths"][template]
    operation = item.get(method.lower())
    if operation is None:
        return None
    parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
    query = frozenset(p["name"] for p in parameters if p.get("in") == "query")
    content = (operation.get("requestBody") or {}).get("content", {})
    # A multipart body's ``payload_json`` is the JSON body; its ``files[n]`` parts are not validated here.
    media = next((kind for kind in ("application/json", "multipart/form-data") if kind in content), None)
    if media is None:
        return _Operation(query, None, None)
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ("paths", template, method.lower(), "requestBody", "content", media, "schema")
    )
    reference = {"$ref": f"{_SPEC_URI}#/{pointer}"}
    return _Operation(query, _validator(spec, reference), _validator(strict, reference))


def _validator(document: dict, schema: dict) -> Draft202012Validator:
    registry: Registry = Registry().with_resource(_SPEC_URI, DRAFT202012.create_resource(document))
    return _Validator(schema, registry=registry)


def _declared(schema: Mapping[str, Any]) -> set[str]:
    """The keys an object schema declares, those of its ``allOf`` and ``$ref`` included."""
    branches = [*schema.get("allOf", []), *([{"$ref": schema["$ref"]}] if "$ref" in schema else [])]
    spec = _documents()[0]
    return set(schema.get("properties") or {}).union(*(_declared(_resolve(branch, spec)) for branch in branches))


# ---------------------------------------------------------------------- errors as Discord words them


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors worth reporting: a failed union (one not told apart by ``type``, see
    :func:`_simplify`: ``null`` or an object, say) is reported by the branch of the value's JSON
    type that the value breaks least: with the fewest values of a wrong JSON type, then the fewest
    errors, then the deepest ones (an autocomplete answer of string choices with one name too long is
    judged as string choices, not as integer ones whose values are all wrong), down to those errors;
    a union no branch of which fits, by itself."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    by_branch: dict[int, list[ValidationError]] = defaultdict(list)
    for sub in error.context:
        by_branch[int(sub.relative_schema_path[0])].append(sub)
    # A branch refusing the value's JSON type outright (an error at the value itself) is not the one meant.
    fitting = [
        errors
        for errors in by_branch.values()
        if not any(sub.validator == "type" and not sub.relative_path for sub in errors)
    ]
    if not fitting:
        return [error]
    found = [[leaf for sub in errors for leaf in _leaves(sub)] for errors in fitting]
    return min(
        found,
        key=lambda leaves: (
            sum(1 for leaf in leaves if leaf.validator == "type"),
            len(leaves),
            -max(len(leaf.absolute_path) for leaf in leaves),
        ),
    )


def _type_choices(branch: Mapping[str, Any], spec: dict) -> list | None:
    """The ``type`` values a union branch takes (its ``type`` property's const or enum), or None."""
    prop = (_resolve(branch, spec).get("properties") or {}).get("type") or {}
    if "const" in prop:
        return [prop["const"]]
    return list(prop["enum"]) if "enum" in prop else None


def _resolve(schema: Mapping[str, Any], spec: dict) -> Mapping[str, Any]:
    """The schema a local ``$ref`` (``#/components/schemas/…``) points at, through chains of them."""
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].split("#", 1)[1].lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


Problem = tuple[list[str | int], str, str]


def _problems(errors: Iterable[ValidationError]) -> list[Problem]:
    """Discord's error codes and words for jsonschema's errors (through failed unions): the first
    for each field, as Discord reports one per field (a wrong type, not also its range)."""
    first: dict[str, Problem] = {}
    for leaf in (leaf for error in errors for leaf in _leaves(error)):
        for problem in _worded(leaf):
            first.setdefault(_dotted(problem[0]), problem)
    return list(first.values())


def _worded(error: ValidationError) -> list[Problem]:
    where: list[str | int] = list(error.absolute_path)
    keyword, limit, value, schema = error.validator, error.validator_value, error.instance, error.schema
    if keyword == "required":
        return [([*where, key], "BASE_TYPE_REQUIRED", "This field is required") for key in limit if key not in value]
    if keyword in ("maxLength", "maxItems", "maxProperties", "minLength", "minItems", "minProperties"):
        kind = keyword[3:]
        low, high = schema.get(f"min{kind}"), schema.get(f"max{kind}")
        if low and high is not None:
            return [(where, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]
        if keyword.startswith("max"):
            return [(where, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")]
        return [(where, "BASE_TYPE_MIN_LENGTH", f"Must be {limit} or more in length.")]
    if keyword in ("maximum", "exclusiveMaximum"):
        return [(where, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {limit}.")]
    if keyword in ("minimum", "exclusiveMinimum"):
        return [(where, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {limit}.")]
    if keyword == "x-type-union":
        return [union_type_error(where, [int(kind) if kind.isdigit() else kind for kind in limit])]
    if keyword in ("enum", "const"):
        choices = limit if keyword == "enum" else [limit]
        return [(where, "BASE_TYPE_CHOICES", f"Value must be one of {one_of(choices)}.")]
    if keyword == "type":
        return [(where, *_type_problem(limit, value, schema))]
    if keyword == "pattern":
        if schema.get("format") == "snowflake":
            return [(where, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')]
        return [(where, "STRING_TYPE_REGEX", "String value did not match validation regex.")]
    if keyword == "uniqueItems":
        return [(where, "LIST_ITEM_VALUE_DUPLICATE", "List items must be unique.")]
    if keyword in ("oneOf", "anyOf"):
        return [(where, "UNION_TYPE_CHOICES", "Value matches none of the allowed types.")]
    return [(where, "BASE_TYPE_INVALID", error.message)]


def _type_problem(expected: str | list[str], value: Any, schema: Mapping[str, Any]) -> tuple[str, str]:
    kinds = [expected] if isinstance(expected, str) else expected
    if value is None:
        return "BASE_TYPE_REQUIRED", "This field is required"
    if "integer" in kinds or "number" in kinds:
        kind = "snowflake" if schema.get("format") == "snowflake" else "int"
        return "NUMBER_TYPE_COERCE", f'Value "{value}" is not {kind}.'
    if "string" in kinds:
        return "STRING_TYPE_CONVERT", f'Could not interpret "{value}" as string.'
    if "boolean" in kinds:
        return "BOOLEAN_TYPE_CONVERT", "Must be either true or false."
    if "object" in kinds:
        return "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
    return "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"


def _dotted(where: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in where)
