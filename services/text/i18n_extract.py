"""Babel's extractor for Retouch: the `_()` templates, and the docstrings discord.py shows as command descriptions.

Named in `babel.cfg`; `make translations` runs it. A command's description is its docstring's first
paragraph on one line, as discord.py's `_shorten` makes it, so that the translator finds it by that text.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Collection, Iterator
from typing import IO, Any

from babel.messages.extract import extract_python

COMMAND_DECORATOR = "command"  # app_commands.command, and a group's .command


def command_description(docstring: str) -> str:
    return " ".join(docstring.split("\n\n", 1)[0].split())


def _is_command(decorator: ast.expr) -> bool:
    function = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(function, ast.Attribute) and function.attr == COMMAND_DECORATOR


def extract(
    fileobj: IO[bytes], keywords: Any, comment_tags: Collection[str], options: Any
) -> Iterator[tuple[Any, ...]]:
    """Babel's extractor protocol: (line, keyword, message, comments) for every message of one file."""
    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(map(_is_command, node.decorator_list)):
            docstring = ast.get_docstring(node)
            if docstring:
                yield node.body[0].lineno, None, command_description(docstring), ["command description"]
