"""`/edit` end to end: the real discord.py client against the Discord and Model Hub emulators."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from emulators.modelhub import EDIT_MODEL, Fault, expected_image
from tests.helpers import picture, pixels, told, until, uploaded
from tests.images import alpha_mask, black_and_white_mask, filtered_rows, rgb_png
from tests.protocol import AUTOCOMPLETE_RESULT, DEFERRED_CHANNEL_MESSAGE, EPHEMERAL
from tests.stack import assert_nothing_leaked, loopback_stack


async def test_single_edit_with_auto_size_posts_the_transformed_picture(stack):
    source, image = picture(stack, 200, 150)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "paint it like Monet"})

    said = await told(record)
    assert record.responses[0]["type"] == DEFERRED_CHANNEL_MESSAGE and record.responses[0]["data"]["flags"] & EPHEMERAL
    [sent] = stack.hub.requests
    assert sent.fields == {
        "model": EDIT_MODEL,
        "prompt": "paint it like Monet",
        "url": image["url"],
        "size": "1024x768",
        "n": "1",
        "output_format": "png",
    }
    [file] = uploaded(record)
    assert file.filename.endswith(".png")
    assert pixels(file.data) == expected_image(source, None, (1024, 768), 0).tobytes()
    [post] = record.followups
    assert not (post.get("flags") or 0) & EPHEMERAL
    assert "paint it like Monet" in post["content"] and f"<@{stack.discord.member['id']}>" in post["content"]
    assert EDIT_MODEL in post["content"]
    assert "Done: 1 picture posted below" in said


async def test_an_edit_whose_acknowledgement_discord_refuses_goes_no_further(stack):
    # In a rolling restart both processes get every interaction of a shard; the other one answered first.
    refused = {"code": 40060, "message": "Interaction has already been acknowledged."}
    stack.discord.fail_next("POST", r"^/interactions/\d+/[^/]+/callback$", 400, refused)
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "answered elsewhere"})
    words = "Discord refused to acknowledge /edit (HTTP 400, code 40060)"
    await until(lambda: any(words in line for line in stack.logs.lines), what="the refusal to be logged")
    await stack.bot.acknowledgements.wait()  # past the moment its work would have started
    assert not record.acknowledged and record.followups == [] and record.original is None
    assert stack.hub.requests == [] and stack.discord.cdn_hits == []


async def test_ten_pictures_with_explicit_size_all_arrive_with_their_pixels(stack):
    source, image = picture(stack, 64, 64)
    record = await stack.discord.slash(
        "edit", {"image": image, "prompt": "ten variants", "count": 10, "size": "128x64", "format": "png"}
    )
    await told(record)
    assert stack.hub.requests[0].fields["n"] == "10" and stack.hub.requests[0].fields["size"] == "128x64"
    files = uploaded(record)
    assert len(files) == 10
    for index, file in enumerate(files):
        assert pixels(file.data) == expected_image(source, None, (128, 64), index).tobytes()


async def test_alpha_mask_is_forwarded_and_only_its_transparent_area_changes(stack):
    source, image = picture(stack, 64, 64)
    mask_bytes = alpha_mask(64, 64, (16, 16, 48, 48))
    mask = stack.discord.add_attachment(mask_bytes, "mask.png", "image/png", width=64, height=64)
    record = await stack.discord.slash("edit", {"image": image, "mask": mask, "prompt": "a hole", "size": "64x64"})
    await told(record)
    assert stack.hub.requests[0].fields["mask_image"] == mask["url"]
    [file] = uploaded(record)
    got = Image.open(io.BytesIO(file.data)).convert("RGB")
    original = Image.open(io.BytesIO(source)).convert("RGB")
    assert got.tobytes() == expected_image(source, mask_bytes, (64, 64), 0).tobytes()
    assert got.getpixel((0, 0)) == original.getpixel((0, 0))  # outside the mask: untouched
    assert got.getpixel((32, 32)) != original.getpixel((32, 32))  # inside: edited


async def test_black_and_white_mask_is_converted_to_an_alpha_data_url(stack):
    source, image = picture(stack, 64, 64)
    mask_bytes = black_and_white_mask(64, 64, (0, 0, 32, 64))
    mask = stack.discord.add_attachment(mask_bytes, "mask.png", "image/png", width=64, height=64)
    record = await stack.discord.slash("edit", {"image": image, "mask": mask, "prompt": "left half", "size": "64x64"})
    await told(record)
    sent_mask = stack.hub.requests[0].fields["mask_image"]
    assert sent_mask.startswith("data:image/png;base64,")
    converted = Image.open(io.BytesIO(base64.b64decode(sent_mask.split(",", 1)[1])))
    assert converted.mode == "RGBA"
    assert converted.getpixel((10, 10))[3] == 0 and converted.getpixel((50, 10))[3] == 255
    [file] = uploaded(record)
    assert pixels(file.data) == expected_image(source, alpha_mask(64, 64, (0, 0, 32, 64)), (64, 64), 0).tobytes()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"prompt": "x" * 1001}, "`prompt` must be 1–1000 characters"),
        ({"size": "1000x1000"}, "`size` must be `auto` or WIDTHxHEIGHT"),
        ({"size": "4096x4096"}, "between 64 and 2048"),
        ({"size": "abc"}, "`size` must be"),
        ({"count": 11}, "`count` must be between 1 and 10"),
        ({"model": "meta-llama/Llama-3.3-70B-Instruct"}, "`model` must be one of"),
    ],
)
async def test_bad_options_are_refused_ephemerally_before_any_upstream_call(stack, options, words):
    _, image = picture(stack, 64, 64)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine", **options})
    response = await record.wait_response()
    # Acknowledged first (ephemerally, thinking); the refusal fills the deferral in.
    assert response["type"] == DEFERRED_CHANNEL_MESSAGE and response["data"]["flags"] & EPHEMERAL
    assert words in await told(record, words)
    assert stack.hub.requests == []
    assert record.followups == []


async def test_a_text_file_as_image_is_refused_without_download(stack):
    text = stack.discord.add_attachment(b"hello, not a picture", "notes.txt", "text/plain")
    record = await stack.discord.slash("edit", {"image": text, "prompt": "fine"})
    await told(record, "`image` must be a picture")
    assert record.ephemeral and stack.discord.cdn_hits == [] and stack.hub.requests == []


async def test_a_file_that_claims_to_be_an_image_but_is_not_is_refused(stack):
    fake = stack.discord.add_attachment(b"GIF89a but not really", "fake.png", "image/png", width=64, height=64)
    record = await stack.discord.slash("edit", {"image": fake, "prompt": "fine"})
    said = await told(record, "`image` must be a still picture")
    assert record.ephemeral and record.followups == [] and stack.hub.requests == []
    assert "Done" not in said


async def test_pixel_data_its_encoder_got_wrong_is_refused_by_the_hub_and_costs_nothing(stack):
    # Checksums right, so no upload damaged it; the fault lies past the pixel data the bot checks (png_reading).
    rows = bytearray(filtered_rows(400, 400))
    rows[300 * (1 + 3 * 400)] = 7  # row 300's filter: 0-4 exist
    data = rgb_png(400, 400, bytes(rows))
    image = stack.discord.add_attachment(data, "photo.png", "image/png", width=400, height=400)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine"})
    refused = "The Model Hub refused the request and said: “Failed to fetch image from url: not an image”"
    said = await told(record, refused)
    assert record.ephemeral and record.followups == [] and "Nothing was charged" in said
    by_link, by_bytes = stack.hub.requests  # the link, then the bytes (as for a link it cannot fetch)
    assert by_link.fields["url"] == image["url"] and by_bytes.fields["url"].startswith("data:image/png;base64,")


async def test_an_attachment_over_the_size_limit_is_refused(stack):
    big = stack.discord.add_attachment(
        b"\0" * (stack.config.max_input_bytes + 1), "huge.png", "image/png", width=64, height=64
    )
    record = await stack.discord.slash("edit", {"image": big, "prompt": "fine"})
    await told(record, "`image` must be at most 20 MiB")
    assert record.ephemeral and stack.discord.cdn_hits == [] and stack.hub.requests == []


async def test_mask_of_another_size_is_refused(stack):
    _, image = picture(stack, 64, 64)
    mask = stack.discord.add_attachment(alpha_mask(32, 32, (0, 0, 8, 8)), "mask.png", "image/png", width=32, height=32)
    record = await stack.discord.slash("edit", {"image": image, "mask": mask, "prompt": "fine"})
    await told(record, "`mask` must be the same size as `image` (64x64); it is 32x32.")
    assert record.ephemeral and stack.hub.requests == []


async def test_mask_size_is_checked_on_the_real_bytes_too(stack):
    """Discord's width/height can be missing; the downloaded mask is measured as well."""
    _, image = picture(stack, 64, 64)
    mask = stack.discord.add_attachment(alpha_mask(32, 32, (0, 0, 8, 8)), "mask.png", "image/png")
    record = await stack.discord.slash("edit", {"image": image, "mask": mask, "prompt": "fine"})
    await told(record, "`mask` must be the same size as `image`")
    assert stack.hub.requests == []


@pytest.mark.parametrize(
    ("fault", "times", "words"),
    [
        (Fault(status=503, body={"detail": "maintenance"}), 10, "The Model Hub is unavailable right now"),
        (
            Fault(status=429, body={"error": {"message": "Too many images"}}, headers={"Retry-After": "600"}),
            1,
            "rate limiting Retouch right now; please try again in about 600 s",
        ),
        (
            Fault(
                status=400,
                body={
                    "error": {"message": "Request rejected by the safety system", "code": "content_policy_violation"}
                },
            ),
            1,
            "content policy rejected",
        ),
        (
            Fault(status=400, body={"error": {"message": "prompt: unsupported language", "param": "prompt"}}),
            1,
            "The Model Hub refused the request and said: “prompt: unsupported language”",
        ),
        (Fault(malformed_json=True), 1, "an answer Retouch could not read; please try again."),
        (Fault(invalid_base64=True), 1, "an answer Retouch could not read; please try again."),
        (Fault(fewer_images=1), 1, "an answer Retouch could not read; please try again."),
        (Fault(not_an_image=True), 1, "an answer Retouch could not read; please try again."),
        (Fault(delay=30), 1, "The Model Hub timed out"),
    ],
)
async def test_upstream_faults_end_in_a_named_message_and_nothing_posted(tmp_path, fault, times, words):
    async with loopback_stack(tmp_path, upstream_deadline_seconds=3) as stack:
        _, image = picture(stack, 64, 64)
        stack.hub.inject(fault, times=times)
        record = await stack.discord.slash("edit", {"image": image, "prompt": "fine", "count": 2})
        said = await told(record, words, timeout=15)
        assert "Nothing was charged" in said
        assert record.followups == [] and record.ephemeral
        assert_nothing_leaked(stack)


async def test_a_500_is_retried_and_the_member_still_gets_pictures(stack):
    _, image = picture(stack, 64, 64)
    stack.hub.inject(Fault(status=500, body="Internal Server Error"), times=2)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine"})
    await told(record)
    assert len(stack.hub.requests) == 3 and len(uploaded(record)) == 1


async def test_wrong_api_token_is_named_and_never_shown(tmp_path):
    from services.outside.secret import Secret

    async with loopback_stack(tmp_path, ionos_api_token=Secret("the-wrong-ionos-token")) as stack:
        _, image = picture(stack, 64, 64)
        record = await stack.discord.slash("edit", {"image": image, "prompt": "fine"})
        said = await told(record, "refused Retouch's API token")
        assert "IONOS_API_TOKEN" in said
        assert "the-wrong-ionos-token" not in stack.everything_said()


async def test_unfetchable_url_falls_back_to_the_bytes_as_a_data_url(stack):
    source, image = picture(stack, 64, 64)
    stack.hub.fail_fetches(stack.discord.cdn_base)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine", "size": "64x64"})
    await told(record)
    first, second = stack.hub.requests
    assert first.fields["url"] == image["url"] and first.status == 400
    assert second.fields["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(second.fields["url"].split(",", 1)[1]) == source
    assert pixels(uploaded(record)[0].data) == expected_image(source, None, (64, 64), 0).tobytes()


async def test_results_over_the_upload_limit_are_split_or_reencoded_and_the_member_is_told(tmp_path):
    async with loopback_stack(tmp_path) as stack:
        _, image = picture(stack, 64, 64)
        stack.hub.inject(Fault(huge=(1024, 1024)))
        limit = 2 * 1024 * 1024
        record = await stack.discord.slash(
            "edit", {"image": image, "prompt": "fine", "count": 3}, attachment_size_limit=limit
        )
        said = await told(record, timeout=60)
        assert len(uploaded(record)) == 3
        for followup in record.followups:
            assert sum(len(f.data) for f in followup["files"]) <= limit
        assert "re-encoded" in said or "Split across" in said
        assert_nothing_leaked(stack)


async def test_progress_shows_elapsed_time_while_the_upstream_works(stack):
    _, image = picture(stack, 64, 64)
    stack.hub.inject(Fault(delay=1))  # progress is shown every 0.2 s in tests
    record = await stack.discord.slash("edit", {"image": image, "prompt": "slowly"})
    said = await told(record)
    shown = [int(seconds) for seconds in re.findall(r"^Editing 1 picture… (\d+) s$", said, re.MULTILINE)]
    assert shown and shown == sorted(shown)  # redrawn while the upstream works, the time so far only growing
    assert said.index("Editing 1 picture…") < said.index("Done")


async def test_model_autocomplete_offers_configured_models_the_hub_lists(stack):
    record = await stack.discord.autocomplete("edit", {"prompt": "x"}, focused="model")
    response = await record.wait_response()
    assert response["type"] == AUTOCOMPLETE_RESULT
    assert [choice["value"] for choice in response["data"]["choices"]] == [EDIT_MODEL]


async def test_a_phone_photo_stored_turned_goes_upstream_upright_and_sized_as_displayed(stack):
    """Issue 9 item 7: Discord shows EXIF orientation 6 portrait; so must `auto` size and the upstream."""
    stored = Image.new("RGB", (64, 48), (255, 0, 0))
    stored.paste((0, 0, 255), (32, 0, 64, 48))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: red on top, blue below
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    image = stack.discord.add_attachment(buffer.getvalue(), "phone.jpg", "image/jpeg", width=64, height=48)
    record = await stack.discord.slash("edit", {"image": image, "prompt": "fine"})
    await told(record)
    [request] = stack.hub.requests
    assert request.fields["size"] == "768x1024"  # portrait, the long side the server's default
    sent = request.fields["url"]
    assert sent.startswith("data:image/jpeg;base64,")  # the URL's bytes are stored turned: never sent
    upright = Image.open(io.BytesIO(base64.b64decode(sent.split(",", 1)[1]))).convert("RGB")
    assert upright.size == (48, 64)
    top, bottom = upright.getpixel((24, 8)), upright.getpixel((24, 56))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60
