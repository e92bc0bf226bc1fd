"""Extensions are loaded by `load_extension` only: nothing imports one, so no module of theirs exists twice.

discord.py executes an extension's module afresh; imported anywhere else as well, its module and classes
would exist twice (the reason `get_cog` by name was once needed). import-linter enforces it for `cogs/`
(a contract in pyproject.toml); these tests keep that contract complete and cover `bot.py`, which
import-linter cannot take as a root.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import bot

ROOT = Path(__file__).resolve().parents[2]


def test_the_contract_covers_every_cogs_module_and_forbids_every_extension():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [contract] = [c for c in contracts if c["name"].startswith("extensions are loaded by load_extension only")]
    modules = {f"cogs.{path.stem}" for path in (ROOT / "cogs").glob("*.py") if path.stem != "__init__"}
    assert set(contract["source_modules"]) == modules
    assert set(contract["forbidden_modules"]) == set(bot.EXTENSIONS)


def test_the_entry_point_imports_no_extension():
    tree = ast.parse((ROOT / "bot.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "cogs.runner" in imported  # the walk sees bot.py's own imports
    assert not imported & set(bot.EXTENSIONS)


def test_no_code_finds_a_cog_by_name():
    """A cog is reached through what its extension put on the bot while loaded, never `get_cog("Name")`."""
    sources = [ROOT / "bot.py", *(ROOT / "cogs").glob("*.py"), *(ROOT / "services").rglob("*.py")]
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "get_cog"
    ]
    assert calls == []
