"""Pages of a long ephemeral text (issue 9 item 20): within Discord's limit, broken where a reader expects."""

from __future__ import annotations

from cogs.reply import paginate
from services.imaging.limits import MAX_MESSAGE_CONTENT


def test_a_short_text_is_one_page():
    assert paginate("Blocked: nothing") == ["Blocked: nothing"]
    assert paginate("") == [""]


def test_lines_are_kept_whole_and_nothing_is_lost():
    lines = [f"<@{10**17 + n}>: 5 images per day" for n in range(200)]
    pages = paginate("\n".join(lines))
    assert len(pages) > 1 and all(len(page) <= MAX_MESSAGE_CONTENT for page in pages)
    assert [line for page in pages for line in page.split("\n")] == lines


def test_one_long_line_breaks_after_a_list_separator():
    channels = [f"<#{10**17 + n}>" for n in range(150)]
    pages = paginate("Allowed channels: " + ", ".join(channels))
    assert len(pages) == 2 and all(len(page) <= MAX_MESSAGE_CONTENT for page in pages)
    assert pages[0].endswith(",")
    assert all(channel in "".join(pages) for channel in channels)


def test_text_without_any_break_is_cut_at_the_limit():
    pages = paginate("x" * 4500)
    assert [len(page) for page in pages] == [2000, 2000, 500]
