"""Tests for services.imaging.images: validation, sizes, masks, delivery packing, and off-loop work."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import sys
import zlib
from types import FrameType
from typing import Any

import pytest
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from services.imaging import images
from services.imaging.images import (
    MAX_CONCURRENT_DECODES,
    MAX_SIDE,
    MIN_SIDE,
    ImageInfo,
    auto_size,
    content_type_for,
    extension_for,
    inspect_image,
    make_thumbnail,
    parse_size,
    prepare_mask,
    screening_data_url,
    to_data_url,
    upright_picture,
)
from services.text.refusal import Refusal
from tests.images import noise_png as noisy

KiB = 1024
MiB = 1024 * KiB


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode_data_url(url: str) -> Image.Image:
    header, payload = url.split(",", 1)
    assert header == "data:image/png;base64"
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return image


@pytest.fixture(scope="module")
def noise_png() -> bytes:
    return noisy()


# --- inspect_image ----------------------------------------------------------------------------


async def test_still_png_is_accepted() -> None:
    info = await inspect_image(encode(Image.new("RGB", (320, 200), "red")))
    assert info == ImageInfo(width=320, height=200, format="PNG")


async def test_single_frame_gif_is_accepted() -> None:
    info = await inspect_image(encode(Image.new("P", (40, 30)), "GIF"))
    assert info == ImageInfo(40, 30, "GIF")


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
async def test_animated_picture_is_refused(fmt: str) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(Refusal) as caught:
        await inspect_image(data)
    assert caught.value.field == "image"
    assert "animated" in str(caught.value)
    assert str(caught.value).startswith("`image` must be a still picture")


async def test_phone_jpeg_with_preview_counts_as_still_jpeg() -> None:
    # Pillow calls a JPEG with an embedded second image "MPO" and reports it as multi-frame.
    main, preview = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (16, 12), "red")
    data = encode(main, "MPO", save_all=True, append_images=[preview])
    assert await inspect_image(data) == ImageInfo(64, 48, "JPEG")


async def test_text_file_is_refused_naming_the_field() -> None:
    with pytest.raises(Refusal) as caught:
        await inspect_image(b"hello, this is not a picture\n", field="mask")
    assert caught.value.field == "mask"
    assert str(caught.value) == (
        "`mask` must be a still picture (PNG, JPEG, WebP or GIF without animation); this file could not be read as one."
    )


async def test_empty_file_is_refused() -> None:
    with pytest.raises(Refusal):
        await inspect_image(b"")


async def test_truncated_png_is_refused(noise_png: bytes) -> None:
    with pytest.raises(Refusal) as caught:
        await inspect_image(noise_png[: len(noise_png) // 2])
    assert "could not be read" in str(caught.value)


async def test_format_outside_the_allowed_list_is_refused() -> None:
    with pytest.raises(Refusal):
        await inspect_image(encode(Image.new("RGB", (8, 8)), "BMP"))


async def test_more_than_40_megapixels_is_refused_with_the_size() -> None:
    data = encode(Image.new("1", (8000, 6000)))  # 48 MP, below Pillow's own bomb guard
    with pytest.raises(Refusal) as caught:
        await inspect_image(data)
    assert str(caught.value) == (
        "`image` is 8000x6000 (48 megapixels); the limit is 40 megapixels; send a smaller picture."
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width`x`height` but carries almost no pixels: a classic bomb shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(16))) + chunk(b"IEND", b"")
    )


async def test_decompression_bomb_is_refused() -> None:
    # 200 MP: Pillow itself raises DecompressionBombError while opening.
    with pytest.raises(Refusal) as caught:
        await inspect_image(png_header_only(20000, 10000))
    assert caught.value.field == "image"
    assert "40 megapixels" in str(caught.value)


# --- parse_size / auto_size -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auto", None),
        ("  AUTO ", None),
        ("1024x1024", (1024, 1024)),
        (" 512X768 ", (512, 768)),
        ("64x2048", (64, 2048)),
    ],
)
def test_parse_size_accepts(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["1000x1000", "4096x4096", "abc", "0x0", "48x48", "1024", ""])
def test_parse_size_refuses_naming_size_and_range(text: str) -> None:
    with pytest.raises(Refusal) as caught:
        parse_size(text)
    message = str(caught.value)
    assert message.startswith(
        "`size` must be `auto` or WIDTHxHEIGHT with both sides multiples of 16 between 64 and "
        "2048 (e.g. 1024x1024); got `"
    )
    assert message.endswith(f"`{text.strip()}`.")


def test_parse_size_message_example() -> None:
    with pytest.raises(Refusal, match=r"got `1000x1000`\.$"):
        parse_size("1000x1000")


def test_parse_size_keeps_member_text_short_and_markup_safe() -> None:
    with pytest.raises(Refusal) as caught:
        parse_size("`" + "9" * 100)
    assert "`'999" in str(caught.value)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4000, 3000), (1024, 768)),
        ((3000, 4000), (768, 1024)),
        ((100, 5000), (64, 1024)),  # the short side would be 20: clamped up to 64
        ((777, 777), (1024, 1024)),
        ((1920, 1080), (1024, 576)),
        ((1000, 333), (1024, 336)),  # 341 rounds to the nearest multiple of 16
    ],
)
def test_auto_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert auto_size(*size) == expected


def test_auto_size_with_server_long_side_stays_in_range() -> None:
    assert auto_size(4000, 3000, long_side=4096) == (MAX_SIDE, MAX_SIDE)
    assert auto_size(4000, 3000, long_side=2048) == (2048, 1536)
    width, height = auto_size(5000, 100, long_side=1000)
    assert (width, height) == (1008, MIN_SIDE)


# --- prepare_mask -----------------------------------------------------------------------------

IMAGE = ImageInfo(64, 48, "PNG")


async def test_alpha_mask_is_kept_as_it_is() -> None:
    mask = Image.new("RGBA", (64, 48), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (10, 10, 20, 20))
    prepared = await prepare_mask(encode(mask), IMAGE)
    assert prepared.has_alpha is True
    assert prepared.data_url is None
    assert (prepared.width, prepared.height) == (64, 48)


async def test_palette_mask_with_transparent_entry_is_kept() -> None:
    mask = Image.new("P", (64, 48), 1)
    mask.putpalette([255, 255, 255, 0, 0, 0])
    mask.paste(0, (0, 0, 8, 8))
    prepared = await prepare_mask(encode(mask, transparency=0), IMAGE)
    assert prepared.has_alpha is True and prepared.data_url is None


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])  # RGBA here: alpha all opaque
async def test_black_and_white_mask_is_converted(mode: str) -> None:
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (5, 6, 30, 40))
    mask.paste(128, (40, 0, 41, 1))  # exactly the threshold: counts as white
    mask.paste(127, (41, 0, 42, 1))  # just below: counts as black
    prepared = await prepare_mask(encode(mask.convert(mode)), IMAGE)
    assert prepared.has_alpha is False
    assert prepared.data_url is not None
    converted = decode_data_url(prepared.data_url)
    assert converted.mode == "RGBA" and converted.size == (64, 48)
    expected_alpha = mask.point([255] * 128 + [0] * 128)
    assert converted.getchannel("A").tobytes() == expected_alpha.tobytes()
    assert set(converted.getchannel("A").tobytes()) == {0, 255}
    assert converted.getchannel("A").getpixel((5, 6)) == 0
    assert converted.getchannel("A").getpixel((0, 0)) == 255
    assert converted.convert("RGB").getextrema() == ((0, 0), (0, 0), (0, 0))


async def test_all_black_mask_is_refused() -> None:
    with pytest.raises(Refusal) as caught:
        await prepare_mask(encode(Image.new("L", (64, 48), 0)), IMAGE)
    assert caught.value.field == "mask"
    assert "marks nothing to edit" in str(caught.value)


async def test_mask_of_another_size_is_refused_with_both_sizes() -> None:
    with pytest.raises(Refusal) as caught:
        await prepare_mask(encode(Image.new("L", (512, 512), 255)), ImageInfo(1024, 768, "PNG"))
    assert caught.value.field == "mask"
    assert str(caught.value) == ("`mask` must be the same size as `image` (1024x768); it is 512x512.")


async def test_unreadable_mask_names_the_mask() -> None:
    with pytest.raises(Refusal) as caught:
        await prepare_mask(b"%PDF-1.7", IMAGE)
    assert caught.value.field == "mask"


# --- small helpers ----------------------------------------------------------------------------


async def test_to_data_url() -> None:
    assert await to_data_url(b"\x89PNG", "image/png; charset=binary") == ("data:image/png;base64,iVBORw==")
    with pytest.raises(ValueError):
        await to_data_url(b"x", "")


def test_extension_and_content_type() -> None:
    assert [extension_for(f) for f in ("png", "jpeg", "JPG", "webp")] == ["png", "jpg", "jpg", "webp"]
    with pytest.raises(ValueError):
        extension_for("gif")
    assert content_type_for("JPEG") == "image/jpeg"
    assert content_type_for("WEBP") == "image/webp"


async def test_make_thumbnail(noise_png: bytes) -> None:
    thumb = Image.open(io.BytesIO(await make_thumbnail(noise_png, max_side=100)))
    assert thumb.format == "PNG" and thumb.size == (100, 100)
    wide = encode(Image.new("RGB", (600, 200)), "JPEG")
    assert Image.open(io.BytesIO(await make_thumbnail(wide))).size == (256, 85)


# --- pins of the mask checks ------------------------------------------------------------------


async def test_mask_differing_in_height_only_is_refused() -> None:
    with pytest.raises(Refusal) as caught:
        await prepare_mask(encode(Image.new("L", (64, 40), 255)), IMAGE)
    assert str(caught.value) == "`mask` must be the same size as `image` (64x48); it is 64x40."


async def test_mask_differing_in_width_only_is_refused() -> None:
    with pytest.raises(Refusal, match=r"it is 60x48\.$"):
        await prepare_mask(encode(Image.new("L", (60, 48), 255)), IMAGE)


async def test_rgba_mask_without_a_fully_transparent_pixel_is_read_as_black_and_white() -> None:
    # Alpha from 1 to 255: partly transparent everywhere, fully transparent nowhere.
    mask = Image.new("RGBA", (64, 48), (0, 0, 0, 1))
    mask.paste((255, 255, 255, 255), (0, 0, 32, 48))
    prepared = await prepare_mask(encode(mask), IMAGE)
    assert prepared.has_alpha is False and prepared.data_url is not None
    alpha = decode_data_url(prepared.data_url).getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((40, 0)) == 255


# --- masks of every mode, read by value -------------------------------------------------------


def two_tone(mode: str, dark: float, light: float) -> Image.Image:
    """64x48 in `mode`: `light` on the left half, `dark` on the right half (values of that mode)."""
    image = Image.new(mode, (64, 48), dark)  # type: ignore[arg-type]
    # Pasting a block, not a value: Pillow pastes some 16-bit values into "I;16" wrongly.
    image.paste(Image.new(mode, (32, 48), light), (0, 0))  # type: ignore[arg-type]
    return image


def edit_area(prepared: Any) -> tuple[int, int]:
    """The alpha (0 = edit) of the converted mask on the left and right halves."""
    assert prepared.has_alpha is False and prepared.data_url is not None
    alpha = decode_data_url(prepared.data_url).getchannel("A")
    return alpha.getpixel((0, 0)), alpha.getpixel((63, 0))


@pytest.mark.parametrize(
    ("mode", "dark", "light"),
    [
        ("1", 0, 1),
        ("L", 3, 250),
        ("RGB", (4, 4, 4), (250, 250, 250)),
        ("RGBA", (4, 4, 4, 255), (250, 250, 250, 255)),
        ("LA", (4, 255), (250, 255)),
        ("I;16", 983, 65000),  # 1.5 % grey stays dark; clipped to 8 bits it would be white
    ],
)
async def test_mask_of_each_mode_is_read_by_value(mode: str, dark: Any, light: Any) -> None:
    prepared = await prepare_mask(encode(two_tone(mode, dark, light)), IMAGE)
    assert edit_area(prepared) == (0, 255)


async def test_palette_mask_without_transparency_is_read_by_its_colours() -> None:
    mask = Image.new("P", (64, 48), 0)
    mask.putpalette([10, 10, 10, 240, 240, 240])  # index 0 dark grey, index 1 near white
    mask.paste(1, (0, 0, 32, 48))
    assert edit_area(await prepare_mask(encode(mask), IMAGE)) == (0, 255)


async def test_sixteen_bit_mask_threshold_is_half_of_its_range() -> None:
    mask = two_tone("I;16", 32767, 32768)  # just below half of 65535: dark; half: white, as 128 of 255 is
    assert edit_area(await prepare_mask(encode(mask), IMAGE)) == (0, 255)


@pytest.mark.parametrize(("mode", "dark", "light"), [("I", 983, 40000), ("F", 0.015, 0.6), ("I;16", 983, 40000)])
def test_wide_modes_are_scaled_not_clipped(mode: str, dark: float, light: float) -> None:
    # PNG, JPEG, WebP and GIF never decode to "I" or "F"; the reading itself must still hold for them.
    assert edit_area(images._read_mask(two_tone(mode, dark, light))) == (0, 255)


def test_wide_mode_without_white_marks_nothing() -> None:
    with pytest.raises(Refusal, match="marks nothing to edit"):
        images._read_mask(Image.new("I", (64, 48), 30000))


# --- pictures as displayed: EXIF orientation --------------------------------------------------


def phone_jpeg(orientation: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG stored landscape, red on its left half and blue on its right, with an EXIF orientation."""
    picture = Image.new("RGB", size, (255, 0, 0))
    picture.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(picture, "JPEG", exif=exif.tobytes(), quality=95)


def is_red(pixel: Any) -> bool:
    return pixel[0] > 200 and pixel[2] < 60


def is_blue(pixel: Any) -> bool:
    return pixel[2] > 200 and pixel[0] < 60


async def test_photo_stored_turned_is_sized_as_displayed() -> None:
    info = await inspect_image(phone_jpeg(6))
    assert info == ImageInfo(48, 64, "JPEG", reoriented=True)
    assert auto_size(info.width, info.height) == (768, 1024)  # portrait, as Discord shows it


async def test_photo_stored_upright_is_not_reoriented() -> None:
    assert await inspect_image(phone_jpeg(1)) == ImageInfo(64, 48, "JPEG", reoriented=False)


async def test_mirrored_photo_keeps_its_size_but_is_reoriented() -> None:
    assert await inspect_image(phone_jpeg(2)) == ImageInfo(64, 48, "JPEG", reoriented=True)


async def test_upright_picture_is_the_photo_as_displayed() -> None:
    upright = await upright_picture(phone_jpeg(6))
    assert upright.content_type == "image/jpeg"
    with Image.open(io.BytesIO(upright.data)) as picture:
        assert picture.format == "JPEG" and picture.size == (48, 64)
        assert picture.getexif().get(0x0112) is None  # nothing left for a viewer to turn again
        rgb = picture.convert("RGB")
        # Orientation 6 turns the stored picture a quarter clockwise: its left half comes on top.
        assert is_red(rgb.getpixel((24, 4))) and is_blue(rgb.getpixel((24, 60)))


async def test_upright_png_stays_lossless() -> None:
    picture = Image.new("RGB", (64, 48), (255, 0, 0))
    picture.paste((0, 0, 255), (32, 0, 64, 48))
    exif = Image.Exif()
    exif[0x0112] = 8  # a quarter anticlockwise: the left half goes to the bottom
    info = await inspect_image(encode(picture, exif=exif.tobytes()))
    assert info == ImageInfo(48, 64, "PNG", reoriented=True)
    upright = await upright_picture(encode(picture, exif=exif.tobytes()))
    assert upright.content_type == "image/png"
    with Image.open(io.BytesIO(upright.data)) as turned:
        assert turned.size == (48, 64)
        assert turned.getpixel((24, 60)) == (255, 0, 0) and turned.getpixel((24, 4)) == (0, 0, 255)


async def test_mask_is_checked_against_the_displayed_size() -> None:
    info = await inspect_image(phone_jpeg(6))
    portrait = Image.new("L", (48, 64), 0)
    portrait.paste(255, (0, 0, 48, 10))
    prepared = await prepare_mask(encode(portrait), info)
    assert (prepared.width, prepared.height) == (48, 64)
    with pytest.raises(Refusal, match=r"\(48x64\); it is 64x48\.$"):
        await prepare_mask(encode(Image.new("L", (64, 48), 255)), info)


async def test_turned_alpha_mask_is_sent_upright_not_by_url() -> None:
    mask = Image.new("RGBA", (64, 48), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 48))  # stored: left half to edit
    exif = Image.Exif()
    exif[0x0112] = 6
    prepared = await prepare_mask(encode(mask, exif=exif.tobytes()), ImageInfo(48, 64, "PNG"))
    assert prepared.has_alpha is False and prepared.data_url is not None
    alpha = decode_data_url(prepared.data_url).getchannel("A")
    assert alpha.size == (48, 64)
    assert alpha.getpixel((24, 4)) == 0 and alpha.getpixel((24, 60)) == 255  # displayed: top half


async def test_thumbnail_is_as_displayed() -> None:
    with Image.open(io.BytesIO(await make_thumbnail(phone_jpeg(6, (640, 480)), max_side=64))) as thumb:
        assert thumb.size == (48, 64)


async def test_preview_comes_with_the_inspection_as_displayed() -> None:
    info = await inspect_image(phone_jpeg(6, (640, 480)), preview_side=64)
    assert info.preview is not None
    with Image.open(io.BytesIO(info.preview)) as preview:
        assert preview.format == "PNG" and preview.size == (48, 64)
        assert is_red(preview.convert("RGB").getpixel((24, 4)))
    assert (await inspect_image(phone_jpeg(6))).preview is None


# --- costly decodes ---------------------------------------------------------------------------


def count_decodes(work: Any, *args: Any) -> int:
    """How many pixel decoders Pillow starts while `work(*args)` runs in this thread."""
    started = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal started
        if event == "call" and frame.f_code.co_name == "_getdecoder" and frame.f_code.co_filename.endswith("Image.py"):
            started += 1

    sys.setprofile(profile)
    try:
        work(*args)
    finally:
        sys.setprofile(None)
    return started


def test_mask_is_decoded_once_for_every_check_and_its_preview() -> None:
    mask = encode(two_tone("L", 0, 255))
    assert count_decodes(images._prepare_mask, mask, IMAGE, 64) == 1


def test_picture_is_decoded_once_for_its_checks_and_its_preview() -> None:
    assert count_decodes(images._inspect_image, phone_jpeg(6), "image", 64) == 1
    assert count_decodes(images._inspect_image, encode(Image.new("RGB", (64, 48))), "image", 64) == 1


async def test_png_too_large_to_decode_is_refused_from_its_header() -> None:
    # 5000x4000 (20 MP, under the 40 MP limit) would decode to 80 MB; the file carries almost no pixels.
    with pytest.raises(Refusal) as caught:
        await inspect_image(png_header_only(5000, 4000))
    assert caught.value.field == "image"
    assert str(caught.value) == (
        "`image` is 5000x4000 (20 megapixels); a picture Retouch reads at full size (a mask, a PNG, WebP or "
        "GIF, or a photo stored turned) may have at most 17 megapixels; send a smaller picture."
    )


async def test_png_at_the_full_decode_limit_is_accepted() -> None:
    side = int(images.MAX_FULL_DECODE_PIXELS**0.5)
    assert (await inspect_image(encode(Image.new("1", (side, side))))).width == side


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    """A 5000x4000 photo: over the full-decode limit, well under the 40 MP limit."""
    return encode(Image.new("RGB", (5000, 4000), (10, 120, 200)), "JPEG", quality=50)


async def test_big_jpeg_is_checked_scaled_down_while_decoding(big_jpeg: bytes) -> None:
    assert await inspect_image(big_jpeg) == ImageInfo(5000, 4000, "JPEG")
    info = await inspect_image(big_jpeg, preview_side=256)
    with Image.open(io.BytesIO(info.preview or b"")) as preview:
        assert preview.size == (256, 205)


async def test_big_jpeg_as_a_mask_is_refused_from_its_header(big_jpeg: bytes) -> None:
    # A mask is read pixel by pixel at full size: no scaling down while decoding.
    with pytest.raises(Refusal, match="may have at most 17 megapixels") as caught:
        await prepare_mask(big_jpeg, ImageInfo(5000, 4000, "JPEG"))
    assert caught.value.field == "mask"


async def test_big_photo_stored_turned_is_refused_at_inspection() -> None:
    # Turning it upright for the upstream takes a full decode, so it is refused before anything is spent.
    with pytest.raises(Refusal, match=r"`image` is 5000x4000 \(20 megapixels\)"):
        await inspect_image(phone_jpeg(6, (5000, 4000)))


async def test_at_most_two_decodes_run_at_once(noise_png: bytes) -> None:
    """Six inspections started together: sampling the worker threads' stacks sees at most two decoding.

    Each makes a preview, so each decodes the whole picture: long enough to be seen at work."""
    most = 0

    def decoding_now() -> int:
        frames = sys._current_frames().values()
        return sum(1 for frame in frames if any_frame_named(frame, "_inspect_image"))

    tasks = [asyncio.create_task(inspect_image(noise_png, preview_side=256)) for _ in range(6)]
    while not all(task.done() for task in tasks):
        most = max(most, decoding_now())
        await asyncio.sleep(0.0005)
    await asyncio.gather(*tasks)
    assert most == MAX_CONCURRENT_DECODES == 2


def any_frame_named(frame: FrameType | None, name: str) -> bool:
    while frame is not None:
        if name in frame.f_code.co_name:  # "in": mutation testing renames functions around their name
            return True
        frame = frame.f_back
    return False


# --- pins found by mutation testing -----------------------------------------------------------


@pytest.mark.parametrize("orientation", [0, 9, 1000])
async def test_an_orientation_outside_the_eight_is_ignored(orientation: int) -> None:
    assert await inspect_image(phone_jpeg(orientation)) == ImageInfo(64, 48, "JPEG", reoriented=False)


async def test_exactly_40_megapixels_is_accepted_one_row_more_is_not() -> None:
    at_limit = encode(Image.new("L", (8000, 5000)), "JPEG", quality=10)
    assert await inspect_image(at_limit) == ImageInfo(8000, 5000, "JPEG")
    with pytest.raises(Refusal) as caught:
        await inspect_image(encode(Image.new("L", (8000, 5001)), "JPEG", quality=10), field="mask")
    assert caught.value.field == "mask"
    assert str(caught.value) == (
        "`mask` is 8000x5001 (40 megapixels); the limit is 40 megapixels; send a smaller picture."
    )


async def test_bomb_refusal_words() -> None:
    with pytest.raises(Refusal) as caught:
        await inspect_image(png_header_only(20000, 10000), field="mask")
    assert caught.value.field == "mask"
    assert (
        str(caught.value)
        == "`mask` has too many pixels to process; the limit is 40 megapixels; send a smaller picture."
    )


async def test_animated_refusal_words() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
    with pytest.raises(Refusal) as caught:
        await inspect_image(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), field="mask")
    assert str(caught.value) == (
        "`mask` must be a still picture (PNG, JPEG, WebP or GIF without animation); this one is animated."
    )


async def test_nothing_to_edit_words() -> None:
    with pytest.raises(Refusal) as caught:
        await prepare_mask(encode(Image.new("RGB", (64, 48), (100, 100, 100))), IMAGE)
    assert str(caught.value) == (
        "`mask` marks nothing to edit: paint the area to change white (or fully transparent) and the rest black."
    )


def test_a_jpeg_is_decoded_scaled_down_as_far_as_its_use_allows(big_jpeg: bytes) -> None:
    image, stored = images._open_still(big_jpeg, "image", draft_side=1)
    assert stored == (5000, 4000) and image.size == (625, 500)  # an eighth: checks need no detail
    image, _ = images._open_still(big_jpeg, "image", draft_side=1024)
    assert image.size == (2500, 2000)  # a half: both sides stay at least 1024
    png, stored = images._open_still(encode(Image.new("L", (640, 480))), "image", draft_side=1)
    assert png.size == stored == (640, 480)  # only a JPEG can be decoded smaller


@pytest.mark.parametrize(
    ("mask", "fmt", "has_alpha"),
    [
        (two_tone("L", 0, 255), "PNG", False),
        (two_tone("L", 0, 255), "GIF", False),
        (two_tone("RGBA", (0, 0, 0, 255), (0, 0, 0, 0)), "PNG", True),
    ],
)
async def test_prepared_mask_says_its_format_and_brings_a_preview(mask: Image.Image, fmt: str, has_alpha: bool) -> None:
    prepared = await prepare_mask(encode(mask, fmt), IMAGE, preview_side=32)
    assert (prepared.format, prepared.has_alpha) == (fmt, has_alpha)
    assert prepared.preview is not None
    with Image.open(io.BytesIO(prepared.preview)) as preview:
        assert preview.format == "PNG" and preview.size == (32, 24)
    assert (await prepare_mask(encode(mask, fmt), IMAGE)).preview is None


async def test_converted_mask_is_black_where_it_is_opaque() -> None:
    prepared = await prepare_mask(encode(two_tone("L", 0, 255)), IMAGE)
    assert prepared.data_url is not None
    converted = decode_data_url(prepared.data_url)
    assert converted.getpixel((63, 0)) == (0, 0, 0, 255) and converted.getpixel((0, 0))[3] == 0


def cmyk_jpeg(orientation: int) -> bytes:
    picture = Image.new("CMYK", (64, 48), (0, 255, 255, 0))  # red in print colours
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(picture, "JPEG", exif=exif.tobytes(), quality=95)


async def test_upright_cmyk_photo_is_sent_as_rgb() -> None:
    upright = await upright_picture(cmyk_jpeg(6))
    with Image.open(io.BytesIO(upright.data)) as picture:
        assert (picture.mode, picture.size) == ("RGB", (48, 64))
        assert is_red(picture.getpixel((24, 32)))


async def test_upright_grey_photo_stays_grey() -> None:
    grey = Image.new("L", (64, 48), 200)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = await upright_picture(encode(grey, "JPEG", exif=exif.tobytes()))
    with Image.open(io.BytesIO(upright.data)) as picture:
        assert (picture.mode, picture.size) == ("L", (48, 64))


async def test_upright_picture_names_the_field_when_unreadable() -> None:
    with pytest.raises(Refusal) as caught:
        await upright_picture(b"not a picture", field="mask")
    assert caught.value.field == "mask"


async def test_thumbnail_of_a_cmyk_photo_is_an_rgb_png() -> None:
    with Image.open(io.BytesIO(await make_thumbnail(cmyk_jpeg(1), max_side=32))) as thumb:
        assert (thumb.format, thumb.mode, thumb.size) == ("PNG", "RGB", (32, 24))


# --- the picture shown to the screening model -------------------------------------------------


def jpeg(data: bytes) -> JpegImageFile:
    image = Image.open(io.BytesIO(data))
    assert isinstance(image, JpegImageFile) and image.format == "JPEG"
    image.load()
    return image


def screening_jpeg(url: str) -> JpegImageFile:
    """The picture in a screening data URL, which must be a JPEG's."""
    header, payload = url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    return jpeg(base64.b64decode(payload))


def tables(picture: JpegImageFile) -> dict[int, list[int]]:
    return {index: list(table) for index, table in picture.quantization.items()}


def quantization_at(quality: int) -> dict[int, list[int]]:
    """The quantization tables Pillow writes into an RGB JPEG saved at `quality`."""
    with jpeg(encode(Image.new("RGB", (8, 8)), "JPEG", quality=quality)) as reference:
        return tables(reference)


async def test_the_screening_picture_is_an_rgb_jpeg_at_most_512_on_a_side() -> None:
    large = await screening_data_url(encode(Image.new("RGB", (1024, 768), (230, 20, 20))))
    with screening_jpeg(large) as picture:
        assert (picture.mode, picture.size) == ("RGB", (512, 384))
        assert is_red(picture.getpixel((256, 192)))
    tall = await screening_data_url(encode(Image.new("L", (300, 900), 90)))
    assert screening_jpeg(tall).size == (171, 512)
    # Smaller than that: never enlarged.
    assert screening_jpeg(await screening_data_url(encode(Image.new("RGB", (64, 48))))).size == (64, 48)
    assert screening_jpeg(await screening_data_url(encode(Image.new("RGB", (1024, 768))), 100)).size == (100, 75)


async def test_the_screening_picture_is_encoded_at_quality_85() -> None:
    assert quantization_at(85) != quantization_at(86) and quantization_at(85) != quantization_at(75)
    url = await screening_data_url(encode(Image.new("RGB", (640, 480), (10, 120, 200))))
    with screening_jpeg(url) as picture:
        assert tables(picture) == quantization_at(85)


async def test_the_screening_picture_is_shown_as_displayed() -> None:
    stored = Image.new("RGB", (1024, 768), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 512, 768))  # red on the left as stored: on top once turned upright
    exif = Image.Exif()
    exif[0x0112] = 6
    with screening_jpeg(await screening_data_url(encode(stored, "JPEG", exif=exif.tobytes()))) as picture:
        assert picture.size == (384, 512)
        assert is_red(picture.getpixel((192, 100))) and is_blue(picture.getpixel((192, 412)))
    with screening_jpeg(await screening_data_url(cmyk_jpeg(1))) as picture:
        assert (picture.mode, picture.size) == ("RGB", (64, 48)) and is_red(picture.getpixel((32, 24)))
    clear = Image.new("RGBA", (64, 48), (0, 0, 0, 0))  # transparent black reads as white, not black
    with screening_jpeg(await screening_data_url(encode(clear))) as picture:
        assert min(picture.convert("L").tobytes()) > 245


async def test_a_big_screening_jpeg_is_decoded_at_an_eighth_while_reading() -> None:
    """8x8 blocks of black and white, aligned with the JPEG's: its eighth-size decode is each block's own
    colour, one pixel a block, where a full decode scaled down afterwards blurs them towards grey."""
    tile = Image.new("L", (16, 16), 0)
    tile.paste(255, (8, 0, 16, 8))
    tile.paste(255, (0, 8, 8, 16))
    board = Image.new("L", (4096, 4096))
    for top in range(0, 4096, 16):
        for left in range(0, 4096, 16):
            board.paste(tile, (left, top))
    with screening_jpeg(await screening_data_url(encode(board, "JPEG", quality=95))) as picture:
        assert picture.size == (512, 512)
        row = picture.convert("L").tobytes()[100 * 512 + 100 : 100 * 512 + 106]
        assert [value < 40 for value in row] == [True, False] * 3
        assert [value > 215 for value in row] == [False, True] * 3
