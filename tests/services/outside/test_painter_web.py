"""The painter's routes over real HTTP on 127.0.0.1: the page, the picture, the checks before an edit."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import struct
from dataclasses import dataclass, field

import aiohttp
import pytest
from PIL import Image

from services.outside.painter_tokens import PainterClaim
from services.outside.painter_web import (
    CONTENT_SECURITY_POLICY,
    PainterAnswer,
    PainterDefaults,
    painter_link,
    public_path,
)
from services.outside.painter_words import page_locale
from tests.helpers import Clock, until
from tests.images import png_claiming
from tests.painter_fakes import GRANT, FakeBackend, painter_server, picture_png

WIDTH, HEIGHT = 320, 200


def painted(width: int, height: int, box: tuple[int, int, int, int] | None) -> bytes:
    """What the page sends: white where painted, black elsewhere."""
    image = Image.new("RGB", (width, height), (0, 0, 0))
    if box is not None:
        image.paste((255, 255, 255), box)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def form(mask: bytes | None, prompt: str | None = "a red door", count: str | None = "2") -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    if mask is not None:
        data.add_field("mask", mask, filename="mask.png", content_type="image/png")
    if prompt is not None:
        data.add_field("prompt", prompt)
    if count is not None:
        data.add_field("count", count)
    return data


def changed(mask_png: bytes) -> set[tuple[int, int]]:
    image = Image.open(io.BytesIO(mask_png))
    assert image.format == "PNG" and image.mode == "RGBA"
    alpha = image.getchannel("A")
    assert set(alpha.get_flattened_data()) <= {0, 255}
    return {(x, y) for y in range(image.height) for x in range(image.width) if alpha.getpixel((x, y)) == 0}


def box_pixels(left: int, top: int, right: int, bottom: int) -> set[tuple[int, int]]:
    return {(x, y) for y in range(top, bottom) for x in range(left, right)}


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(picture=picture_png(WIDTH, HEIGHT), defaults_=PainterDefaults(prompt="a cat", count=3))


@pytest.fixture
async def painter(tmp_path, backend, clock):
    async with painter_server(tmp_path, backend, clock) as running:
        yield running


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_the_page_prefills_the_prompt_under_a_strict_policy(painter, http, backend):
    backend.defaults_ = PainterDefaults(prompt='a cat </textarea><script>alert("x")</script>', count=3, max_count=4)
    token = painter.tokens.issue(GRANT)
    async with http.get(painter.url(token)) as response:
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        page = await response.text()
    assert 'maxlength="1000" required>' in page
    assert "a cat &lt;/textarea&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</textarea>" in page
    assert 'max="4" value="3"' in page
    # Relative links: the page works wherever a proxy puts it.
    assert f'src="{token}/picture"' in page and '<script src="static/painter.js" defer>' in page
    assert f'action="{token}"' in page
    assert "<style" not in page and " style=" not in page and "<script>" not in page.replace("&lt;script&gt;", "")
    assert ">Edit</button>" in page and 'name="prompt"' in page


async def test_the_picture_comes_through_the_bot(painter, http, backend):
    async with http.get(painter.url(painter.tokens.issue(GRANT), "/picture")) as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == backend.picture
        assert response.headers["Cache-Control"] == "private, max-age=900"


async def test_static_files_are_served_and_nothing_else(painter, http):
    for name, content_type in (("painter.js", "text/javascript"), ("painter.css", "text/css")):
        async with http.get(str(painter.server.make_url(f"/paint/static/{name}"))) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == f"{content_type}; charset=utf-8"
            assert response.headers["Cache-Control"] == "public, max-age=3600"
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert len(await response.read()) > 1000
    for name in ("painter.html", "..%2Fpainter_web.py", "nothing.js"):
        async with http.get(str(painter.server.make_url(f"/paint/static/{name}"))) as response:
            assert response.status == 404


@pytest.mark.parametrize("suffix", ["", "/picture"])
async def test_forged_expired_and_used_links_get_a_plain_error_page(painter, http, clock, suffix):
    token = painter.tokens.issue(GRANT)
    forged = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    async with http.get(painter.url(forged, suffix)) as response:
        assert response.status == 403
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "it was not made by this bot, or it was changed" in await response.text()
    async with http.get(painter.url("not-a-token", suffix)) as response:
        assert response.status == 403 and "not a painter link" in await response.text()
    await painter.tokens.consume(await painter.tokens.verify(token))
    async with http.get(painter.url(token, suffix)) as response:
        assert response.status == 410 and "already been used" in await response.text()
    clock.now += 15 * 60
    async with http.get(painter.url(painter.tokens.issue(GRANT), suffix)) as response:
        assert response.status == 200
    late = painter.tokens.issue(GRANT)
    clock.now += 15 * 60
    async with http.get(painter.url(late, suffix)) as response:
        assert response.status == 410 and "expired" in await response.text()


async def test_a_deleted_picture_is_said_plainly(painter, http, backend):
    backend.gone = True
    async with http.get(painter.url(painter.tokens.issue(GRANT))) as response:
        assert response.status == 410 and "was deleted" in await response.text()


async def test_a_submission_reaches_the_edit_as_the_upstream_mask(painter, http, backend):
    token = painter.tokens.issue(GRANT)
    async with http.post(painter.url(token), data=form(painted(WIDTH, HEIGHT, (10, 20, 110, 120)))) as response:
        assert response.status == 200
        assert await response.json() == {"status": "queued", "message": "Queued: you are first in line."}
    [submission] = backend.submissions
    assert (submission.prompt, submission.count) == ("a red door", 2)
    assert (submission.claim.member_id, submission.claim.channel_id, submission.claim.job_id) == (777, 222, 9)
    assert Image.open(io.BytesIO(submission.mask_png)).size == (WIDTH, HEIGHT)
    assert changed(submission.mask_png) == box_pixels(10, 20, 110, 120)
    # One submission per link.
    async with http.post(painter.url(token), data=form(painted(WIDTH, HEIGHT, (0, 0, 5, 5)))) as response:
        assert response.status == 410
        assert (await response.json())["status"] == "used"
    assert len(backend.submissions) == 1


async def test_a_refused_submission_leaves_the_link_usable(painter, http, backend):
    backend.answer = PainterAnswer("refused", "You have used your 10 pictures for today.")
    token = painter.tokens.issue(GRANT)
    mask = painted(WIDTH, HEIGHT, (0, 0, 50, 50))
    async with http.post(painter.url(token), data=form(mask)) as response:
        assert await response.json() == {"status": "refused", "message": "You have used your 10 pictures for today."}
    backend.answer = PainterAnswer("posted", "Posted in #art.")
    async with http.post(painter.url(token), data=form(mask)) as response:
        assert (await response.json())["status"] == "posted"
    assert len(backend.submissions) == 2


async def test_a_failing_edit_apologises_and_gives_the_link_back(painter, http, backend):
    backend.fail = RuntimeError("the queue fell over")
    token = painter.tokens.issue(GRANT)
    async with http.post(painter.url(token), data=form(painted(WIDTH, HEIGHT, (0, 0, 50, 50)))) as response:
        assert response.status == 500
        body = await response.json()
    assert body["status"] == "failed" and "Nothing was charged" in body["message"]
    assert "queue fell over" not in body["message"]
    await painter.tokens.verify(token)  # still usable


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)), prompt="   "), "prompt", "Write in `prompt`"),
        (
            form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)), prompt="x" * 1001),
            "prompt",
            "at most 1000 characters; it has 1001",
        ),
        (form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)), count="0"), "count", "from 1 to 10"),
        (form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)), count="11"), "count", "from 1 to 10"),
        (form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)), count="two"), "count", "from 1 to 10"),
        (form(painted(WIDTH, HEIGHT, None)), "mask", "the mask marks nothing"),
        (form(painted(WIDTH + 1, HEIGHT, (0, 0, 9, 9))), "mask", "(320x200); it is 321x200"),
        (form(painted(100, 100, (0, 0, 9, 9))), "mask", "it is 100x100"),
        (form(b"GIF89a not a png"), "mask", "it could not be read"),
        (form(None), "mask", "The form was incomplete"),
        (form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)), prompt=None), "prompt", "The form was incomplete"),
        ({"prompt": "urlencoded, not multipart"}, "form", "The form was incomplete"),
    ],
)
async def test_bad_input_is_named_and_costs_nothing(painter, http, backend, data, field, words):
    token = painter.tokens.issue(GRANT)
    async with http.post(painter.url(token), data=data) as response:
        assert response.status == 400
        body = await response.json()
    assert body["status"] == "invalid" and body["field"] == field and words in body["message"]
    assert backend.submissions == []
    await painter.tokens.verify(token)  # not used up


async def test_a_forged_link_cannot_submit(painter, http, backend):
    token = painter.tokens.issue(GRANT)
    forged = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    async with http.post(painter.url(forged), data=form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)))) as response:
        assert response.status == 403 and (await response.json())["status"] == "bad-signature"
    assert backend.submissions == []


async def test_a_reduced_mask_of_the_same_shape_is_scaled_to_the_picture(painter, http, backend):
    # A phone paints a big picture at a reduced size: half here, the left half painted.
    async with http.post(painter.url(painter.tokens.issue(GRANT)), data=form(painted(160, 100, (0, 0, 80, 100)))) as r:
        assert r.status == 200
    assert changed(backend.submissions[0].mask_png) == box_pixels(0, 0, 160, 200)


async def test_the_mask_follows_the_displayed_orientation(painter, http, backend):
    # Stored 200 wide and 320 high, turned a quarter by EXIF: shown (and masked) 320x200.
    stored = Image.new("RGB", (HEIGHT, WIDTH), (90, 90, 90))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif.tobytes())
    backend.picture = buffer.getvalue()
    token = painter.tokens.issue(GRANT)
    async with http.post(painter.url(token), data=form(painted(HEIGHT, WIDTH, (0, 0, 9, 9)))) as response:
        assert response.status == 400 and "(320x200); it is 200x320" in (await response.json())["message"]
    async with http.post(painter.url(token), data=form(painted(WIDTH, HEIGHT, (0, 0, 9, 9)))) as response:
        assert response.status == 200
    async with http.get(painter.url(painter.tokens.issue(GRANT), "/picture")) as response:
        assert response.content_type == "image/jpeg"


def test_the_link_is_built_on_the_public_address():
    assert painter_link("https://retouch.example.org/", "abc") == "https://retouch.example.org/paint/abc"
    # Only slashes are trimmed, whatever the address ends with.
    assert painter_link("https://example.org/BOX/", "abc") == "https://example.org/BOX/paint/abc"


def test_the_link_carries_the_members_language_and_nothing_else():
    assert painter_link("https://r.example", "abc", locale="de") == "https://r.example/paint/abc?lang=de"
    assert painter_link("https://r.example", "abc", locale="pt-BR") == "https://r.example/paint/abc?lang=pt-BR"
    assert painter_link("https://r.example", "abc", locale="de&x=<b>") == "https://r.example/paint/abc"


@pytest.mark.parametrize(
    ("public_url", "mount"),
    [
        ("https://example.org/retouch", "/retouch"),
        ("https://example.org/retouch/", "/retouch"),  # a trailing slash is not part of the prefix
        ("https://example.org/tools/retouch//?x=1#top", "/tools/retouch"),  # neither are the query and fragment
        ("https://example.org/BOX/", "/BOX"),  # only slashes are trimmed, whatever the path ends with
        ("https://example.org/", ""),
        ("https://example.org", ""),
        ("", ""),
        (None, ""),  # no PUBLIC_URL
    ],
)
def test_the_painter_is_mounted_under_the_path_of_the_public_address(public_url: str | None, mount: str) -> None:
    assert public_path(public_url) == mount


@pytest.mark.parametrize(
    ("asked", "browser", "served"),
    [("de", "en-US,en;q=0.9", "de"), (None, "de-AT,de;q=0.9", "de-AT"), ("<script>", "fr", "fr"), (None, "", None)],
)
def test_the_page_speaks_the_links_language_else_the_browsers(asked, browser, served):
    assert page_locale(asked, browser) == served


async def test_the_answer_to_a_submission_is_in_the_links_language(painter, http):
    token = painter.tokens.issue(GRANT)
    async with http.post(painter.url(token, "?lang=de"), data=form(b"not a png")) as response:
        assert response.status == 400
        assert (await response.json())["message"] == (
            "`mask` muss ein PNG in der Größe des Bildes sein (320x200); sie konnte nicht gelesen werden."
        )
    async with http.get(painter.url(token, "?lang=de")) as response:
        page = await response.text()
    assert 'action="' + token + '?lang=de"' in page
    assert '<html lang="de">' in page and "<h1>Mal den Bereich aus, der sich ändern soll</h1>" in page


def painted_levels(levels: dict[tuple[int, int, int, int], tuple[int, ...]]) -> bytes:
    """A painted mask with boxes of given colours (RGBA) on a transparent canvas."""
    image = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    for box, colour in levels.items():
        image.paste(colour, box)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_half_painted_counts_from_the_middle_grey_up_and_the_mask_is_black_elsewhere(painter, http, backend):
    mask = painted_levels(
        {
            (0, 0, 10, 10): (128, 128, 128, 255),  # half white: painted
            (20, 0, 30, 10): (127, 127, 127, 255),  # just under half: not
            (40, 0, 50, 10): (255, 255, 255, 255),
        }
    )
    async with http.post(painter.url(painter.tokens.issue(GRANT)), data=form(mask)) as response:
        assert response.status == 200
    upstream = Image.open(io.BytesIO(backend.submissions[0].mask_png))
    assert changed(backend.submissions[0].mask_png) == box_pixels(0, 0, 10, 10) | box_pixels(40, 0, 50, 10)
    assert {pixel[:3] for pixel in upstream.get_flattened_data()} == {(0, 0, 0)}  # black, its alpha says where


@pytest.mark.parametrize(
    ("field", "size", "status"),
    [("prompt", 16 * 1024 + 1, 400), ("count", 16 * 1024 + 1, 400), ("mask", 16 * 1024 + 1, 200)],
)
async def test_each_field_is_read_within_its_own_limit(painter, http, backend, field, size, status):
    mask, text = painted(WIDTH, HEIGHT, (0, 0, 9, 9)), {"prompt": "a red door", "count": "2"}
    if field == "mask":  # a PNG larger than a text field may be, still far under the mask's 16 MiB
        mask += b"\0" * (size - len(mask))
    else:
        text[field] = " " * (size - 1) + text[field][:1]
    data = form(mask, **text)
    async with http.post(painter.url(painter.tokens.issue(GRANT)), data=data) as response:
        assert response.status == status
        body = await response.json()
    if status == 400:
        assert (body["field"], body["message"]) == (field, "The form was incomplete; reload the page and try again.")


async def test_a_mask_larger_than_the_page_sends_is_refused_from_its_header(tmp_path, http, clock):
    # The picture is 8000x5000 (only its header is read); the page sends its mask at 2048x1280 at most.
    photo = io.BytesIO()
    Image.new("L", (800, 500)).save(photo, format="JPEG")
    backend = FakeBackend(
        picture=photo.getvalue().replace(struct.pack(">HH", 500, 800), struct.pack(">HH", 5000, 8000), 1)
    )
    async with painter_server(tmp_path, backend, clock) as painter:
        token = painter.tokens.issue(GRANT)
        for mask in (png_claiming(8000, 5000), png_claiming(4096, 2560), png_claiming(2049, 1281)):
            async with http.post(painter.url(token), data=form(mask)) as response:
                assert response.status == 400
                body = await response.json()
            assert body["field"] == "mask"
            assert body["message"].startswith("`mask` must be a PNG of the picture's size (8000x5000); it is ")
            assert body["message"].endswith(", more than the page sends (4 megapixels at most).")
        painted_mask = painted(2048, 1280, (0, 0, 1024, 1280))
        async with http.post(painter.url(token), data=form(painted_mask)) as response:
            assert response.status == 200
    mask = Image.open(io.BytesIO(backend.submissions[0].mask_png))
    assert mask.size == (8000, 5000) and mask.mode == "RGBA"
    alpha = mask.getchannel("A")
    assert (alpha.getpixel((0, 0)), alpha.getpixel((3999, 4999)), alpha.getpixel((4000, 0))) == (0, 0, 255)


async def test_a_link_has_one_submission_in_flight_and_a_member_two(painter, http, backend):
    backend.hold = asyncio.Event()
    other = dataclasses.replace(GRANT, member_id=GRANT.member_id + 1)
    first, second, third, elsewhere = (painter.tokens.issue(grant) for grant in (GRANT, GRANT, GRANT, other))
    mask = painted(WIDTH, HEIGHT, (0, 0, 9, 9))
    held = asyncio.ensure_future(http.post(painter.url(first), data=form(mask)))
    await until(lambda: backend.fetches == 1)  # its picture is being fetched, the link not yet used
    # Bounded: without the limit this one would wait behind the first.
    async with await asyncio.wait_for(http.post(painter.url(first), data=form(mask)), 10) as response:
        assert response.status == 429
        assert await response.json() == {
            "status": "busy",
            "message": "Your last picture is still being sent; wait for its answer before sending another.",
        }
    also = asyncio.ensure_future(http.post(painter.url(second), data=form(mask)))  # the member's second: admitted
    await until(lambda: backend.fetches == 2)
    async with await asyncio.wait_for(http.post(painter.url(third), data=form(mask)), 10) as response:  # a third: not
        assert response.status == 429
    theirs = asyncio.ensure_future(http.post(painter.url(elsewhere), data=form(mask)))  # another member: admitted
    await until(lambda: backend.fetches == 3)
    backend.hold.set()
    for done in (held, also, theirs):
        async with await done as response:
            assert response.status == 200
    async with http.post(painter.url(third), data=form(mask)) as response:  # room again
        assert response.status == 200
    assert len(backend.submissions) == 4


@dataclass
class RecordingBackend(FakeBackend):
    """A FakeBackend that records the claims it is asked about, and raises `broken` when given."""

    broken: Exception | None = None
    claims: list[PainterClaim] = field(default_factory=list)

    async def fetch_picture(self, claim: PainterClaim) -> bytes:
        self.claims.append(claim)
        if self.broken is not None:
            raise self.broken
        return await super().fetch_picture(claim)

    async def defaults(self, claim: PainterClaim) -> PainterDefaults:
        self.claims.append(claim)
        if self.broken is not None:
            raise self.broken
        return await super().defaults(claim)


@pytest.fixture
async def recorded(tmp_path, clock):
    async with painter_server(tmp_path, RecordingBackend(picture=picture_png(WIDTH, HEIGHT)), clock) as running:
        yield running


# The error page's stylesheet, relative to the address that failed: the page's, or its picture's one level down.
PLACES = [("", "static"), ("/picture", "../static")]


async def error_page(http: aiohttp.ClientSession, url: str, status: int, static: str) -> str:
    """The error page at `url`, checked to be a plain HTML page with `status` under the page's policy."""
    async with http.get(url) as response:
        assert response.status == status
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["Cache-Control"] == "no-store"
        page = await response.text()
    assert f'<link rel="stylesheet" href="{static}/painter.css">' in page
    return page


@pytest.mark.parametrize(("suffix", "static"), PLACES)
async def test_an_error_page_speaks_the_links_language(painter, http, suffix, static):
    token = painter.tokens.issue(GRANT)
    await painter.tokens.consume(await painter.tokens.verify(token))
    page = await error_page(http, painter.url(token, suffix + "?lang=de"), 410, static)
    assert '<html lang="de">' in page
    assert "<h1>Dieser Link kann nicht genutzt werden</h1>" in page
    assert '<p id="error-message">Dieser Link wurde schon benutzt; öffne in Discord einen neuen.</p>' in page


async def test_a_deleted_picture_gets_the_error_page_beside_the_picture(painter, http, backend):
    backend.gone = True
    page = await error_page(http, painter.url(painter.tokens.issue(GRANT), "/picture"), 410, "../static")
    assert '<p id="error-message">The message with this picture was deleted.</p>' in page


async def test_a_picture_that_is_not_a_still_picture_makes_the_link_unusable(painter, http, backend):
    backend.picture = b"GIF89a, and then nothing a picture is made of"
    page = await error_page(http, painter.url(painter.tokens.issue(GRANT), "/picture"), 410, "../static")
    assert '<p id="error-message">This picture can no longer be edited from this link.</p>' in page


@pytest.mark.parametrize(("suffix", "static"), PLACES)
async def test_a_failure_behind_the_page_or_the_picture_apologises(recorded, http, suffix, static):
    recorded.backend.broken = RuntimeError("the bot fell over")
    page = await error_page(http, recorded.url(recorded.tokens.issue(GRANT), suffix), 500, static)
    assert (
        '<p id="error-message">Something went wrong inside Retouch; it has been logged. Nothing was charged.</p>'
        in page
    )
    assert "fell over" not in page


async def test_the_page_and_the_picture_ask_the_bot_about_the_links_own_claim(recorded, http):
    for suffix in ("", "/picture"):
        async with http.get(recorded.url(recorded.tokens.issue(GRANT), suffix)) as response:
            assert response.status == 200
    assert [(claim.member_id, claim.channel_id, claim.job_id) for claim in recorded.backend.claims] == [
        (777, 222, 9)
    ] * 2
