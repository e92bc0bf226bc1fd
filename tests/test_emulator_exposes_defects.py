"""Bot defects that the stricter Discord emulator exposes (issue 9), each a test of what a member
should get, expected to fail until the bot is fixed (``xfail(strict=True)``: a fix makes them pass
and the marker must then go)."""

from __future__ import annotations

import pytest

from emulators.modelhub import expected_image
from tests.test_remix_e2e import button, file_of, pixels, posted_edit, results_of


async def outcome(record, *words: str, timeout: float = 20) -> list[str]:
    """Waits until the member was told "Done" or any of ``words``; returns everything they saw."""
    await record.wait_for(lambda r: any(w in t for t in r.texts() for w in ("Done", *words)), timeout=timeout)
    return record.texts()


@pytest.mark.xfail(
    strict=True,
    reason="issue 9 item 3: Reroll of an /edit result needs the command's ephemeral upload, which Discord purges",
)
async def test_reroll_of_an_edit_still_works_after_discord_purged_the_upload(stack):
    source, result = await posted_edit(stack)
    assert stack.discord.purge_ephemeral() >= 1
    record = await stack.discord.click(result, button(result, "Reroll"))
    texts = await outcome(record, "gone", "Could not download", "Nothing was charged")
    assert not any("Could not download" in text or "gone" in text for text in texts), texts
    [rerolled] = await results_of(record)
    assert pixels(file_of(rerolled)) == expected_image(source, None, (64, 64), 0).tobytes()


@pytest.mark.xfail(
    strict=True,
    reason="issue 9 item 2: Reroll asks the undocumented refresh-urls endpoint even for a URL that has not expired",
)
async def test_reroll_with_a_valid_url_needs_no_refresh(stack):
    source, result = await posted_edit(stack)
    stack.discord.fail_next("POST", "^/attachments/refresh-urls$", 503, times=10)
    record = await stack.discord.click(result, button(result, "Reroll"))
    texts = await outcome(record, "fresh link", "Nothing was charged")
    assert not any("Nothing was charged" in text for text in texts), texts
    [rerolled] = await results_of(record)
    assert pixels(file_of(rerolled)) == expected_image(source, None, (64, 64), 0).tobytes()
