"""Cooldowns after repeated upstream rejections (services.domain.rejections), with an injected clock."""

from __future__ import annotations

import pytest

from services.domain.rejections import Cooldown, CoolingDown, RejectionRule, RejectionTracker
from services.text import words
from tests.helpers import Clock

RULE = RejectionRule(max_edits=3, max_images=20, window_seconds=600, cooldown_seconds=900)


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
def tracker(clock: Clock) -> RejectionTracker:
    return RejectionTracker(RULE, clock=clock)


def test_two_rejected_edits_do_not_cool_a_member_down(tracker: RejectionTracker) -> None:
    assert tracker.record(1, 10, 1) is None
    assert tracker.record(1, 10, 1) is None
    tracker.check(1, 10)  # does not raise
    assert tracker.cooldown(1, 10) is None


def test_the_third_rejected_edit_starts_a_cooldown(tracker: RejectionTracker, clock: Clock) -> None:
    tracker.record(1, 10, 1)
    clock.now += 60
    tracker.record(1, 10, 2)
    clock.now += 60
    cooldown = tracker.record(1, 10, 1)
    assert cooldown == Cooldown(1, 10, until=clock.now + 900, edits=3, images=4)
    with pytest.raises(CoolingDown) as refused:
        tracker.check(1, 10)
    assert refused.value.cooldown == cooldown


def test_rejected_images_cool_down_before_the_edit_count(tracker: RejectionTracker, clock: Clock) -> None:
    # Two count=10 edits spend two minutes of everyone's image rate: that is the limit.
    assert tracker.record(1, 10, 10) is None
    cooldown = tracker.record(1, 10, 10)
    assert cooldown is not None and (cooldown.edits, cooldown.images) == (2, 20)


def test_the_cooldown_ends_at_its_time(tracker: RejectionTracker, clock: Clock) -> None:
    for _ in range(3):
        tracker.record(1, 10, 1)
    clock.now += 899
    with pytest.raises(CoolingDown):
        tracker.check(1, 10)
    clock.now += 1
    tracker.check(1, 10)
    assert tracker.cooldown(1, 10) is None and tracker.cooling_down(1) == []


def test_rejections_outside_the_window_are_forgotten(tracker: RejectionTracker, clock: Clock) -> None:
    tracker.record(1, 10, 1)
    tracker.record(1, 10, 1)
    clock.now += 600  # the first two are exactly a window old: they no longer count
    assert tracker.record(1, 10, 1) is None
    clock.now += 1
    assert tracker.record(1, 10, 1) is None
    assert tracker.record(1, 10, 1) is not None  # three within the window now


def test_after_a_cooldown_rejections_count_afresh(tracker: RejectionTracker, clock: Clock) -> None:
    for _ in range(3):
        tracker.record(1, 10, 1)
    clock.now += 900
    assert tracker.record(1, 10, 1) is None


def test_cooldowns_are_per_server_and_member(tracker: RejectionTracker) -> None:
    for _ in range(3):
        tracker.record(1, 10, 1)
    tracker.check(1, 11)  # another member of that server
    tracker.check(2, 10)  # the same account in another server
    tracker.record(2, 10, 1)
    tracker.record(1, 11, 1)
    assert tracker.cooldown(2, 10) is None and tracker.cooldown(1, 11) is None


def test_moderators_see_who_cools_down_longest_first(tracker: RejectionTracker, clock: Clock) -> None:
    for _ in range(3):
        tracker.record(1, 10, 1)
    clock.now += 100
    for _ in range(3):
        tracker.record(1, 11, 1)
    for _ in range(3):
        tracker.record(2, 12, 1)
    listed = tracker.cooling_down(1)
    assert [(c.user_id, c.until) for c in listed] == [(11, clock.now + 900), (10, clock.now - 100 + 900)]
    clock.now += 800  # member 10's cooldown is over, member 11's is not
    assert [c.user_id for c in tracker.cooling_down(1)] == [11]


def test_a_moderator_can_forgive(tracker: RejectionTracker) -> None:
    for _ in range(3):
        tracker.record(1, 10, 1)
    assert tracker.forgive(1, 10) is True
    tracker.check(1, 10)
    assert tracker.forgive(1, 10) is False
    tracker.record(1, 10, 1)
    tracker.record(1, 10, 1)
    assert tracker.forgive(1, 10) is False  # no cooldown, but the rejections are forgotten too
    assert tracker.record(1, 10, 1) is None


def test_default_rule() -> None:
    assert RejectionRule() == RejectionRule(max_edits=3, max_images=20, window_seconds=600, cooldown_seconds=900)


def test_the_words_for_a_cooldown_take_its_numbers(tracker: RejectionTracker) -> None:
    for images in (10, 10):
        cooldown = tracker.record(1, 10, images)
    assert cooldown is not None
    edits, images = words.Text(words.N_EDITS, count=cooldown.edits), words.Text(words.N_PICTURES, count=cooldown.images)
    told = words.Text(words.COOLING_DOWN, edits=edits, images=images, until="in 15 minutes")
    assert told.render() == (
        "The Model Hub refused your last 2 edits (20 pictures), which still cost everyone's shared image rate; "
        "you can start the next edit in 15 minutes. Nothing was charged."
    )
    listed = words.Text(words.COOLING_DOWN_ENTRY, member="@ann", until="12:15", edits=edits, images=images)
    assert listed.render() == "@ann: cooling down until 12:15; refused: 2 edits (20 pictures)"
