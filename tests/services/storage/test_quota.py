"""The database, quota and settings stores, on SQLite and on PostgreSQL (see tests/db_fixtures.py)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.storage.database import MIGRATIONS, Database, ScrubBusy, lock_key, open_database
from services.storage.quota import (
    DEFAULT_STALE_AFTER_SECONDS,
    PERSONAL,
    BudgetStatus,
    Period,
    QuotaExceeded,
    QuotaRule,
    QuotaStatus,
    QuotaStore,
    RuleSource,
    parse_quota,
)
from services.storage.settings import GuildSettings, SettingsStore, find_blocked
from tests.helpers import CuttableProxy, liveness_backends, until

GUILD, USER, OTHER_USER = 1001, 2001, 2002
ROLE_A, ROLE_B = 3001, 3002
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def quota(database: Database) -> QuotaStore:
    return QuotaStore(database, QuotaRule(5, Period.DAY))


async def reserve_or_none(quota: QuotaStore, count: int = 1, *, user: int = USER, roles=(), now=T0):
    try:
        return await quota.reserve(GUILD, user, roles, count, now=now)
    except QuotaExceeded:
        return None


# ---------------------------------------------------------------------------------- parse_quota


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10/day", QuotaRule(10, Period.DAY)),
        (" 3 / Hour ", QuotaRule(3, Period.HOUR)),
        ("0/week", QuotaRule(0, Period.WEEK)),
        ("100 per month", QuotaRule(100, Period.MONTH)),
    ],
)
def test_parse_quota(text: str, expected: QuotaRule) -> None:
    assert parse_quota(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("ten/day", "images/period"),
        ("10", "images/period"),
        ("-1/day", "0 or more"),
        ("10/fortnight", "unknown period 'fortnight'"),
    ],
)
def test_parse_quota_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quota(text)


def test_period_seconds() -> None:
    assert [p.seconds for p in Period] == [3600, 86400, 7 * 86400, 30 * 86400]


# ------------------------------------------------------------------------------------- database


async def test_migrations_are_idempotent(database_url: str) -> None:
    async with open_database(database_url) as db:
        await db.set_meta("commands_hash", "abc")
    async with open_database(database_url) as db:
        assert await db.schema_version() == MIGRATIONS[-1].version
        assert await db.fetch_value("SELECT COUNT(*) FROM schema_version") == len(MIGRATIONS)
        assert await db.get_meta("commands_hash") == "abc"


async def test_concurrent_start_up_migrates_once(database_url: str) -> None:
    databases = await asyncio.gather(*(open_database(database_url) for _ in range(3)))
    try:
        assert [await db.schema_version() for db in databases] == [MIGRATIONS[-1].version] * 3
    finally:
        for db in databases:
            await db.close()


async def test_meta_round_trip(database: Database) -> None:
    assert await database.get_meta("missing") is None
    await database.set_meta("commands_hash", "one")
    await database.set_meta("commands_hash", "two")
    assert await database.get_meta("commands_hash") == "two"


async def test_transaction_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", "k", "v")
            raise RuntimeError("boom")
    assert await database.get_meta("k") is None


async def test_a_failing_statement_rolls_back_the_statements_before_it(database: Database) -> None:
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", "k", "v")
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", "k", "again")
    assert await database.get_meta("k") is None
    await database.set_meta("k", "w")  # no transaction was left open
    assert await database.get_meta("k") == "w"


async def test_a_transaction_whose_first_statement_fails_leaves_none_open(database: Database) -> None:
    with pytest.raises((sqlite3.OperationalError, asyncpg.UndefinedTableError)):
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO no_such_table (key) VALUES (?)", "k")
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", "k", "v")
    assert await database.get_meta("k") == "v"


async def test_statements_of_concurrent_callers_each_stand_alone(database: Database) -> None:
    """Fifty inserts at once, one of them a duplicate key: that one fails with the database's own error, and every
    other lands."""
    await database.execute("INSERT INTO meta (key, value) VALUES (?, ?)", "k7", "first")
    results = await asyncio.gather(
        *(database.execute("INSERT INTO meta (key, value) VALUES (?, ?)", f"k{n}", str(n)) for n in range(50)),
        return_exceptions=True,
    )
    assert isinstance(results[7], sqlite3.IntegrityError | asyncpg.UniqueViolationError)
    assert results[:7] + results[8:] == [1] * 49
    rows = await database.fetch_all("SELECT key, value FROM meta WHERE key LIKE 'k%'")
    assert {key: value for key, value in rows} == {f"k{n}": "first" if n == 7 else str(n) for n in range(50)}


async def test_statements_waiting_together_run_in_the_order_they_were_sent(tmp_path: Path) -> None:
    """Statements waiting for the connection run in turn, each alone: VACUUM, which no transaction may hold, too."""
    async with open_database(f"sqlite:///{tmp_path / 'order.db'}") as db:
        async with db.transaction() as tx:  # holds the connection: what follows waits in one line
            await tx.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
            line = [
                asyncio.ensure_future(db.execute("VACUUM")),
                asyncio.ensure_future(db.execute("UPDATE meta SET value = '2' WHERE key = 'a'")),
                asyncio.ensure_future(db.execute("VACUUM")),
                asyncio.ensure_future(db.fetch_value("SELECT value FROM meta WHERE key = 'a'")),
                asyncio.ensure_future(db.execute("DELETE FROM meta WHERE key = 'a'")),
                asyncio.ensure_future(db.fetch_value("SELECT COUNT(*) FROM meta WHERE key = 'a'")),
            ]
            await asyncio.sleep(0)  # one turn of the loop: every statement is in the line
        assert await asyncio.gather(*line) == [0, 1, 0, "2", 1, 0]


async def test_a_statement_after_the_database_closed_fails_instead_of_waiting(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'closed.db'}")
    await db.close()
    with pytest.raises(ValueError, match="no active connection"):  # aiosqlite's words
        await asyncio.wait_for(db.execute("INSERT INTO meta (key, value) VALUES ('a', '1')"), 10)


async def test_a_statement_whose_caller_was_cancelled_before_its_trip_is_never_run(tmp_path: Path) -> None:
    """The others in the line get their answers; the cancelled one's insert never happens."""
    async with open_database(f"sqlite:///{tmp_path / 'cancel.db'}") as db:
        async with db.transaction() as tx:  # holds the connection: what follows waits in one line
            await tx.execute("INSERT INTO meta (key, value) VALUES ('held', '1')")
            line = [
                asyncio.ensure_future(db.execute("INSERT INTO meta (key, value) VALUES (?, '1')", key))
                for key in ("a", "b", "c")
            ]
            await asyncio.sleep(0)
            line[1].cancel()
        assert (await line[0], await line[2]) == (1, 1)
        assert line[1].cancelled()
        assert [row[0] for row in await db.fetch_all("SELECT key FROM meta WHERE key IN ('a', 'b', 'c')")] == [
            "a",
            "c",
        ]


async def test_a_failed_statement_does_not_keep_the_arguments_of_the_others_in_its_trip(tmp_path: Path) -> None:
    """Its error carries no traceback from the trip: that would hold every other caller's arguments (pictures)."""
    async with open_database(f"sqlite:///{tmp_path / 'held.db'}") as db:
        await db.execute("INSERT INTO meta (key, value) VALUES ('taken', '1')")
        async with db.transaction() as tx:
            await tx.execute("SELECT 1")
            failing = asyncio.ensure_future(db.execute("INSERT INTO meta (key, value) VALUES ('taken', '2')"))
            other = asyncio.ensure_future(db.execute("INSERT INTO meta (key, value) VALUES ('big', ?)", "x" * 100))
            await asyncio.sleep(0)
        assert await other == 1
        with pytest.raises(sqlite3.IntegrityError) as raised:
            await failing
        frames = []
        traceback = raised.value.__traceback__
        while traceback is not None:
            frames.append(traceback.tb_frame)
            traceback = traceback.tb_next
        assert not any("x" * 100 in repr(frame.f_locals) for frame in frames)


async def test_sqlite_relative_path_creates_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_database("sqlite:///data/retouch.db") as db:
        assert await db.fetch_value("PRAGMA journal_mode") == "wal"
    assert (tmp_path / "data" / "retouch.db").is_file()


def test_unknown_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_database("mysql://localhost/retouch")


# ---------------------------------------------------------------------------------- rule order


async def test_rule_order(quota: QuotaStore) -> None:
    async def source() -> tuple[RuleSource, QuotaRule]:
        status = await quota.explain(GUILD, USER, [ROLE_A], now=T0)
        return status.source, status.rule

    assert await source() == (RuleSource("operator default"), QuotaRule(5, Period.DAY))
    await quota.set_default(GUILD, 20, Period.DAY)
    assert await source() == (RuleSource("server default"), QuotaRule(20, Period.DAY))
    await quota.set_role_rule(GUILD, ROLE_A, 2, Period.DAY)  # less generous than the default, still wins
    assert await source() == (RuleSource("role", ROLE_A), QuotaRule(2, Period.DAY))
    await quota.set_member_rule(GUILD, USER, 1, Period.HOUR)
    assert await source() == (RuleSource("member"), QuotaRule(1, Period.HOUR))
    # Rules of roles the member does not have, and of other servers, do not apply.
    await quota.set_role_rule(GUILD, ROLE_B, 100, Period.DAY)
    await quota.set_member_rule(GUILD + 1, OTHER_USER, 100, Period.DAY)
    assert (await quota.explain(GUILD, OTHER_USER, [ROLE_A], now=T0)).source == RuleSource("role", ROLE_A)


async def test_most_generous_role_wins(quota: QuotaStore) -> None:
    await quota.set_role_rule(GUILD, ROLE_A, 10, Period.DAY)  # 10/86400 s
    await quota.set_role_rule(GUILD, ROLE_B, 2, Period.HOUR)  # 48/86400 s: more generous
    status = await quota.explain(GUILD, USER, [ROLE_A, ROLE_B], now=T0)
    assert (status.source, status.limit) == (RuleSource("role", ROLE_B), 2)
    await quota.exempt(GUILD, "role", ROLE_A)  # exempt beats any limit
    status = await quota.explain(GUILD, USER, [ROLE_A, ROLE_B], now=T0)
    assert status.exempt and status.source == RuleSource("role", ROLE_A)
    assert status.source_label == f"exempt (role {ROLE_A})"


async def test_exempt_member_has_no_limit(quota: QuotaStore) -> None:
    await quota.exempt(GUILD, "member", USER)
    for _ in range(3):
        await quota.reserve(GUILD, USER, [], 10, now=T0)
    status = await quota.explain(GUILD, USER, [], now=T0)
    assert status.exempt and status.remaining is None and status.available is None
    assert status.source_label == "exempt (member)"


async def test_clear(quota: QuotaStore) -> None:
    await quota.set_member_rule(GUILD, USER, 1, Period.DAY)
    await quota.exempt(GUILD, "role", ROLE_A)
    assert await quota.clear(GUILD, "member", USER)
    assert not await quota.clear(GUILD, "member", USER)
    assert (await quota.explain(GUILD, USER, [ROLE_A], now=T0)).source == RuleSource("role", ROLE_A)
    assert await quota.clear(GUILD, "role", ROLE_A)
    assert (await quota.explain(GUILD, USER, [ROLE_A], now=T0)).source == RuleSource("operator default")


async def test_list_rules(quota: QuotaStore) -> None:
    await quota.set_member_rule(GUILD, USER, 1, Period.DAY)
    await quota.exempt(GUILD, "role", ROLE_A)
    await quota.set_default(GUILD, 3, Period.WEEK)
    rules = await quota.list_rules(GUILD)
    assert [(r.target_kind, r.target_id, str(r.rule)) for r in rules] == [
        ("default", None, "3/week"),
        ("role", ROLE_A, "no limit"),
        ("member", USER, "1/day"),
    ]


async def test_limits_are_validated(quota: QuotaStore) -> None:
    with pytest.raises(ValueError):
        await quota.set_default(GUILD, -1, Period.DAY)
    with pytest.raises(ValueError):
        await quota.reserve(GUILD, USER, [], 0)


# ------------------------------------------------------------------------------------- windows


async def test_rolling_window(quota: QuotaStore) -> None:
    await quota.set_default(GUILD, 3, Period.HOUR)
    first = await quota.reserve(GUILD, USER, [], 2, now=T0)
    await quota.settle(first.id, 2)
    await quota.reserve(GUILD, USER, [], 1, now=T0 + timedelta(minutes=30))
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, USER, [], 1, now=T0 + timedelta(minutes=59))
    status = refused.value.status
    assert (status.blocked_by, status.used, status.remaining) == ("member", 3, 0)
    assert status.next_free_at == T0 + timedelta(hours=1)
    # An hour after the first reservation its two images leave the window; the later one still counts.
    later = T0 + timedelta(hours=1, seconds=1)
    assert (await quota.explain(GUILD, USER, [], now=later)).remaining == 2
    await quota.reserve(GUILD, USER, [], 2, now=later)
    assert await reserve_or_none(quota, now=later) is None


async def test_explain_when_nothing_used(quota: QuotaStore) -> None:
    status = await quota.explain(GUILD, USER, [], now=T0)
    assert (status.used, status.limit, status.remaining, status.next_free_at, status.budget) == (0, 5, 5, None, None)


async def test_zero_limit_refuses_everything(quota: QuotaStore) -> None:
    await quota.set_member_rule(GUILD, USER, 0, Period.DAY)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, USER, [], 1, now=T0)
    assert refused.value.status.remaining == 0 and refused.value.status.next_free_at is None


# -------------------------------------------------------------------------------------- budget


async def test_budget_caps_the_server(quota: QuotaStore) -> None:
    await quota.set_default(GUILD, 10, Period.DAY)
    await quota.exempt(GUILD, "member", OTHER_USER)
    await quota.set_budget(GUILD, 6, Period.DAY)
    await quota.reserve(GUILD, USER, [], 4, now=T0)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, OTHER_USER, [], 3, now=T0)  # exempt members too
    status = refused.value.status
    assert status.blocked_by == "budget" and status.available == 2
    assert status.budget is not None
    assert (status.budget.used, status.budget.remaining) == (4, 2)
    assert status.budget.next_free_at == T0 + timedelta(days=1)
    await quota.reserve(GUILD, OTHER_USER, [], 2, now=T0)
    # Other servers are not affected.
    await quota.reserve(GUILD + 1, USER, [], 5, now=T0)
    assert await quota.get_budget(GUILD) == QuotaRule(6, Period.DAY)
    assert await quota.clear_budget(GUILD)
    assert not await quota.clear_budget(GUILD)
    await quota.reserve(GUILD, OTHER_USER, [], 3, now=T0)


async def test_member_limit_is_named_before_budget(quota: QuotaStore) -> None:
    await quota.set_member_rule(GUILD, USER, 1, Period.DAY)
    await quota.set_budget(GUILD, 1, Period.DAY)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, USER, [], 2, now=T0)
    assert refused.value.status.blocked_by == "member"


# --------------------------------------------------------------------------- settle and release


async def test_settle_keeps_delivered_and_returns_the_rest(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 4, now=T0)
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 4  # pending counts
    assert await quota.settle(reservation.id, 1)
    status = await quota.explain(GUILD, USER, [], now=T0 + timedelta(hours=1))
    assert status.used == 1
    assert status.next_free_at == T0 + timedelta(days=1)  # counted at the reservation's time
    assert not await quota.settle(reservation.id, 4)  # idempotent
    assert not await quota.release(reservation.id)
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 1


async def test_settle_never_keeps_more_than_reserved(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 2, now=T0)
    await quota.settle(reservation.id, 9)
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 2
    with pytest.raises(ValueError):
        await quota.settle(reservation.id, -1)


async def test_release_returns_everything(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 5, now=T0)
    assert await reserve_or_none(quota) is None
    assert await quota.release(reservation.id)
    assert not await quota.release(reservation.id)
    assert not await quota.settle(reservation.id, 5)
    status = await quota.explain(GUILD, USER, [], now=T0)
    assert (status.used, status.next_free_at) == (0, None)
    await quota.reserve(GUILD, USER, [], 5, now=T0)


async def test_reset_forgives_member_usage_but_not_budget(quota: QuotaStore) -> None:
    await quota.set_budget(GUILD, 8, Period.DAY)
    settled = await quota.reserve(GUILD, USER, [], 3, now=T0)
    await quota.settle(settled.id, 3)
    pending = await quota.reserve(GUILD, USER, [], 2, now=T0)
    assert await quota.reset(GUILD, USER, now=T0) == 5
    status = await quota.explain(GUILD, USER, [], now=T0)
    assert (status.used, status.remaining) == (0, 5)
    assert status.budget is not None and status.budget.used == 5
    await quota.settle(pending.id, 2)  # a forgiven reservation stays forgiven when it settles
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 0
    await quota.reserve(GUILD, USER, [], 3, now=T0)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, USER, [], 1, now=T0)
    assert refused.value.status.blocked_by == "budget"


async def test_reservation_at_exactly_next_free_at_succeeds(quota: QuotaStore) -> None:
    await quota.set_default(GUILD, 2, Period.HOUR)
    first = await quota.reserve(GUILD, USER, [], 2, now=T0)
    await quota.settle(first.id, 2)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, USER, [], 1, now=T0 + timedelta(minutes=59, seconds=59))
    free_at = refused.value.status.next_free_at
    assert free_at == T0 + timedelta(hours=1)
    # The member was told "from then on": at that very moment the images have left the window.
    assert (await quota.explain(GUILD, USER, [], now=free_at)).remaining == 2
    await quota.reserve(GUILD, USER, [], 2, now=free_at)


async def test_budget_frees_up_at_exactly_its_next_free_at(quota: QuotaStore) -> None:
    await quota.set_budget(GUILD, 2, Period.HOUR)
    first = await quota.reserve(GUILD, USER, [], 2, now=T0)
    await quota.settle(first.id, 2)
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(GUILD, OTHER_USER, [], 1, now=T0 + timedelta(minutes=30))
    assert refused.value.status.blocked_by == "budget"
    budget = refused.value.status.budget
    assert budget is not None and budget.next_free_at == T0 + timedelta(hours=1)
    await quota.reserve(GUILD, OTHER_USER, [], 2, now=budget.next_free_at)


async def test_between_roles_of_equal_rate_the_larger_limit_wins(quota: QuotaStore) -> None:
    await quota.set_role_rule(GUILD, ROLE_A, 1, Period.HOUR)  # 24 a day, one at a time
    await quota.set_role_rule(GUILD, ROLE_B, 24, Period.DAY)  # 24 a day, all at once if wanted
    for roles in ([ROLE_A, ROLE_B], [ROLE_B, ROLE_A]):
        status = await quota.explain(GUILD, USER, roles, now=T0)
        assert status.rule == QuotaRule(24, Period.DAY) and status.source == RuleSource("role", ROLE_B)


# ------------------------------------------------------------------------------- crash recovery


async def test_release_stale(quota: QuotaStore) -> None:
    old = await quota.reserve(GUILD, USER, [], 2, now=T0)
    recent = await quota.reserve(GUILD, USER, [], 1, now=T0 + timedelta(minutes=50))
    assert await quota.release_stale(3600, now=T0 + timedelta(hours=1, seconds=1)) == 1
    assert not await quota.release(old.id)
    assert await quota.release(recent.id)


async def test_release_stale_on_a_timer_returns_the_images_and_spares_the_rest(quota: QuotaStore) -> None:
    leaked = await quota.reserve(GUILD, USER, [], 3, now=T0)
    kept = await quota.reserve(GUILD, OTHER_USER, [], 2, now=T0)
    await quota.settle(kept.id, 2)
    edge = await quota.reserve(GUILD, OTHER_USER, [], 1, now=T0 + timedelta(minutes=10))
    # Exactly the threshold old is not stale yet; a second more is.
    assert await quota.release_stale(600, now=T0 + timedelta(minutes=20)) == 1
    assert await quota.release_stale(600, now=T0 + timedelta(minutes=20)) == 0  # each is released once
    assert (await quota.explain(GUILD, USER, [], now=T0 + timedelta(minutes=20))).used == 0
    assert (await quota.explain(GUILD, OTHER_USER, [], now=T0 + timedelta(minutes=20))).used == 3
    # A late settle still charges what was delivered: the pictures are out, whoever returned the reservation.
    assert await quota.settle(leaked.id, 3)
    assert (await quota.explain(GUILD, USER, [], now=T0 + timedelta(minutes=20))).used == 3
    assert await quota.release_stale(600, now=T0 + timedelta(minutes=20, seconds=1)) == 1
    assert not await quota.release(edge.id)


async def test_release_stale_takes_any_process_reservations(database_url: str) -> None:
    async with open_database(database_url) as other, open_database(database_url) as db:
        await QuotaStore(other, QuotaRule(5, Period.DAY)).reserve(GUILD, USER, [], 4, now=T0)
        quota = QuotaStore(db, QuotaRule(5, Period.DAY))
        assert await quota.release_stale(now=T0 + timedelta(hours=2)) == 0  # live processes' edits may wait long
        assert await quota.release_stale(now=T0 + timedelta(seconds=DEFAULT_STALE_AFTER_SECONDS + 1)) == 1
        assert (await quota.explain(GUILD, USER, [], now=T0 + timedelta(hours=4))).used == 0


async def test_release_orphaned_returns_reservations_of_a_stopped_process(database_url: str) -> None:
    async with open_database(database_url) as crashed:
        await QuotaStore(crashed, QuotaRule(5, Period.DAY)).reserve(GUILD, USER, [], 4)
    async with open_database(database_url) as db:
        quota = QuotaStore(db, QuotaRule(5, Period.DAY))
        mine = await quota.reserve(GUILD, OTHER_USER, [], 1)
        assert (await quota.explain(GUILD, USER, [])).used == 4
        assert await quota.release_orphaned() == 1
        assert (await quota.explain(GUILD, USER, [])).used == 0
        assert await quota.release(mine.id)  # this process's own reservation was left alone


async def test_release_orphaned_spares_running_processes(postgres_url: str) -> None:
    async with open_database(postgres_url) as running, open_database(postgres_url) as starting:
        await QuotaStore(running, QuotaRule(5, Period.DAY)).reserve(GUILD, USER, [], 4)
        quota = QuotaStore(starting, QuotaRule(5, Period.DAY))
        assert await quota.release_orphaned() == 0
        assert (await quota.explain(GUILD, USER, [])).used == 4


async def test_a_terminated_liveness_session_takes_its_lock_again_and_keeps_its_reservations(postgres_url: str) -> None:
    # An idle timeout, a failover or an operator's pg_terminate_backend drops the connection that proves the
    # process alive; the process lives on and must not lose its reservations to another's sweep.
    async with open_database(postgres_url) as live, open_database(postgres_url) as other:
        mine = QuotaStore(live, QuotaRule(2, Period.DAY))
        reservation = await mine.reserve(GUILD, USER, [], 2)
        [pid] = await liveness_backends(other, live.instance_id)
        assert await other.fetch_value("SELECT pg_terminate_backend(?)", pid)

        async def taken_again() -> bool:
            backends = await liveness_backends(other, live.instance_id)
            return bool(backends) and pid not in backends and await other.instance_alive(live.instance_id)

        await until(taken_again, 10, "the process to take its liveness lock again")
        sweeper = QuotaStore(other, QuotaRule(2, Period.DAY))
        assert await sweeper.release_orphaned() == 0
        assert await mine.settle(reservation.id, 2)
        assert (await mine.explain(GUILD, USER, [])).used == 2
        await mine.reserve(GUILD, OTHER_USER, [], 1)  # and it reserves again


async def test_delivered_images_are_charged_even_when_a_sweep_returned_their_reservation(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 3, now=T0)
    later = T0 + timedelta(hours=1)
    assert await quota.release_stale(60, now=later) == 1
    assert (await quota.explain(GUILD, USER, [], now=later)).used == 0
    assert await quota.settle(reservation.id, 2)
    assert (await quota.explain(GUILD, USER, [], now=later)).used == 2
    assert not await quota.settle(reservation.id, 2)  # charged once
    assert not await quota.release(reservation.id)
    assert (await quota.explain(GUILD, USER, [], now=later)).used == 2


async def test_a_stopped_process_is_swept_only_once_found_stopped_for_the_grace(database_url: str) -> None:
    async with open_database(database_url) as crashed:
        await QuotaStore(crashed, QuotaRule(5, Period.DAY)).reserve(GUILD, USER, [], 4)
    async with open_database(database_url) as db:
        quota = QuotaStore(db, QuotaRule(5, Period.DAY))
        assert await quota.release_orphaned(10, now=T0) == 0  # first found stopped: it may be reconnecting
        assert await quota.release_orphaned(10, now=T0 + timedelta(seconds=9)) == 0
        assert (await quota.explain(GUILD, USER, [])).used == 4
        assert await quota.release_orphaned(10, now=T0 + timedelta(seconds=10)) == 1
        assert (await quota.explain(GUILD, USER, [])).used == 0


async def test_settling_outlasts_a_database_that_is_unreachable_for_a_while(postgres_url: str) -> None:
    # Pictures already delivered while the database is away are charged once it is back, not lost.
    parts = urlsplit(postgres_url)
    async with CuttableProxy(parts.port or 5432) as proxy:
        proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        async with open_database(proxied) as db, open_database(postgres_url) as direct:
            quota = QuotaStore(db, QuotaRule(5, Period.DAY))
            reservation = await quota.reserve(GUILD, USER, [], 3)
            proxy.cut()
            settling = asyncio.create_task(quota.settle(reservation.id, 2))
            await until(lambda: proxy.refused >= 2, 20, "the settle to be refused while the database is away")
            assert not settling.done()
            proxy.restore()
            assert await asyncio.wait_for(settling, 30)
            assert (await QuotaStore(direct, QuotaRule(5, Period.DAY)).explain(GUILD, USER, [])).used == 2
            await until(lambda: db.instance_alive(db.instance_id), 10, "the liveness lock to be held again")
            await until(lambda: direct.instance_alive(db.instance_id), 10, "the liveness lock to be held again")


async def test_a_process_is_alive_to_itself_and_a_closed_one_is_not(postgres_url: str) -> None:
    async with open_database(postgres_url) as running:
        assert await running.instance_alive(running.instance_id)
        async with open_database(postgres_url) as other:
            assert await running.instance_alive(other.instance_id)
        assert not await running.instance_alive(other.instance_id)
        assert not await running.instance_alive(other.instance_id)  # asking took nothing for good


async def test_scrubbing_gives_way_only_when_a_reader_holds_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "retouch.db"
    async with open_database(f"sqlite:///{path}") as db:
        await db.set_meta("note", "first")
        await db.scrub("meta")  # nobody reads: the log is emptied
        reader = sqlite3.connect(path)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT * FROM meta").fetchall()  # an open read keeps the log's pages
            await db.set_meta("note", "second")
            with pytest.raises(ScrubBusy) as busy:
                await db.scrub("meta")
        finally:
            reader.close()
    assert str(busy.value) == f"a reader is holding the write-ahead log of {path}"


# What a reservation enforces is what /quota explains: on PostgreSQL the choice of rule is made again in SQL
# (migration 11), so every way of choosing is tried on both databases. Each case: the store's setup, the
# member's roles, and how many one-image reservations succeed (None: more than any limit set here).
ENFORCED_CASES = {
    "the operator's default": ([], [], 5),
    "the server's default": ([("default", 3, Period.DAY)], [], 3),
    "a role's rule, lower than the default": (
        [("default", 9, Period.DAY), ("role", ROLE_A, 2, Period.DAY)],
        [ROLE_A],
        2,
    ),
    "a role the member lacks": ([("role", ROLE_A, 2, Period.DAY)], [ROLE_B], 5),
    "the most images per second": (
        [("role", ROLE_A, 10, Period.DAY), ("role", ROLE_B, 2, Period.HOUR)],
        [ROLE_A, ROLE_B],
        2,
    ),
    "on a tie, the larger limit": (
        [("role", ROLE_A, 1, Period.HOUR), ("role", ROLE_B, 24, Period.DAY)],
        [ROLE_B, ROLE_A],
        24,
    ),
    "an exempt role over any limit": (
        [("role", ROLE_A, 2, Period.HOUR), ("role exempt", ROLE_B)],
        [ROLE_A, ROLE_B],
        None,
    ),
    "the member's own rule over an exempt role": (
        [("member", 4, Period.DAY), ("role exempt", ROLE_A)],
        [ROLE_A],
        4,
    ),
    "a limit of nothing": ([("member", 0, Period.DAY)], [], 0),
    "an exempt member under the server's budget": ([("member exempt",), ("budget", 3, Period.DAY)], [], 3),
    "the budget below the member's rule": ([("default", 6, Period.WEEK), ("budget", 2, Period.MONTH)], [], 2),
}


async def _apply(quota: QuotaStore, step: tuple, guild: int = GUILD) -> None:
    match step:
        case ("default", limit, period):
            await quota.set_default(guild, limit, period)
        case ("role", role, limit, period):
            await quota.set_role_rule(guild, role, limit, period)
        case ("role exempt", role):
            await quota.exempt(guild, "role", role)
        case ("member", limit, period):
            await quota.set_member_rule(guild, USER, limit, period)
        case ("member exempt",):
            await quota.exempt(guild, "member", USER)
        case ("budget", limit, period):
            await quota.set_budget(guild, limit, period)


async def granted_in_a_row(quota: QuotaStore, guild: int, roles: list[int], most: int = 30) -> int:
    for granted in range(most):
        try:
            await quota.reserve(guild, USER, roles, 1, now=T0)
        except QuotaExceeded:
            return granted
    return most


@pytest.mark.parametrize("case", list(ENFORCED_CASES))
async def test_a_reservation_enforces_the_rule_quota_explains(quota: QuotaStore, case: str) -> None:
    steps, roles, expected = ENFORCED_CASES[case]
    for step in steps:
        await _apply(quota, step)
    available = (await quota.explain(GUILD, USER, roles, now=T0)).available
    assert available == expected
    assert await granted_in_a_row(quota, GUILD, roles) == (30 if expected is None else expected)


async def test_reservations_sharing_trips_each_get_their_own_members_rule(quota: QuotaStore) -> None:
    """Every way of choosing at once, one server each, 12 reservations of each sent together: they share trips
    (on PostgreSQL, calls of one function), and each server grants what its own rule allows."""
    guilds = {case: GUILD + n for n, case in enumerate(ENFORCED_CASES)}
    for case, guild in guilds.items():
        for step in ENFORCED_CASES[case][0]:
            await _apply(quota, step, guild)

    async def granted(guild: int, roles: list[int]) -> bool:
        try:
            await quota.reserve(guild, USER, roles, 1, now=T0)
        except QuotaExceeded:
            return False
        return True

    asked = [(case, guild) for case, guild in guilds.items() for _ in range(12)]
    answers = await asyncio.gather(*(granted(guild, ENFORCED_CASES[case][1]) for case, guild in asked))
    counts = {case: 0 for case in guilds}
    for (case, _), answer in zip(asked, answers, strict=True):
        counts[case] += answer
    assert counts == {
        case: 12 if expected is None else min(expected, 12) for case, (_, _, expected) in ENFORCED_CASES.items()
    }


async def test_personal_use_enforces_the_operators_personal_rule_and_budget(database: Database) -> None:
    quota = QuotaStore(
        database,
        QuotaRule(5, Period.DAY),
        personal_rule=QuotaRule(3, Period.DAY),
        personal_budget=QuotaRule(4, Period.DAY),
    )
    assert await granted_in_a_row(quota, PERSONAL, []) == 3
    other = await quota.reserve(PERSONAL, OTHER_USER, [], 1, now=T0)  # the fourth of the personal budget
    assert other.count == 1
    with pytest.raises(QuotaExceeded) as refused:
        await quota.reserve(PERSONAL, OTHER_USER, [], 1, now=T0)
    assert refused.value.status.blocked_by == "budget"


# --------------------------------------------------------------------------------- concurrency


async def test_concurrent_reservations_never_exceed_the_limit(quota: QuotaStore) -> None:
    await quota.set_member_rule(GUILD, USER, 10, Period.DAY)
    results = await asyncio.gather(*(reserve_or_none(quota) for _ in range(200)))
    assert sum(r is not None for r in results) == 10
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 10


async def test_concurrent_reservations_never_exceed_the_budget(quota: QuotaStore) -> None:
    await quota.set_budget(GUILD, 10, Period.DAY)
    results = await asyncio.gather(*(reserve_or_none(quota, user=USER + n % 20) for n in range(200)))
    assert sum(r is not None for r in results) == 10


async def test_a_reservation_waits_for_the_members_lock_then_counts_what_its_holder_committed(
    postgres_url: str,
) -> None:
    """Another process holds the member's lock and commits the last images of the limit while a reservation waits:
    the reservation must judge by what was committed once it has the lock, not by what it saw when it asked."""
    at = T0.timestamp()
    async with open_database(postgres_url) as db:
        quota = QuotaStore(db, QuotaRule(0, Period.DAY))
        await quota.set_member_rule(GUILD, USER, 3, Period.DAY)
        holder = await asyncpg.connect(postgres_url)
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("SELECT pg_advisory_xact_lock($1)", lock_key(f"quota:{GUILD}:{USER}"))
            await holder.execute(
                "INSERT INTO quota_usage (guild_id, user_id, created_at, created_day, reserved, images, status,"
                " instance_id) VALUES ($1, $2, $3, $4, 3, 3, 'pending', $5)",
                GUILD,
                USER,
                at,
                int(at // 86_400),
                db.instance_id,
            )
            reserving = asyncio.ensure_future(reserve_or_none(quota))
            await until(
                lambda: holder.fetchval("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
                what="the reservation waiting for the member's lock",
            )
            await transaction.commit()
            assert await reserving is None
            assert (await quota.explain(GUILD, USER, [], now=T0)).used == 3
        finally:
            await holder.close()


async def test_two_processes_locking_the_same_members_in_opposite_orders_never_deadlock(postgres_url: str) -> None:
    """Each process's trip locks many members and the server's budget; the other's trips lock the same names, asked
    in the opposite order. Every reservation is answered (PostgreSQL would break a cycle by failing one), and the
    budget holds across both."""
    async with open_database(postgres_url) as first_db, open_database(postgres_url) as second_db:
        first, second = (
            QuotaStore(first_db, QuotaRule(100, Period.DAY)),
            QuotaStore(second_db, QuotaRule(100, Period.DAY)),
        )
        await first.set_budget(GUILD, 150, Period.DAY)
        members = [USER + n for n in range(20)]

        async def reserve(store: QuotaStore, user: int) -> bool:
            try:
                await store.reserve(GUILD, user, [], 1, now=T0)
            except QuotaExceeded:
                return False
            return True

        rounds = [
            asyncio.gather(
                *(reserve(first, user) for user in members), *(reserve(second, user) for user in members[::-1])
            )
            for _ in range(5)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*rounds), 60)
        assert sum(sum(round_answers) for round_answers in answers) == 150
        assert (await first.explain(GUILD, USER, [], now=T0)).budget == BudgetStatus(
            QuotaRule(150, Period.DAY), 150, 0, T0 + timedelta(days=1)
        )


async def test_settlements_sharing_a_trip_each_keep_their_own_delivered(quota: QuotaStore) -> None:
    """Settled at once, each keeps what it delivered (never more than it reserved); a reservation settled twice in
    the same trip is settled by the first call only."""
    reservations = [await quota.reserve(GUILD, USER + n, [], 3, now=T0) for n in range(6)]
    delivered = [0, 1, 2, 3, 5, 2]
    answers = await asyncio.gather(
        *(quota.settle(r.id, d) for r, d in zip(reservations, delivered, strict=True)),
        quota.settle(reservations[0].id, 3),
    )
    assert answers == [True] * 6 + [False]
    used = [(await quota.explain(GUILD, USER + n, [], now=T0)).used for n in range(6)]
    assert used == [0, 1, 2, 3, 3, 2]


async def test_two_processes_share_one_limit(postgres_url: str) -> None:
    limit, attempts_per_worker = 25, 100
    async with open_database(postgres_url) as db:
        await QuotaStore(db, QuotaRule(0, Period.DAY)).set_member_rule(GUILD, USER, limit, Period.DAY)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests._reserve_worker",
            postgres_url,
            str(GUILD),
            str(USER),
            str(attempts_per_worker),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        for _ in range(2)
    ]
    for worker in workers:  # both connected before either reserves, so their reservations overlap
        assert worker.stdout is not None
        ready = await asyncio.wait_for(worker.stdout.readline(), 60)
        assert ready == b"ready\n", (ready, await worker.stderr.read() if worker.stderr else b"")
    answers = await asyncio.gather(*(worker.communicate(b"go\n") for worker in workers))
    granted = []
    for worker, (out, err) in zip(workers, answers, strict=True):
        assert worker.returncode == 0, err.decode()
        granted.append(int(out))
    assert sum(granted) == limit
    async with open_database(postgres_url) as db:
        assert (await QuotaStore(db, QuotaRule(0, Period.DAY)).explain(GUILD, USER, [])).used == limit


# -------------------------------------------------------------------------------------- report


async def test_usage_report(quota: QuotaStore) -> None:
    await quota.exempt(GUILD, "role", ROLE_A)
    day = timedelta(days=1)
    for user, count, at in [(USER, 3, T0 - 2 * day), (USER, 2, T0), (OTHER_USER, 4, T0), (OTHER_USER, 1, T0 - 9 * day)]:
        reservation = await quota.reserve(GUILD, user, [ROLE_A], count, now=at)
        await quota.settle(reservation.id, count)
    await quota.reserve(GUILD, USER, [ROLE_A], 5, now=T0)  # pending: not a kept image
    released = await quota.reserve(GUILD, USER, [ROLE_A], 5, now=T0)
    await quota.release(released.id)
    elsewhere = await quota.reserve(GUILD + 1, USER, [], 1, now=T0)  # another server's usage
    await quota.settle(elsewhere.id, 1)

    report = await quota.usage_report(GUILD, 7, now=T0)
    today = date(2025, 3, 1)
    assert report.days == tuple(today - timedelta(days=n) for n in range(6, -1, -1))
    assert report.images_by_day == {today - 2 * day: {USER: 3}, today: {USER: 2, OTHER_USER: 4}}
    assert report.top_users == ((USER, 5), (OTHER_USER, 4))
    assert report.total == 9
    assert report.daily_totals[-1] == (today, 6)
    with pytest.raises(ValueError):
        await quota.usage_report(GUILD, 0)


# ------------------------------------------------------------------------------------ settings


async def test_settings_defaults(database: Database) -> None:
    assert await SettingsStore(database).get(GUILD) == GuildSettings()


async def test_settings_persist(database_url: str) -> None:
    async with open_database(database_url) as db:
        store = SettingsStore(db)
        updated = await store.update(GUILD, max_count=4, audit_channel_id=555, remixing_enabled=False)
        assert (updated.max_count, updated.audit_channel_id, updated.remixing_enabled) == (4, 555, False)
        await store.update(GUILD, auto_long_side=768)  # the others stay as they were
        assert await store.add_blocked(GUILD, "Bad  Word")
        assert not await store.add_blocked(GUILD, "bad word")
        assert await store.allow_channel(GUILD, 77)
        assert not await store.allow_channel(GUILD, 77)
    async with open_database(database_url) as db:
        settings = await SettingsStore(db).get(GUILD)
    assert settings == GuildSettings(
        allowed_channel_ids=frozenset({77}),
        max_count=4,
        auto_long_side=768,
        blocklist=("bad word",),
        audit_channel_id=555,
        remixing_enabled=False,
    )
    assert settings.channel_allowed(77) and not settings.channel_allowed(78)


async def test_settings_cache_is_invalidated_on_write(database: Database) -> None:
    store = SettingsStore(database, cache_ttl=3600)
    assert (await store.get(GUILD)).blocklist == ()
    await store.add_blocked(GUILD, "spam")
    assert (await store.get(GUILD)).blocklist == ("spam",)
    assert await store.remove_blocked(GUILD, "SPAM")
    assert not await store.remove_blocked(GUILD, "spam")
    await store.allow_channel(GUILD, 9)
    assert (await store.get(GUILD)).allowed_channel_ids == {9}
    assert await store.disallow_channel(GUILD, 9)
    assert not await store.disallow_channel(GUILD, 9)
    assert await store.get(GUILD) == GuildSettings()
    await store.update(GUILD, audit_channel_id=12)
    await store.update(GUILD, audit_channel_id=None)
    assert (await store.get(GUILD)).audit_channel_id is None


async def test_settings_are_validated(database: Database) -> None:
    store = SettingsStore(database)
    with pytest.raises(ValueError, match="max_count"):
        await store.update(GUILD, max_count=11)
    with pytest.raises(ValueError, match="auto_long_side"):
        await store.update(GUILD, auto_long_side=4096)
    with pytest.raises(ValueError, match="blocklist"):
        await store.update(GUILD, blocklist=("x",))
    with pytest.raises(ValueError):
        await store.add_blocked(GUILD, "   ")


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a class photo", None),
        ("what an ASS!", "ass"),
        ("assassin", None),
        ("a Bad   Word here", "bad word"),
        ("badword", None),
        ("", None),
    ],
)
def test_find_blocked(prompt: str, expected: str | None) -> None:
    assert find_blocked(prompt, ("ass", "bad word")) == expected


def test_find_blocked_with_punctuated_phrases() -> None:
    assert find_blocked("say f*ck now", ("f*ck",)) == "f*ck"
    assert find_blocked("c++ code", ("c++",)) == "c++"
    assert find_blocked("anything", ()) is None


@pytest.mark.parametrize(
    "prompt",
    [
        "make her ｎｕｄｅ",  # fullwidth letters
        "make her n\u200bude",  # a zero-width space inside the word
        "make her nu\u200dde",  # a zero-width joiner
        "make her nüde",  # an accent, precomposed
        "make her nu\u0308de",  # an accent, as a combining mark
        "make her NÚDE!",
    ],
)
def test_find_blocked_sees_through_disguises(prompt: str) -> None:
    assert find_blocked(prompt, ("nude",)) == "nude"


def test_find_blocked_folds_the_blocklist_too() -> None:
    assert find_blocked("make her nude", ("Ｎüde",)) == "Ｎüde"
    assert find_blocked("strasse", ("Straße",)) == "Straße"  # casefold, not lower: ß is ss


@pytest.mark.parametrize("prompt", ["denuded hills", "ｄｅｎｕｄｅｄ hills", "de\u200bnüded hills", "nudes"])
def test_find_blocked_still_needs_whole_words(prompt: str) -> None:
    assert find_blocked(prompt, ("nude",)) is None


# ------------------------------------------------------------------- pins found by mutation testing


@pytest.mark.parametrize(
    ("limit", "period", "words"),
    [
        (None, Period.DAY, "an exempt rule has no period"),
        (-1, Period.DAY, "a limit must be a whole number of images ≥ 0 with a period"),
        (5, None, "a limit must be a whole number of images ≥ 0 with a period"),
    ],
)
def test_quota_rule_refuses_nonsense_in_words(limit, period, words) -> None:
    with pytest.raises(ValueError) as refused:
        QuotaRule(limit, period)
    assert str(refused.value) == words


def test_parse_quota_words() -> None:
    with pytest.raises(ValueError) as refused:
        parse_quota("-2/day")
    assert str(refused.value) == "'-2/day': the limit must be 0 or more images"
    with pytest.raises(ValueError) as refused:
        parse_quota("3/fortnight")
    assert str(refused.value) == "'3/fortnight': unknown period 'fortnight' (use one of hour, day, week, month)"


def status_with(remaining: int | None, budget_remaining: int | None):
    budget = None
    if budget_remaining is not None:
        budget = BudgetStatus(QuotaRule(10, Period.DAY), 10 - budget_remaining, budget_remaining, None)
    return QuotaStatus(QuotaRule(5, Period.DAY), RuleSource("member"), 0, 5, remaining, None, budget)


def test_blocking_limit_at_the_boundaries() -> None:
    assert status_with(3, None).blocking_limit(3) is None  # exactly what is left fits
    assert status_with(3, None).blocking_limit(4) == "member"
    assert status_with(None, 2).blocking_limit(2) is None
    assert status_with(None, 2).blocking_limit(3) == "budget"
    assert status_with(5, 2).blocking_limit(3) == "budget"
    assert status_with(1, 0).blocking_limit(2) == "member"  # the member's limit is named first


def test_quota_exceeded_says_what_was_asked() -> None:
    refused = QuotaExceeded(replace(status_with(1, None), blocked_by="member"), 3)
    assert refused.requested == 3
    assert str(refused) == "3 image(s) requested, 1 available (limit: member)"


async def test_reservation_says_who_how_many_and_when(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 2, now=T0)
    assert (reservation.guild_id, reservation.user_id, reservation.count, reservation.created_at) == (
        GUILD,
        USER,
        2,
        T0,
    )
    with pytest.raises(ValueError, match=r"^a reservation is for 1 or more images$"):
        await quota.reserve(GUILD, USER, [], 0, now=T0)


async def test_a_naive_time_is_utc(quota: QuotaStore) -> None:
    await quota.reserve(GUILD, USER, [], 2, now=T0.replace(tzinfo=None))
    status = await quota.explain(GUILD, USER, [], now=T0)
    assert status.used == 2 and status.next_free_at == T0 + timedelta(days=1)


async def test_settle_of_nothing_returns_everything(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 3, now=T0)
    assert await quota.settle(reservation.id, 0)
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 0
    with pytest.raises(ValueError, match=r"^delivered must be 0 or more images$"):
        await quota.settle(reservation.id, -1)


async def test_settle_keeps_no_more_than_was_reserved(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 2, now=T0)
    assert await quota.settle(reservation.id, 5)
    assert (await quota.explain(GUILD, USER, [], now=T0)).used == 2
    assert (await quota.usage_report(GUILD, 1, now=T0)).total == 2


async def test_a_released_reservation_is_not_reported_as_kept(quota: QuotaStore) -> None:
    reservation = await quota.reserve(GUILD, USER, [], 2, now=T0)
    assert await quota.release(reservation.id)
    assert not await quota.settle(reservation.id, 2)
    assert (await quota.usage_report(GUILD, 1, now=T0)).total == 0
    stale = await quota.reserve(GUILD, USER, [], 2, now=T0)
    await quota.release_stale(60, now=T0 + timedelta(minutes=5))
    assert (await quota.usage_report(GUILD, 1, now=T0)).total == 0
    assert await quota.settle(stale.id, 1)  # swept, then delivered after all: kept and reported
    assert (await quota.usage_report(GUILD, 1, now=T0)).total == 1


async def test_usage_report_defaults_to_a_week_and_the_top_ten(quota: QuotaStore) -> None:
    await quota.exempt(GUILD, "role", ROLE_A)
    for user in range(12):
        reservation = await quota.reserve(GUILD, 5000 + user, [ROLE_A], 1 + user % 3, now=T0 - timedelta(days=user))
        await quota.settle(reservation.id, 1 + user % 3)
    report = await quota.usage_report(GUILD, now=T0)
    assert len(report.days) == 7 and report.days[-1] == date(2025, 3, 1)
    assert report.total == sum(1 + user % 3 for user in range(7))
    # Most first, then by user id: of the seven users in the week, 5002 and 5005 kept 3 each.
    assert report.top_users[:3] == ((5002, 3), (5005, 3), (5001, 2))
    wide = await quota.usage_report(GUILD, 30, now=T0)
    assert len(wide.top_users) == 10 and wide.top_users[-2:] == ((5000, 1), (5003, 1))
    assert (await quota.usage_report(GUILD, 1, now=T0)).days == (date(2025, 3, 1),)


async def test_list_rules_orders_roles_and_members_by_id(quota: QuotaStore) -> None:
    await quota.set_role_rule(GUILD, ROLE_B, 1, Period.DAY)
    await quota.set_role_rule(GUILD, ROLE_A, 2, Period.DAY)
    await quota.set_member_rule(GUILD, OTHER_USER, 3, Period.DAY)
    await quota.set_member_rule(GUILD, USER, 4, Period.DAY)
    await quota.set_default(GUILD, 5, Period.DAY)
    await quota.set_default(GUILD, 6, Period.DAY)  # replaces the default, not a second one
    rules = await quota.list_rules(GUILD)
    assert [(r.target_kind, r.target_id, r.rule.limit) for r in rules] == [
        ("default", None, 6),
        ("role", ROLE_A, 2),
        ("role", ROLE_B, 1),
        ("member", USER, 4),
        ("member", OTHER_USER, 3),
    ]
    assert await quota.clear(GUILD, "role", ROLE_A) and not await quota.clear(GUILD, "role", ROLE_A)
    assert [r.target_id for r in await quota.list_rules(GUILD)] == [None, ROLE_B, USER, OTHER_USER]
