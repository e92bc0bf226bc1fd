"""What the README tells a newcomer, held to the code: examples, defaults, limits, the licence."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from services.domain.job_queue import MAX_PER_MEMBER
from services.outside.config import load_config
from services.storage.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TOKENS = {"DISCORD_TOKEN": "x", "IONOS_API_TOKEN": "y"}
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def section(title: str) -> str:
    """A `## title` section of the README, up to the next one of its level."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_check_example_shows_the_schema_version_check_prints():
    assert re.findall(r"migrated \(schema version (\d+)\)", README) == [str(MIGRATIONS[-1].version)]


def test_the_edit_models_default_is_the_default_models_value():
    assert load_config({**TOKENS, "DEFAULT_MODEL": "acme/painter"}).edit_models == ("acme/painter",)
    assert "| `EDIT_MODELS` | `DEFAULT_MODEL`'s value |" in README


def test_the_queue_limits_per_member_are_those_the_queue_applies():
    words = f"at most {NUMBERS[MAX_PER_MEMBER]} places per member, one in flight and {NUMBERS[MAX_PER_MEMBER - 1]}"
    assert words in " ".join(README.split())
    assert f"may wait in two lines ({MAX_PER_MEMBER} places" in " ".join(README.split())


def test_the_performance_section_reads_as_documentation_for_users():
    text = " ".join(section("Performance").split()).lower()
    for word in ("issue", "merge", "the bench's", "not made here", "touched here", "this stop", "final code"):
        assert word not in text, word


def test_the_project_is_mit_licensed_and_says_so():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    assert section("License").startswith("\nMIT (see `LICENSE`).")
    # The image's wheel is built from what the Dockerfile copies: the licence goes with it.
    assert re.search(r"^COPY pyproject\.toml .*\bLICENSE\b", (ROOT / "Dockerfile").read_text(), re.MULTILINE)


def test_the_readme_says_make_check_where_no_venv_is_active():
    setup = section("Set-up: two commands")
    assert "`make check`" in setup and "python bot.py check" not in setup
