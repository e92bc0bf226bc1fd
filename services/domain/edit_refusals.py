"""The words of an edit that was not done: quota, the line, a cooldown, the Model Hub's failures.

Each takes the typed error of the part that refused and says, in the member's words, what happened, what
was charged (nothing) and when to try again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.domain.job_queue import GuildLineFull, MemberLineFull, QueueRefused
from services.domain.rejections import CoolingDown
from services.domain.upstream import (
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubContentPolicyError,
    ModelHubError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
)
from services.storage.quota import Period, QuotaExceeded
from services.text import words
from services.text.words import Text


def quota_refusal(error: QuotaExceeded) -> Text:
    """How many images are left, and when the next one frees up."""
    status = error.status
    if status.blocked_by == "budget" and status.budget is not None:
        budget = status.budget
        when = Text(words.NEXT_FREES_UP, when=budget.next_free_at) if budget.next_free_at else ""
        return Text(
            words.QUOTA_BUDGET_REFUSED,
            remaining=budget.remaining,
            limit=budget.rule.limit,
            period=period_name(budget.rule.period),
            requested=error.requested,
            when=when,
        )
    when = Text(words.NEXT_FREES_UP, when=status.next_free_at) if status.next_free_at else ""
    return Text(
        words.QUOTA_MEMBER_REFUSED,
        remaining=status.remaining,
        limit=status.limit,
        period=period_name(status.rule.period),
        requested=error.requested,
        when=when,
    )


def period_name(period: Period | None) -> Text:
    """A rolling window's name ("day"); an exempt rule has none."""
    return Text(words.PERIODS[period.value] if period is not None else "")


def queue_refusal(error: QueueRefused) -> Text:
    """Which limit of the line refused, and when to try again."""
    if isinstance(error, MemberLineFull):
        reason = Text(words.QUEUE_MEMBER_FULL, held=error.held)
    elif isinstance(error, GuildLineFull):
        reason = Text(words.QUEUE_GUILD_FULL, held=error.held)
    else:
        reason = Text(words.QUEUE_FULL)
    return Text(words.QUEUE_BUSY, reason=reason, seconds=f"{max(error.retry_after, 1):.0f}")


def queue_closed() -> Text:
    """The process is shutting down and takes no new edits."""
    return Text(words.QUEUE_CLOSED, charged=Text(words.NOTHING_CHARGED))


def cooldown_refusal(error: CoolingDown) -> Text:
    """When a member cooling down after rejected edits may start the next one."""
    cooldown = error.cooldown
    until = datetime.fromtimestamp(cooldown.until, UTC)
    return Text(
        words.COOLING_DOWN,
        edits=Text(words.N_EDITS, count=cooldown.edits),
        images=Text(words.N_PICTURES, count=cooldown.images),
        until=until,
    )


def upstream_failure(error: ModelHubError) -> Text:
    """Plain words for each kind of upstream failure, in the member's language.

    The error's own text is English and may name an exception; it goes to the logs. Only the upstream's words about
    a refused request are shown (quoted), and an HTTP status.
    """
    charged = Text(words.NOTHING_CHARGED)
    if isinstance(error, ModelHubContentPolicyError):
        return Text(words.UPSTREAM_CONTENT_POLICY, charged=charged)
    if isinstance(error, ModelHubBadRequestError):
        return Text(words.UPSTREAM_BAD_REQUEST, message=error.message, charged=charged)
    if isinstance(error, ModelHubAuthenticationError):
        return Text(words.UPSTREAM_AUTHENTICATION, charged=charged)
    if isinstance(error, ModelHubRateLimitError):
        wait = (
            Text(words.UPSTREAM_RETRY_IN, seconds=f"{error.retry_after:.0f}")
            if error.retry_after
            else Text(words.UPSTREAM_RETRY_SOON)
        )
        return Text(words.UPSTREAM_RATE_LIMITED, wait=wait, charged=charged)
    if isinstance(error, ModelHubTimeoutError):
        return Text(words.UPSTREAM_TIMEOUT, charged=charged)
    if isinstance(error, ModelHubUnavailableError):
        if error.status is None:
            return Text(words.UPSTREAM_UNREACHABLE, charged=charged)
        return Text(words.UPSTREAM_UNAVAILABLE, status=error.status, charged=charged)
    if isinstance(error, ModelHubMalformedResponseError):
        return Text(words.UPSTREAM_MALFORMED, charged=charged)
    return Text(words.UPSTREAM_FAILED, charged=charged)
