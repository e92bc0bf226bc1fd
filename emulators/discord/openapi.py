"""Conformance of recorded REST calls with Discord's OpenAPI document (``openapi.json`` beside this file).

The document is Discord's own (https://github.com/discord/discord-api-spec, MIT, see
``LICENSE-openapi``).  A missing document is an error, never a silent pass.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .protocol import RestCall

OPENAPI_PATH = Path(__file__).resolve().with_name("openapi.json")

# Real Discord endpoints the bot may call that the published OpenAPI document does not describe.
SPEC_GAPS = {("POST", "/attachments/refresh-urls")}
# Request keys the OpenAPI schemas lack although Discord accepts them, by schema: ``nsfw`` is
# documented for commands, and discord.py sends ``tts`` with every message edit (Discord ignores it).
SPEC_EXTRA_KEYS = {
    "ApplicationCommandUpdateRequest": {"nsfw"},
    "IncomingWebhookUpdateRequestPartial": {"tts"},
    "MessageEditRequestPartial": {"tts"},
}


def openapi_violations(calls: Iterable[RestCall], spec_path: Path = OPENAPI_PATH) -> list[str]:
    """Checks each call against Discord's OpenAPI document: the path template and method exist,
    query parameters are declared, and JSON body keys are known to the request schema, with their
    values' types, lengths, counts, enums, ranges and required keys (two levels deep).  Raises
    FileNotFoundError when the document is missing."""
    if not spec_path.is_file():
        raise FileNotFoundError(f"Discord's OpenAPI document is missing: {spec_path}")
    spec = _load_spec(str(spec_path))
    violations = []
    for call in calls:
        if (call.method, call.path) in SPEC_GAPS:
            continue
        template = _match_template(spec, call.path)
        where = f"{call.method} {call.path}"
        if template is None:
            violations.append(f"{where}: no such path in the OpenAPI document")
            continue
        item = spec["paths"][template]
        operation = item.get(call.method.lower())
        if operation is None:
            violations.append(f"{where}: method not allowed on {template}")
            continue
        known_query = {
            p["name"] for p in [*item.get("parameters", []), *operation.get("parameters", [])] if p.get("in") == "query"
        }
        violations += [f"{where}: unknown query parameter {key!r}" for key in call.query if key not in known_query]
        content = (operation.get("requestBody") or {}).get("content", {})
        schema = (content.get("application/json") or content.get("multipart/form-data") or {}).get("schema")
        if call.json is not None and schema is not None:
            violations += [
                f"{where}: {problem}" for problem in _schema_key_problems(spec, schema, call.json, "body", 2)
            ]
    return violations


@functools.cache
def _load_spec(path: str) -> dict:
    return json.loads(Path(path).read_text())


@functools.cache
def _spec_templates(path_keys: tuple[str, ...]) -> list[tuple[int, str, re.Pattern[str]]]:
    compiled = []
    for template in path_keys:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        literal_segments = sum(1 for segment in template.split("/") if segment and "{" not in segment)
        compiled.append((literal_segments, template, re.compile(pattern + "$")))
    return sorted(compiled, key=lambda entry: -entry[0])


def _match_template(spec: dict, path: str) -> str | None:
    for _, template, pattern in _spec_templates(tuple(spec["paths"])):
        if pattern.match(path):
            return template
    return None


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _schema_properties(spec: dict, schema: dict) -> dict[str, list[dict]] | None:
    """Every property an object schema (incl. its anyOf/oneOf/allOf branches) allows, each with the
    schemas it may have, or None when the schema does not restrict keys."""
    extra = SPEC_EXTRA_KEYS.get(schema.get("$ref", "").rsplit("/", 1)[-1], set())
    schema = _resolve(spec, schema)
    properties: dict[str, list[dict]] = {key: [value] for key, value in (schema.get("properties") or {}).items()}
    properties.update({key: [] for key in extra})
    restricted = "properties" in schema and not schema.get("additionalProperties")
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            branch_properties = _schema_properties(spec, branch)
            if branch_properties is None:
                if _resolve(spec, branch).get("type") not in ("null", "array"):
                    return None
                continue
            restricted = True
            for name, schemas in branch_properties.items():
                properties.setdefault(name, []).extend(schemas)
    return properties if restricted else None


def _schema_items(spec: dict, schema: dict) -> dict | None:
    schema = _resolve(spec, schema)
    if "items" in schema:
        return schema["items"]
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, []):
            items = _schema_items(spec, branch)
            if items is not None:
                return items
    return None


def _schema_key_problems(spec: dict, schema: dict, value: Any, where: str, depth: int) -> list[str]:
    """Keys of ``value`` that ``schema`` does not know, down to ``depth`` object levels."""
    if depth <= 0:
        return []
    if isinstance(value, list):
        items = _schema_items(spec, schema)
        if items is None:
            return []
        return [
            problem
            for index, item in enumerate(value)
            for problem in _schema_key_problems(spec, items, item, f"{where}[{index}]", depth)
        ]
    if not isinstance(value, dict):
        return []
    properties = _schema_properties(spec, schema)
    if properties is None:
        return []
    problems = [f"{where}.{key} is not in the request schema" for key in value if key not in properties]
    for key, item in value.items():
        if properties.get(key):
            problems += [f"{where}.{key} {p}" for p in _constraint_problems(spec, properties[key], item)]
        if properties.get(key) and isinstance(item, (dict, list)):
            union = {"anyOf": properties[key]}
            problems += _schema_key_problems(spec, union, item, f"{where}.{key}", depth - 1)
    return problems


def _leaves(spec: dict, schemas: list[dict]) -> list[dict]:
    """The concrete schemas of a union (``anyOf``/``oneOf`` flattened, references resolved)."""
    found: list[dict] = []
    for schema in schemas:
        resolved = _resolve(spec, schema)
        branches = resolved.get("anyOf") or resolved.get("oneOf")
        found += _leaves(spec, branches) if branches else [resolved]
    return found


def _constraint_problems(spec: dict, schemas: list[dict], value: Any) -> list[str]:
    """What no branch of the property's schemas accepts about ``value``: string lengths, array
    counts, enums and integer ranges (an empty list when some branch accepts it)."""
    problems: list[str] = []
    for schema in _leaves(spec, schemas):
        problem = _violates(schema, value)
        if problem is None:
            return []
        problems.append(problem)
    return problems[:1]


def _violates(schema: dict, value: Any) -> str | None:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if value is None:
        return None if not kinds or "null" in kinds else "must not be null"
    if isinstance(value, bool):
        return None if not kinds or "boolean" in kinds else f"has the wrong type (schema: {kinds})"
    if isinstance(value, str):
        if kinds and "string" not in kinds:
            return f"has the wrong type (schema: {kinds})"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"is longer than {schema['maxLength']}"
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"is shorter than {schema['minLength']}"
        if "enum" in schema and value not in schema["enum"]:
            return f"is not one of {schema['enum']}"
        return None
    if isinstance(value, int) and schema.get("format") in ("snowflake", "int64"):
        return None  # Discord takes snowflakes as numbers too (discord.py sends upload ids that way)
    if isinstance(value, int | float):
        if kinds and not {"integer", "number"} & set(kinds):
            return f"has the wrong type (schema: {kinds})"
        if "enum" in schema and value not in schema["enum"]:
            return f"is not one of {schema['enum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"is above {schema['maximum']}"
        if "minimum" in schema and value < schema["minimum"]:
            return f"is below {schema['minimum']}"
        return None
    if isinstance(value, list):
        if kinds and "array" not in kinds:
            return f"has the wrong type (schema: {kinds})"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"has more than {schema['maxItems']} items"
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"has fewer than {schema['minItems']} items"
        return None
    if isinstance(value, dict):
        if kinds and "object" not in kinds:
            return f"has the wrong type (schema: {kinds})"
        missing = [key for key in schema.get("required", []) if key not in value]
        return f"lacks required {missing}" if missing else None
    return None
