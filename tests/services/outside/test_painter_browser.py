"""The mask painter in a real browser: headless Chromium (Debian's package) driven by Playwright.

The painter's routes run on an aiohttp server at 127.0.0.1 with a backend that records what it got; the
browser paints with real pointer events (mouse, touch, pen), submits, and the test decodes the mask the
server handed on (tests/browser.py says how Chromium is found, and where screenshots go).
"""

from __future__ import annotations

import io
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from services.outside.painter_web import CONTENT_SECURITY_POLICY, PainterDefaults, painter_link
from tests.browser import Watched, drag, open_page, screenshot_path, submit
from tests.helpers import Clock
from tests.painter_fakes import GRANT, FakeBackend, Painter, painter_server, picture_png

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 640, 400


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(picture=picture_png(WIDTH, HEIGHT), defaults_=PainterDefaults(prompt="a cat on the sofa"))


@pytest.fixture
async def painter(tmp_path, backend, clock) -> AsyncIterator[Painter]:
    async with painter_server(tmp_path, backend, clock) as running:
        yield running


async def ready(watched: Watched) -> Callable[[float, float], tuple[float, float]]:
    """Wait for the picture and its layer; returns a map from picture pixels to page coordinates."""
    page = watched.page
    await page.wait_for_selector("body[data-ready=true]")
    box = await page.locator("#picture").bounding_box()
    assert box is not None

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"] / WIDTH, box["y"] + y * box["height"] / HEIGHT

    return at


async def set_brush(page: Any, css_pixels: int) -> float:
    """Set the size slider; returns the brush's diameter in picture pixels."""
    await page.locator("#brush-size").evaluate(
        "(slider, value) => { slider.value = value; slider.dispatchEvent(new Event('input')); }", str(css_pixels)
    )
    shown = (await page.locator("#picture").bounding_box())["width"]
    return css_pixels * WIDTH / shown


def changed(mask_png: bytes) -> Image.Image:
    """An "L" image: 255 where the upstream will edit (alpha 0), 0 elsewhere."""
    mask = Image.open(io.BytesIO(mask_png))
    assert mask.format == "PNG" and mask.mode == "RGBA" and mask.size == (WIDTH, HEIGHT)
    return mask.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)


async def assert_no_csp_violations(watched: Watched) -> None:
    assert await watched.violations() == []
    assert watched.csp_console() == []
    # The watch itself works: an inline script is refused and reported.
    await watched.page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.inline = 1'; "
        "document.body.append(s); }"
    )
    await watched.page.wait_for_function("window.__cspViolations.length > 0")
    assert any(v.startswith("script-src") for v in await watched.violations())
    assert await watched.page.evaluate("window.inline") is None


async def test_rectangle_and_brush_on_a_desktop(browser, painter, backend):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    token = painter.tokens.issue(GRANT)
    watched, response = await open_page(context, painter.url(token))
    assert response.status == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page = watched.page
    at = await ready(watched)
    assert await page.locator("textarea[name=prompt]").input_value() == "a cat on the sofa"

    # Rectangle over the left half.
    await page.get_by_role("button", name="Rectangle").click()
    await drag(page, [at(1, 1), at(320, 399)])
    # A brush stroke across the right half.
    await page.get_by_role("button", name="Brush").click()
    diameter = await set_brush(page, 24)
    await drag(page, [at(420, 200), at(600, 200)])
    await page.screenshot(path=screenshot_path("painter-desktop.png"))

    prompt = "Ein rotes Tor mit Efeu — «bitte» & <nicht> 🌿"
    status = await submit(watched, prompt, 3)
    assert status == "Queued: you are first in line."
    assert await page.get_by_role("button", name="Edit", exact=True).is_disabled()
    [submission] = backend.submissions
    assert (submission.prompt, submission.count) == (prompt, 3)
    assert submission.claim.member_id == GRANT.member_id

    mask = changed(submission.mask_png)
    rect = mask.crop((0, 0, 321, HEIGHT))
    covered = sum(1 for value in rect.crop((1, 1, 320, 399)).get_flattened_data() if value) / (319 * 398)
    assert covered >= 0.9
    radius = diameter / 2
    for x in range(WIDTH):
        for y in range(HEIGHT):
            # Outside the rectangle and farther than a pixel from the stroke: untouched.
            in_rect = x <= 321 and y <= 400
            dx = max(420 - x, 0, x - 600)
            near_stroke = math.hypot(dx, y - 200) <= radius + 1.5
            if not in_rect and not near_stroke:
                assert mask.getpixel((x, y)) == 0, (x, y)
    for x in range(420, 601, 10):
        for y in (200, round(200 - radius + 2), round(200 + radius - 2)):
            assert mask.getpixel((x, y)) == 255, (x, y)
    await assert_no_csp_violations(watched)
    await context.close()


async def test_brush_with_touch_on_a_phone(browser, painter, backend):
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True
    )
    watched, _ = await open_page(context, painter.url(painter.tokens.issue(GRANT)))
    page = watched.page
    at = await ready(watched)
    # The picture and the tools fit the phone's width: nothing to scroll sideways.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = await page.locator("#picture").bounding_box()
    assert box["width"] <= 390
    assert await page.get_by_role("button", name="Edit", exact=True).is_visible()

    diameter = await set_brush(page, 20)
    session = await context.new_cdp_session(page)
    points = [at(100 + 20 * step, 300 - 10 * step) for step in range(21)]
    await session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [_touch(points[0])]})
    for point in points[1:]:
        await session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [_touch(point)]})
    await session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await page.screenshot(path=screenshot_path("painter-phone.png"), full_page=True)

    assert await submit(watched, "a kite", 1) == "Queued: you are first in line."
    [submission] = backend.submissions
    mask = changed(submission.mask_png)
    # Along the diagonal from (100, 300) to (500, 100): painted; well away from it: not.
    for step in range(0, 21, 2):
        assert mask.getpixel((100 + 20 * step, 300 - 10 * step)) == 255, step
    assert mask.getpixel((100, 100)) == 0 and mask.getpixel((600, 380)) == 0
    assert sum(1 for value in mask.get_flattened_data() if value) < 450 * (diameter + 4)
    await assert_no_csp_violations(watched)
    await context.close()


def _touch(point: tuple[float, float]) -> dict[str, float]:
    return {"x": point[0], "y": point[1], "radiusX": 2, "radiusY": 2, "force": 1, "id": 1}


async def test_lasso_with_a_pen_then_eraser_invert_undo_and_clear(browser, painter, backend):
    context = await browser.new_context(viewport={"width": 1000, "height": 900})
    watched, _ = await open_page(context, painter.url(painter.tokens.issue(GRANT)))
    page = watched.page
    at = await ready(watched)
    session = await context.new_cdp_session(page)

    async def pen(kind: str, point: tuple[float, float]) -> None:
        event = {"type": kind, "x": point[0], "y": point[1], "pointerType": "pen", "button": "left"}
        event["buttons"] = 0 if kind == "mouseReleased" else 1
        if kind != "mouseMoved":
            event["clickCount"] = 1
        await session.send("Input.dispatchMouseEvent", event)

    # A triangle with the lasso, drawn with a pen.
    await page.get_by_role("button", name="Lasso").click()
    corners = [(100, 50), (500, 50), (300, 350)]
    await pen("mousePressed", at(*corners[0]))
    for start, end in zip(corners, corners[1:] + corners[:1], strict=True):
        for step in range(1, 11):
            await pen(
                "mouseMoved", at(start[0] + (end[0] - start[0]) * step / 10, start[1] + (end[1] - start[1]) * step / 10)
            )
    await pen("mouseReleased", at(*corners[0]))
    # The eraser takes a band out across it.
    await page.get_by_role("button", name="Eraser").click()
    await set_brush(page, 20)
    await drag(page, [at(50, 120), at(560, 120)])
    # Invert, then undo it; clear, then undo that: back to the triangle without the band.
    await page.get_by_role("button", name="Invert").click()
    await page.get_by_role("button", name="Undo").click()
    await page.get_by_role("button", name="Clear").click()
    await page.get_by_role("button", name="Undo").click()

    assert await submit(watched, "stained glass", 2) == "Queued: you are first in line."
    mask = changed(backend.submissions[0].mask_png)
    assert mask.getpixel((300, 60)) == 255 and mask.getpixel((300, 250)) == 255  # inside the triangle
    assert mask.getpixel((300, 120)) == 0  # erased
    assert mask.getpixel((110, 300)) == 0 and mask.getpixel((600, 200)) == 0  # outside it
    await assert_no_csp_violations(watched)
    await context.close()


async def test_invert_changes_everything_unpainted(browser, painter, backend):
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    watched, _ = await open_page(context, painter.url(painter.tokens.issue(GRANT)))
    page = watched.page
    at = await ready(watched)
    await page.get_by_role("button", name="Rectangle").click()
    await drag(page, [at(0.5, 0.5), at(320, 399.5)])
    await page.get_by_role("button", name="Invert").click()
    await submit(watched, "a window", 1)
    mask = changed(backend.submissions[0].mask_png)
    assert mask.getpixel((100, 200)) == 0 and mask.getpixel((500, 200)) == 255
    await context.close()


async def test_used_expired_and_forged_links_are_refused(browser, painter, backend, clock):
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    token = painter.tokens.issue(GRANT)
    watched, _ = await open_page(context, painter.url(token))
    at = await ready(watched)
    await drag(watched.page, [at(100, 100), at(200, 100)])
    await submit(watched, "a hat", 1)

    # The same link again: used.
    watched, response = await open_page(context, painter.url(token))
    assert response.status == 410
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "already been used" in await watched.page.locator("#error-message").inner_text()
    assert "Nothing was charged" in await watched.page.inner_text("main")
    assert await watched.violations() == []

    # A page opened in time but submitted after the link expired: refused, nothing sent on.
    late = painter.tokens.issue(GRANT)
    watched, _ = await open_page(context, painter.url(late))
    at = await ready(watched)
    await drag(watched.page, [at(100, 100), at(200, 100)])
    clock.now += 15 * 60
    assert "expired" in await submit(watched, "a scarf", 1)
    assert len(backend.submissions) == 1

    watched, response = await open_page(context, painter.url(late))
    assert response.status == 410 and "expired" in await watched.page.locator("#error-message").inner_text()
    await watched.page.screenshot(path=screenshot_path("painter-expired.png"))

    forged = painter.tokens.issue(GRANT)
    forged = forged[:20] + ("A" if forged[20] != "A" else "B") + forged[21:]
    watched, response = await open_page(context, painter.url(forged))
    assert response.status == 403
    assert "not made by this bot" in await watched.page.locator("#error-message").inner_text()
    await context.close()


@asynccontextmanager
async def proxy(target: str, path: str) -> AsyncIterator[str]:
    """A reverse proxy at 127.0.0.1 publishing `target` (a base URL) at `path`; yields its public base URL."""
    hop_by_hop = {"content-length", "transfer-encoding", "content-encoding", "connection", "date", "server"}

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept-language")}
        async with session.request(
            request.method, target + request.match_info["tail"], headers=headers, data=await request.read()
        ) as answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in hop_by_hop}
            return web.Response(status=answer.status, body=await answer.read(), headers=kept)

    app = web.Application()
    app.router.add_route("*", f"{path}/{{tail:.*}}", forward)
    server = TestServer(app, host="127.0.0.1")
    async with aiohttp.ClientSession() as session:
        await server.start_server()
        try:
            yield str(server.make_url(path))
        finally:
            await server.close()


@pytest.mark.parametrize("strips", [True, False], ids=["proxy-strips-the-path", "proxy-keeps-the-path"])
async def test_the_painter_works_behind_a_proxy_at_a_sub_path(tmp_path, browser, backend, clock, strips):
    async with painter_server(tmp_path, backend, clock, mount="/tools/retouch") as painter:
        origin = str(painter.server.make_url("/" if strips else "/tools/retouch/"))
        async with proxy(origin, "/tools/retouch") as public:
            link = painter_link(public, painter.tokens.issue(GRANT))
            assert link.startswith(public + "/paint/")
            context = await browser.new_context(viewport={"width": 1000, "height": 800})
            watched, response = await open_page(context, link)
            assert response.status == 200
            at = await ready(watched)  # the script and the picture came through the proxy
            await drag(watched.page, [at(100, 100), at(300, 100)])
            assert await submit(watched, "a door", 1) == "Queued: you are first in line."
            await context.close()
    assert [s.prompt for s in backend.submissions] == ["a door"]
