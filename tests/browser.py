"""Headless Chromium (Debian's package) driven by Playwright, for the painter's browser tests.

Without Chromium those tests skip, saying why, except on CI (`CI` set), where they fail. Screenshots are
saved under $RETOUCH_TEST_ARTIFACTS (default build/test-artifacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

# RETOUCH_TEST_CHROMIUM: another Chromium build (e.g. a distribution's `chromium-browser`).
CHROMIUM = os.environ.get("RETOUCH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(
    os.environ.get("RETOUCH_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "build/test-artifacts"
)
# Records every CSP violation the page reports, before any of the page's own code runs.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def need_browser() -> None:
    in_ci = "CI" in os.environ
    missing = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing = "Playwright for Python is not installed (pip install -e '.[test]')"
    if missing is None and not os.access(CHROMIUM, os.X_OK):
        missing = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if missing is None:
        return
    if in_ci:
        pytest.fail(f"browser tests must run on CI: {missing}")
    pytest.skip(missing)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    need_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class Watched:
    """A page with its console messages and CSP violations collected."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    async def violations(self) -> list[str]:
        return await self.page.evaluate("window.__cspViolations")

    def csp_console(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]


async def open_page(context: Any, url: str) -> tuple[Watched, Any]:
    page = await context.new_page()
    await page.add_init_script(WATCH_CSP)
    watched = Watched(page)
    response = await page.goto(url)
    return watched, response


async def drag(page: Any, points: list[tuple[float, float]]) -> None:
    await page.mouse.move(*points[0])
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*point, steps=8)
    await page.mouse.up()


async def submit(watched: Watched, prompt: str, count: int) -> str:
    page = watched.page
    await page.locator("textarea[name=prompt]").fill(prompt)
    await page.locator("#count").fill(str(count))
    await page.get_by_role("button", name="Edit", exact=True).click()
    await page.wait_for_selector("body[data-answer]")
    return await page.locator("#status").inner_text()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
