"""The per-server settings store: what an admin sets is what the bot applies, on both backends."""

from __future__ import annotations

import pytest

from services.storage.database import Database, open_database
from services.storage.settings import GuildSettings, SettingsStore

GUILD = 1


async def test_the_ends_of_each_range_are_accepted_and_one_past_is_refused_with_the_range(database: Database):
    store = SettingsStore(database)
    assert (await store.update(GUILD, max_count=1)).max_count == 1
    assert (await store.update(GUILD, max_count=10)).max_count == 10
    for count in (0, 11):
        with pytest.raises(ValueError) as refused:
            await store.update(GUILD, max_count=count)
        assert str(refused.value) == "max_count must be between 1 and 10"
    assert (await store.update(GUILD, auto_long_side=64)).auto_long_side == 64
    assert (await store.update(GUILD, auto_long_side=2048)).auto_long_side == 2048
    for side in (63, 2049):
        with pytest.raises(ValueError) as refused:
            await store.update(GUILD, auto_long_side=side)
        assert str(refused.value) == "auto_long_side must be between 64 and 2048 pixels"
    assert await store.get(GUILD) == GuildSettings(max_count=10, auto_long_side=2048)


async def test_lists_are_changed_only_through_their_own_methods(database: Database):
    store = SettingsStore(database)
    with pytest.raises(ValueError) as refused:
        await store.update(GUILD, blocklist=("x",), allowed_channel_ids=frozenset({1}), max_count=2)
    assert str(refused.value) == (
        "cannot update allowed_channel_ids, blocklist with update(); "
        "use allow_channel/disallow_channel or add_blocked/remove_blocked"
    )
    assert await store.get(GUILD) == GuildSettings()  # nothing of it was written


async def test_remixing_turned_off_reads_back_as_false_on_both_backends(database_url: str):
    async with open_database(database_url) as db:
        await SettingsStore(db).update(GUILD, remixing_enabled=False)
    async with open_database(database_url) as db:
        assert (await SettingsStore(db).get(GUILD)).remixing_enabled is False  # not SQLite's 0
        assert (await SettingsStore(db).update(GUILD, remixing_enabled=True)).remixing_enabled is True


async def test_another_processs_change_shows_once_the_cache_expires(database: Database):
    ours, theirs = SettingsStore(database, cache_ttl=3600), SettingsStore(database)
    fresh = SettingsStore(database, cache_ttl=0)
    assert (await ours.get(GUILD)).max_count == (await fresh.get(GUILD)).max_count == 10
    await theirs.update(GUILD, max_count=3)
    await theirs.add_blocked(GUILD, "spam")
    assert (await ours.get(GUILD)).max_count == 10  # cached, within its ten seconds (here an hour)
    assert await fresh.get(GUILD) == GuildSettings(max_count=3, blocklist=("spam",))
    assert await ours.get(GUILD + 1) == GuildSettings()  # each server has its own entry
