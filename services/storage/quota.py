"""Image quotas: rules per server, role and member, a server-wide budget, and atomic reservations.

Quota is counted in images, not commands. Before an upstream call the caller reserves `count`
images (`reserve`); afterwards it keeps what was delivered (`settle`) or returns everything
(`release`). Pending reservations count against every limit, which is what makes concurrent
reservations safe. Windows are rolling: an image counts for one period after it was reserved.

Which rule applies to a member: the member's own rule, else the most generous rule among the
member's roles, else the server default, else the operator's default (`DEFAULT_QUOTA`). The server
budget, if set, caps the whole server on top of that, exempt members included.

Where no server's rules apply, a member's usage is counted under `PERSONAL` with the operator's
`PERSONAL_QUOTA`, and all personal use together under `PERSONAL_BUDGET`.

Crash recovery: each reservation records the `instance_id` of the process that made it (see
`Database.instance_alive`). `release_orphaned()`, run at start-up and every few seconds on PostgreSQL,
returns the pending reservations of processes that are no longer running, so processes sharing
PostgreSQL never release each other's live reservations. `release_stale()` is the backstop for
anything a live process leaked. What a sweep returns is marked 'swept', not 'released': a process
that only looked dead (its liveness connection dropped for longer than the grace) still charges what it
delivered when it settles.
"""

from __future__ import annotations

import enum
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from services.storage.database import Database, Executor, Row, lock_key, outlast
from services.storage.trips import SharedTrips

log = logging.getLogger(__name__)

TargetKind = Literal["role", "member"]
LimitName = Literal["member", "budget"]

_SECONDS_PER_DAY = 86_400
# The ledger's "server" for personal use, where no server's rules apply (a user install's DMs, group DMs and
# servers without the bot): no guild has snowflake 0, and its budget is the operator's PERSONAL_BUDGET.
PERSONAL = 0
# A reservation still pending after this long belongs to a call that can no longer be running: the
# longest wait in a full line (100 edits of 10 images at 10 images a minute: 100 minutes) and the longest
# upstream call with its retries fit well inside it.
DEFAULT_STALE_AFTER_SECONDS = 3 * 3_600.0
# How long settling (or returning) a reservation keeps trying while the database is unreachable: a
# restart or failover takes seconds, and images already delivered must be charged once it is back.
SETTLE_PATIENCE_SECONDS = 300.0


class Period(enum.Enum):
    """A rolling window."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def seconds(self) -> int:
        return _PERIOD_SECONDS[self]


_PERIOD_SECONDS = {Period.HOUR: 3_600, Period.DAY: 86_400, Period.WEEK: 7 * 86_400, Period.MONTH: 30 * 86_400}
_LONGEST_PERIOD_SECONDS = max(_PERIOD_SECONDS.values())


@dataclass(frozen=True)
class QuotaRule:
    """`limit` images per rolling `period`; a `limit` of None means no limit (exempt)."""

    limit: int | None
    period: Period | None = None

    def __post_init__(self) -> None:
        if self.limit is None and self.period is not None:
            raise ValueError("an exempt rule has no period")
        if self.limit is not None and (self.limit < 0 or self.period is None):
            raise ValueError("a limit must be a whole number of images ≥ 0 with a period")

    @classmethod
    def exempt(cls) -> QuotaRule:
        return cls(None)

    @property
    def is_exempt(self) -> bool:
        return self.limit is None

    @property
    def generosity(self) -> tuple[float, int]:
        """Sort key, larger is more generous: images per second, then the larger burst on a tie."""
        if self.limit is None or self.period is None:
            return (float("inf"), 0)
        return (self.limit / self.period.seconds, self.limit)

    def __str__(self) -> str:
        return "no limit" if self.limit is None or self.period is None else f"{self.limit}/{self.period.value}"


_QUOTA_PATTERN = re.compile(r"\s*(?P<limit>-?\d+)\s*(?:/|per\s+)\s*(?P<period>[a-z]+)\s*", re.IGNORECASE)


def parse_quota(text: str) -> QuotaRule:
    """`"10/day"` → QuotaRule(10, Period.DAY). Raises ValueError saying what is wrong."""
    match = _QUOTA_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not images/period, such as 10/day")
    limit = int(match["limit"])
    if limit < 0:
        raise ValueError(f"{text!r}: the limit must be 0 or more images")
    period_name = match["period"].lower()
    try:
        period = Period(period_name)
    except ValueError:
        choices = ", ".join(p.value for p in Period)
        raise ValueError(f"{text!r}: unknown period {period_name!r} (use one of {choices})") from None
    return QuotaRule(limit, period)


@dataclass(frozen=True)
class RuleSource:
    """Where the applying rule came from."""

    kind: Literal["member", "role", "server default", "operator default", "personal"]
    role_id: int | None = None

    def __str__(self) -> str:
        return f"role {self.role_id}" if self.kind == "role" else self.kind


@dataclass(frozen=True)
class BudgetStatus:
    """The server budget's own window."""

    rule: QuotaRule
    used: int
    remaining: int
    next_free_at: datetime | None


@dataclass(frozen=True)
class QuotaStatus:
    """What applies to one member right now. `remaining` None means unlimited (before the budget)."""

    rule: QuotaRule
    source: RuleSource
    used: int
    limit: int | None
    remaining: int | None
    next_free_at: datetime | None
    budget: BudgetStatus | None
    # Set on the status carried by QuotaExceeded: the limit that refused the reservation.
    blocked_by: LimitName | None = None

    @property
    def exempt(self) -> bool:
        return self.rule.is_exempt

    @property
    def source_label(self) -> str:
        """E.g. "role 123", "server default", or "exempt (member)"."""
        return f"exempt ({self.source})" if self.exempt else str(self.source)

    @property
    def available(self) -> int | None:
        """Images the member can still reserve, under both the member limit and the budget."""
        budget_remaining = self.budget.remaining if self.budget is not None else None
        candidates = [n for n in (self.remaining, budget_remaining) if n is not None]
        return min(candidates) if candidates else None

    def blocking_limit(self, count: int) -> LimitName | None:
        """Which limit would refuse `count` more images, if any (the member's is named first)."""
        if self.remaining is not None and count > self.remaining:
            return "member"
        if self.budget is not None and count > self.budget.remaining:
            return "budget"
        return None


class QuotaExceeded(Exception):
    """A reservation did not fit; `status.blocked_by` says whether the member limit or the budget refused it."""

    def __init__(self, status: QuotaStatus, requested: int) -> None:
        self.status = status
        self.requested = requested
        super().__init__(f"{requested} image(s) requested, {status.available} available (limit: {status.blocked_by})")


@dataclass(frozen=True)
class Reservation:
    """Images held for one upstream call until `settle` or `release`."""

    id: int
    guild_id: int
    user_id: int
    count: int
    created_at: datetime


@dataclass(frozen=True)
class TargetRule:
    """A rule a moderator set on the server default, a role or a member."""

    target_kind: Literal["default", "role", "member"]
    target_id: int | None
    rule: QuotaRule


@dataclass(frozen=True)
class UsageReport:
    """Kept images per day and per user over the last `len(days)` UTC calendar days."""

    guild_id: int
    days: tuple[date, ...]  # oldest first, every day of the range
    images_by_day: dict[date, dict[int, int]]  # day → user id → images; days without usage are absent
    top_users: tuple[tuple[int, int], ...]  # (user id, images), most first

    @property
    def daily_totals(self) -> list[tuple[date, int]]:
        return [(day, sum(self.images_by_day.get(day, {}).values())) for day in self.days]

    @property
    def total(self) -> int:
        return sum(sum(users.values()) for users in self.images_by_day.values())


def _timestamp(now: datetime | None) -> float:
    if now is None:
        return datetime.now(UTC).timestamp()
    # A naive datetime is taken as UTC, never as the machine's local time.
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()


def _datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _stored_rule(limit: int | None, period: str | None) -> QuotaRule:
    return QuotaRule(limit, Period(period) if period is not None else None)


def _period_value(rule: QuotaRule) -> str | None:
    return rule.period.value if rule.period is not None else None


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError("a limit must be 0 or more images")


_RULES_SQL = """
    SELECT target_kind, target_id, limit_images, period FROM quota_rules
     WHERE guild_id = ? AND (target_kind <> 'member' OR target_id = ?)
    UNION ALL
    SELECT 'budget', 0, limit_images, period FROM quota_budgets WHERE guild_id = ?
"""
# The rows that count against a member's limit, and against the server budget, since a moment.
_MEMBER_WINDOW = "guild_id = ? AND user_id = ? AND created_at > ? AND images > 0 AND NOT forgiven"
_GUILD_WINDOW = "guild_id = ? AND created_at > ? AND images > 0"
_MEMBER_USAGE_SQL = f"SELECT COALESCE(SUM(images), 0), MIN(created_at) FROM quota_usage WHERE {_MEMBER_WINDOW}"
_GUILD_USAGE_SQL = f"SELECT COALESCE(SUM(images), 0), MIN(created_at) FROM quota_usage WHERE {_GUILD_WINDOW}"
_INSERT_RESERVATION_SQL = (
    "INSERT INTO quota_usage (guild_id, user_id, created_at, created_day, reserved, images, status, instance_id)"
    " SELECT ?, ?, ?, ?, ?, ?, 'pending', ?"
)


@dataclass(frozen=True)
class _Asked:
    """A reservation waiting for its trip (PostgreSQL)."""

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...]
    count: int
    at: float


@dataclass(frozen=True)
class _Delivered:
    """A settlement waiting for its trip (PostgreSQL)."""

    reservation_id: int
    delivered: int
    at: float


class QuotaStore:
    """Quota rules, the server budget and the usage ledger, on a `Database`.

    On PostgreSQL the reservations (and the settlements) of concurrent callers share round trips: each trip is a
    commit the server must write to disk before it answers, and 32 callers at once (`python -m bench`) waited in
    line for their own. SQLite's `Database` shares its trips for every statement.
    """

    def __init__(
        self,
        db: Database,
        default_rule: QuotaRule,
        *,
        personal_rule: QuotaRule | None = None,
        personal_budget: QuotaRule | None = None,
    ) -> None:
        self._db = db
        self.default_rule = default_rule
        self.personal_rule = personal_rule or default_rule
        self.personal_budget = personal_budget
        # Other processes found dead by `release_orphaned`, and since when (Unix seconds).
        self._dead_since: dict[str, float] = {}
        self._reservations = SharedTrips(self._grant_together, name="retouch-quota-reservations")
        self._settlements = SharedTrips(self._settle_together, name="retouch-quota-settlements")

    # ------------------------------------------------------------------------------------- rules

    async def _set_rule(self, guild_id: int, target_kind: str, target_id: int, rule: QuotaRule) -> None:
        await self._db.upsert(
            "quota_rules",
            {"guild_id": guild_id, "target_kind": target_kind, "target_id": target_id},
            {"limit_images": rule.limit, "period": _period_value(rule), "updated_at": _timestamp(None)},
        )
        log.info("Quota rule for guild %d %s %d set to %s", guild_id, target_kind, target_id, rule)

    async def set_default(self, guild_id: int, limit: int, period: Period) -> None:
        """The server's default for members with no member or role rule."""
        _check_limit(limit)
        await self._set_rule(guild_id, "default", 0, QuotaRule(limit, period))

    async def set_role_rule(self, guild_id: int, role_id: int, limit: int, period: Period) -> None:
        _check_limit(limit)
        await self._set_rule(guild_id, "role", role_id, QuotaRule(limit, period))

    async def set_member_rule(self, guild_id: int, user_id: int, limit: int, period: Period) -> None:
        _check_limit(limit)
        await self._set_rule(guild_id, "member", user_id, QuotaRule(limit, period))

    async def exempt(self, guild_id: int, target_kind: TargetKind, target_id: int) -> None:
        """No limit for this role or member (the server budget still applies)."""
        await self._set_rule(guild_id, target_kind, target_id, QuotaRule.exempt())

    async def clear(self, guild_id: int, target_kind: TargetKind, target_id: int) -> bool:
        """Remove the rule (limit or exemption) of a role or member; False if there was none."""
        removed = await self._db.execute(
            "DELETE FROM quota_rules WHERE guild_id = ? AND target_kind = ? AND target_id = ?",
            guild_id,
            target_kind,
            target_id,
        )
        return removed > 0

    async def set_budget(self, guild_id: int, limit: int, period: Period) -> None:
        """Cap the whole server at `limit` images per rolling `period`."""
        _check_limit(limit)
        await self._db.upsert(
            "quota_budgets",
            {"guild_id": guild_id},
            {"limit_images": limit, "period": period.value, "updated_at": _timestamp(None)},
        )
        log.info("Quota budget for guild %d set to %d/%s", guild_id, limit, period.value)

    async def clear_budget(self, guild_id: int) -> bool:
        return await self._db.execute("DELETE FROM quota_budgets WHERE guild_id = ?", guild_id) > 0

    async def get_budget(self, guild_id: int) -> QuotaRule | None:
        row = await self._db.fetch_one("SELECT limit_images, period FROM quota_budgets WHERE guild_id = ?", guild_id)
        return None if row is None else _stored_rule(row[0], row[1])

    async def list_rules(self, guild_id: int) -> list[TargetRule]:
        """Every rule set on this server: the default first, then roles, then members."""
        rows = await self._db.fetch_all(
            "SELECT target_kind, target_id, limit_images, period FROM quota_rules WHERE guild_id = ?",
            guild_id,
        )
        order = {"default": 0, "role": 1, "member": 2}
        rules = [
            TargetRule(row[0], None if row[0] == "default" else row[1], _stored_rule(row[2], row[3])) for row in rows
        ]
        return sorted(rules, key=lambda r: (order[r.target_kind], r.target_id or 0))

    async def _applicable_rules(
        self,
        executor: Executor,
        guild_id: int,
        user_id: int,
        role_ids: Iterable[int],
    ) -> tuple[QuotaRule, RuleSource, QuotaRule | None]:
        """The member's rule and its source, and the server budget; one query (none for personal use)."""
        if guild_id == PERSONAL:
            # No moderators there: the operator's personal rule for everyone, the personal budget over all.
            return self.personal_rule, RuleSource("personal"), self.personal_budget
        rows: Sequence[Row] = await executor.fetch_all(_RULES_SQL, guild_id, user_id, guild_id)
        roles = set(role_ids)
        member: QuotaRule | None = None
        server_default: QuotaRule | None = None
        budget: QuotaRule | None = None
        role_rules: list[tuple[QuotaRule, int]] = []
        for kind, target_id, limit, period in rows:
            rule = _stored_rule(limit, period)
            if kind == "member":
                member = rule
            elif kind == "role" and target_id in roles:
                role_rules.append((rule, target_id))
            elif kind == "default":
                server_default = rule
            elif kind == "budget":
                budget = rule
        if member is not None:
            return member, RuleSource("member"), budget
        if role_rules:
            rule, role_id = max(role_rules, key=lambda pair: pair[0].generosity)
            return rule, RuleSource("role", role_id), budget
        if server_default is not None:
            return server_default, RuleSource("server default"), budget
        return self.default_rule, RuleSource("operator default"), budget

    # ------------------------------------------------------------------------------------- usage

    async def _measure(
        self,
        executor: Executor,
        guild_id: int,
        user_id: int,
        rule: QuotaRule,
        source: RuleSource,
        budget: QuotaRule | None,
        at: float,
    ) -> QuotaStatus:
        """Usage in the member's window and in the budget's window, as of `at`."""
        used, remaining, next_free_at = 0, None, None
        if rule.limit is not None and rule.period is not None:
            # An aggregate always answers one row.
            used, oldest = await executor.fetch_one(_MEMBER_USAGE_SQL, guild_id, user_id, at - rule.period.seconds) or (
                0,
                None,
            )
            used = int(used)
            remaining = max(rule.limit - used, 0)
            next_free_at = None if oldest is None else _datetime(oldest + rule.period.seconds)
        budget_status = None
        if budget is not None and budget.limit is not None and budget.period is not None:
            budget_used, oldest = await executor.fetch_one(_GUILD_USAGE_SQL, guild_id, at - budget.period.seconds) or (
                0,
                None,
            )
            budget_status = BudgetStatus(
                rule=budget,
                used=int(budget_used),
                remaining=max(budget.limit - int(budget_used), 0),
                next_free_at=None if oldest is None else _datetime(oldest + budget.period.seconds),
            )
        return QuotaStatus(
            rule=rule,
            source=source,
            used=used,
            limit=rule.limit,
            remaining=remaining,
            next_free_at=next_free_at,
            budget=budget_status,
        )

    async def explain(
        self,
        guild_id: int,
        user_id: int,
        role_ids: Iterable[int],
        *,
        now: datetime | None = None,
    ) -> QuotaStatus:
        """The rule that applies to this member, where it came from, and how much is used."""
        rule, source, budget = await self._applicable_rules(self._db, guild_id, user_id, role_ids)
        return await self._measure(self._db, guild_id, user_id, rule, source, budget, _timestamp(now))

    async def reserve(
        self,
        guild_id: int,
        user_id: int,
        role_ids: Iterable[int],
        count: int,
        *,
        now: datetime | None = None,
    ) -> Reservation:
        """Hold `count` images for this member, or raise QuotaExceeded without holding any.

        The check and the insert are one statement, run while the member's lock is held (and the
        server's, when it has a budget), so concurrent reservations from any number of processes
        can never grant more than the limit.
        """
        if count < 1:
            raise ValueError("a reservation is for 1 or more images")
        # A reservation made while this process cannot prove it is alive could be returned under it.
        await self._db.wait_alive()
        at = _timestamp(now)
        if self._db.dialect == "postgresql":
            granted = await self._grant_on_postgresql(guild_id, user_id, role_ids, count, at)
        else:
            granted = await self._grant_on_sqlite(guild_id, user_id, role_ids, count, at)
        if granted is None:
            # Refused: only now is it worth measuring, to tell the member what is left and when.
            rule, source, budget = await self._applicable_rules(self._db, guild_id, user_id, role_ids)
            status = await self._measure(self._db, guild_id, user_id, rule, source, budget, at)
            raise QuotaExceeded(replace(status, blocked_by=status.blocking_limit(count)), count)
        return Reservation(id=granted, guild_id=guild_id, user_id=user_id, count=count, created_at=_datetime(at))

    async def _grant_on_postgresql(
        self, guild_id: int, user_id: int, role_ids: Iterable[int], count: int, at: float
    ) -> int | None:
        """The reservation's id, or None; in a round trip shared with whoever reserves meanwhile."""
        return await self._reservations(_Asked(guild_id, user_id, tuple(role_ids), count, at))

    async def _grant_together(self, asked: list[_Asked]) -> list[int | None]:
        """Migration 12's function: it chooses each member's rule as `_applicable_rules` does, takes the locks of
        what any of them checks (the member's, and the server's with a budget), then checks and inserts each."""
        # Where no server's rules apply, the operator's personal rule and budget stand in for the server's defaults.
        defaults = [
            (self.personal_rule, self.personal_budget) if ask.guild_id == PERSONAL else (self.default_rule, None)
            for ask in asked
        ]
        ids = await self._db.fetch_value(
            "SELECT quota_reserve_many(?::BIGINT[], ?::BIGINT[], ?::BIGINT[], ?::INTEGER[], ?::DOUBLE PRECISION[],"
            " ?::INTEGER[], ?, ?::INTEGER[], ?::TEXT[], ?::INTEGER[], ?::TEXT[], ?::BIGINT[], ?::BIGINT[])",
            [ask.guild_id for ask in asked],
            [ask.user_id for ask in asked],
            [role_id for ask in asked for role_id in ask.role_ids],
            [len(ask.role_ids) for ask in asked],
            [ask.at for ask in asked],
            [ask.count for ask in asked],
            self._db.instance_id,
            [rule.limit for rule, _ in defaults],
            [_period_value(rule) for rule, _ in defaults],
            [None if budget is None else budget.limit for _, budget in defaults],
            [None if budget is None else _period_value(budget) for _, budget in defaults],
            [lock_key(f"quota:{ask.guild_id}:{ask.user_id}") for ask in asked],
            [lock_key(f"quota-budget:{ask.guild_id}") for ask in asked],
        )
        return list(ids)

    async def _grant_on_sqlite(
        self, guild_id: int, user_id: int, role_ids: Iterable[int], count: int, at: float
    ) -> int | None:
        """The reservation's id, or None. SQLite's one writer runs each statement alone, and BEGIN IMMEDIATE keeps
        other processes out, so the check and the insert in one statement need no lock."""
        # The rules are read first (a rule changed meanwhile applies from the next reservation).
        rule, _, budget = await self._applicable_rules(self._db, guild_id, user_id, role_ids)
        conditions: list[str] = []
        bounds: list[object] = []
        if rule.limit is not None and rule.period is not None:
            conditions.append(f"(SELECT COALESCE(SUM(images), 0) FROM quota_usage WHERE {_MEMBER_WINDOW}) <= ?")
            bounds += [guild_id, user_id, at - rule.period.seconds, rule.limit - count]
        if budget is not None and budget.limit is not None and budget.period is not None:
            conditions.append(f"(SELECT COALESCE(SUM(images), 0) FROM quota_usage WHERE {_GUILD_WINDOW}) <= ?")
            bounds += [guild_id, at - budget.period.seconds, budget.limit - count]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return await self._db.fetch_value(
            f"{_INSERT_RESERVATION_SQL}{where} RETURNING id",
            *(guild_id, user_id, at, int(at // _SECONDS_PER_DAY), count, count, self._db.instance_id),
            *bounds,
        )

    async def settle(self, reservation_id: int, delivered: int, *, patience: float = SETTLE_PATIENCE_SECONDS) -> bool:
        """Keep `delivered` images (counted at the reservation's time) and return the rest.

        A reservation a sweep returned meanwhile ('swept') is charged too: the images were delivered.
        Idempotent: only a pending or swept reservation changes; returns whether this call settled it.
        Keeps trying for `patience` seconds while the database is unreachable.
        """
        if delivered < 0:
            raise ValueError("delivered must be 0 or more images")

        async def settle_once() -> int:
            if self._db.dialect == "postgresql":
                return await self._settlements(_Delivered(reservation_id, delivered, _timestamp(None)))
            return await self._db.execute(
                "UPDATE quota_usage SET images = CASE WHEN reserved < ? THEN reserved ELSE ? END,"
                " status = 'settled', settled_at = ? WHERE id = ? AND status IN ('pending', 'swept')",
                delivered,
                delivered,
                _timestamp(None),
                reservation_id,
            )

        changed = await outlast(settle_once, patience)
        return changed > 0

    async def _settle_together(self, settling: list[_Delivered]) -> list[int]:
        """One statement settling every reservation given; for each, 1 if this settled it, else 0. A reservation
        asked twice in one trip is settled as its first asker says (a join of one row to two would pick either)."""
        first_asked: dict[int, _Delivered] = {}
        for item in settling:
            first_asked.setdefault(item.reservation_id, item)
        rows = await self._db.fetch_all(
            "UPDATE quota_usage AS usage SET images = LEAST(usage.reserved, delivered.images), status = 'settled',"
            " settled_at = delivered.at"
            " FROM unnest(?::BIGINT[], ?::INTEGER[], ?::DOUBLE PRECISION[]) AS delivered(id, images, at)"
            " WHERE usage.id = delivered.id AND usage.status IN ('pending', 'swept') RETURNING usage.id",
            list(first_asked),
            [item.delivered for item in first_asked.values()],
            [item.at for item in first_asked.values()],
        )
        settled = {row[0] for row in rows}
        return [int(item.reservation_id in settled and first_asked[item.reservation_id] is item) for item in settling]

    async def release(self, reservation_id: int, *, patience: float = SETTLE_PATIENCE_SECONDS) -> bool:
        """Return every image of a pending reservation. Idempotent; returns whether this call released it."""

        async def release_once() -> int:
            return await self._db.execute(
                "UPDATE quota_usage SET images = 0, status = 'released', settled_at = ?"
                " WHERE id = ? AND status = 'pending'",
                _timestamp(None),
                reservation_id,
            )

        return await outlast(release_once, patience) > 0

    async def charge_upstream(
        self, guild_id: int, images: int, *, at: datetime | None = None, patience: float = SETTLE_PATIENCE_SECONDS
    ) -> None:
        """Count against the server budget `images` the Model Hub may have billed that no member was charged for.

        Retried attempts, a timeout after the request went out, pictures Discord then refused: the budget is
        the operator's money, so it counts them (at `at`, the edit's reservation time); no member's limit and
        no usage report does (user 0, status 'upstream'). Kept through a database outage like `settle`; should
        an insert's answer be what was lost, the retry counts those images twice, against the budget only.
        """
        if images < 1:
            return
        stamp = _timestamp(at)

        async def insert() -> int:
            return await self._db.execute(
                "INSERT INTO quota_usage (guild_id, user_id, created_at, created_day, reserved, images, status,"
                " instance_id, settled_at) VALUES (?, 0, ?, ?, ?, ?, 'upstream', ?, ?)",
                guild_id,
                stamp,
                int(stamp // _SECONDS_PER_DAY),
                images,
                images,
                self._db.instance_id,
                _timestamp(None),
            )

        await outlast(insert, patience)

    async def release_orphaned(self, grace_seconds: float = 0.0, *, now: datetime | None = None) -> int:
        """Return pending reservations of processes that are no longer running. Call at start-up and periodically.

        A process counts as stopped once it has been found so for `grace_seconds` (found by an earlier
        call): a live process whose liveness connection dropped takes its lock back within seconds.
        """
        at = _timestamp(now)
        instances = await self._db.fetch_all(
            "SELECT DISTINCT instance_id FROM quota_usage WHERE status = 'pending' AND instance_id <> ?",
            self._db.instance_id,
        )
        dead_since: dict[str, float] = {}
        released = 0
        for (instance_id,) in instances:
            if await self._db.instance_alive(instance_id):
                continue
            dead_since[instance_id] = self._dead_since.get(instance_id, at)
            if at - dead_since[instance_id] < grace_seconds:
                continue
            released += await self._db.execute(
                "UPDATE quota_usage SET images = 0, status = 'swept', settled_at = ?"
                " WHERE status = 'pending' AND instance_id = ?",
                at,
                instance_id,
            )
        # Forget whoever came back (or has nothing pending any more), so a later death waits the grace again.
        self._dead_since = dead_since
        if released:
            log.warning("Released %d reservation(s) left pending by stopped processes", released)
        return released

    async def release_stale(
        self,
        older_than_seconds: float = DEFAULT_STALE_AFTER_SECONDS,
        *,
        now: datetime | None = None,
    ) -> int:
        """Release reservations pending for longer than any edit can take, whoever made them.

        For a periodic task (every few minutes): it returns what a live process leaked, which
        `release_orphaned` at start-up cannot see. Returns how many were released.
        """
        released = await self._db.execute(
            "UPDATE quota_usage SET images = 0, status = 'swept', settled_at = ?"
            " WHERE status = 'pending' AND created_at < ?",
            _timestamp(None),
            _timestamp(now) - older_than_seconds,
        )
        if released:
            log.warning("Released %d reservation(s) pending for over %.0f s", released, older_than_seconds)
        return released

    async def reset(self, guild_id: int, user_id: int, *, now: datetime | None = None) -> int:
        """Forgive the member's usage in the current window; returns the images forgiven.

        Forgiven images stop counting against the member but still count against the server budget
        (they were made) and still appear in usage reports.
        """
        since = _timestamp(now) - _LONGEST_PERIOD_SECONDS
        filters = "guild_id = ? AND user_id = ? AND created_at > ? AND images > 0 AND NOT forgiven"
        async with self._db.transaction() as tx:
            forgiven = int(
                await tx.fetch_value(
                    f"SELECT COALESCE(SUM(images), 0) FROM quota_usage WHERE {filters}",
                    guild_id,
                    user_id,
                    since,
                )
            )
            await tx.execute(f"UPDATE quota_usage SET forgiven = TRUE WHERE {filters}", guild_id, user_id, since)
        log.info("Forgave %d image(s) of user %d in guild %d", forgiven, user_id, guild_id)
        return forgiven

    async def usage_report(
        self,
        guild_id: int,
        days: int = 7,
        now: datetime | None = None,
        *,
        top: int = 10,
    ) -> UsageReport:
        """Kept images per UTC day and per user over the last `days` days (today included)."""
        if days < 1:
            raise ValueError("a report covers 1 or more days")
        today = int(_timestamp(now) // _SECONDS_PER_DAY)
        first = today - days + 1
        rows = await self._db.fetch_all(
            "SELECT created_day, user_id, SUM(images) FROM quota_usage"
            " WHERE guild_id = ? AND status = 'settled' AND created_day BETWEEN ? AND ?"
            " GROUP BY created_day, user_id",
            guild_id,
            first,
            today,
        )
        epoch = date(1970, 1, 1)
        images_by_day: dict[date, dict[int, int]] = defaultdict(dict)
        per_user: dict[int, int] = defaultdict(int)
        for day_number, user_id, images in rows:
            if images:
                images_by_day[epoch + timedelta(days=day_number)][user_id] = int(images)
                per_user[user_id] += int(images)
        top_users = sorted(per_user.items(), key=lambda item: (-item[1], item[0]))[:top]
        return UsageReport(
            guild_id=guild_id,
            days=tuple(epoch + timedelta(days=n) for n in range(first, today + 1)),
            images_by_day=dict(images_by_day),
            top_users=tuple(top_users),
        )
