"""The edit use case: admit, download, reserve, record, wait for a turn, call the Model Hub, deliver, settle.

Only delivered pictures are charged: every other way out (a refusal, an upstream or Discord failure, an
unexpected error, a cancellation, even a second cancellation while settling) returns the rest of the
reservation. The Discord side supplies `deliver` (it posts the pictures and reports each message's
pictures through `Delivery.posted`) and renders the progress and the outcome; nothing here knows Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

import aiohttp

from services import words
from services.images import ImageError, ImageInfo, auto_size, inspect_image, prepare_mask, to_data_url
from services.job_queue import JobQueue, QueueClosed, QueueRefused, Ticket
from services.jobs import JobStore, NewJob, Origin
from services.modelhub import (
    EditRequest,
    EditResult,
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubContentPolicyError,
    ModelHubError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
)
from services.pictures import Picture
from services.quota import Period, QuotaExceeded, QuotaStore
from services.validation import EditChoice, InvalidInput
from services.words import Text

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 3.0  # seconds between progress updates while an edit waits or runs
DOWNLOAD_TIMEOUT = 60.0
_MiB = 1024 * 1024
T = TypeVar("T")


class EditOutcome(enum.Enum):
    """How an edit ended, as metrics count it."""

    DELIVERED = "delivered"
    PARTIAL = "partial"  # some pictures posted (and charged), the rest not
    REFUSED_INPUT = "refused_input"
    REFUSED_QUOTA = "refused_quota"
    REFUSED_QUEUE = "refused_queue"
    UPSTREAM_ERROR = "upstream_error"
    DISCORD_ERROR = "discord_error"
    CANCELLED = "cancelled"


class EditObserver(Protocol):
    """Told how every edit ended and how long admitted edits waited for their turn (the metrics)."""

    def edit_finished(self, outcome: EditOutcome, delivered: int) -> None: ...

    def queue_waited(self, seconds: float) -> None: ...


class EditsHub(Protocol):
    """The one Model Hub call the use case makes (`ModelHubClient` implements it)."""

    async def edit(self, request: EditRequest, *, paced: bool = False) -> EditResult: ...


class DeliveryFailed(Exception):
    """The Discord side could not post (all of) the pictures; `text` tells the member why."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


@dataclass(frozen=True)
class SourcePicture:
    """A picture the member gave: its (signed, expiring) URL and the bytes already downloaded."""

    url: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class EditOrder:
    """What goes upstream: the options with the size resolved, and the downloaded pictures."""

    model: str
    prompt: str
    size: tuple[int, int]
    count: int
    output_format: str
    image: SourcePicture
    mask: SourcePicture | None = None
    mask_data_url: str | None = None  # set when the mask had to be converted (black-and-white → alpha)


@dataclass(frozen=True)
class Requester:
    """Who asked, and where: quota rules follow the member's roles."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EditStatus:
    """What a progress display shows: checking the inputs, waiting in line (where, how long), or editing."""

    stage: Literal["checking", "waiting", "editing"]
    count: int
    elapsed: float
    position: int = 0  # 0: past the line, waiting only for the upstream's image rate
    waiting: int = 0
    expected_wait: float = 0.0


ProgressCallback = Callable[[EditStatus], Awaitable[None]]


@dataclass(eq=False)
class Delivery:
    """The pictures to post, and the count of those posted: that count is what the member is charged."""

    job_id: int
    order: EditOrder
    pictures: list[bytes]
    _jobs: JobStore
    delivered: int = 0

    async def posted(self, pictures: Sequence[Picture]) -> None:
        """One message went out with these pictures: they are charged, and recorded for its buttons."""
        self.delivered += len(pictures)
        await self._jobs.add_results(self.job_id, pictures)

    async def withdrawn(self) -> bool:
        """Whether the job was deleted meanwhile (its Delete button): then nothing more is posted or charged."""
        job = await self._jobs.get(self.job_id)
        return job is not None and job.status == "deleted"


Deliver = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True)
class EditReport:
    """How one edit ended; `text` says why when it did not deliver everything."""

    outcome: EditOutcome
    requested: int
    delivered: int = 0
    text: Text | None = None
    field: str | None = None  # for refused_input: the option at fault
    order: EditOrder | None = None  # once the pictures were downloaded
    job_id: int | None = None


@dataclass
class _Attempt:
    """What a running edit has got to, for the outcome of a cancellation."""

    delivery: Delivery | None = None

    @property
    def delivered(self) -> int:
        return self.delivery.delivered if self.delivery else 0


class EditService:
    """Runs edits: the queue, the quota, the job record and the Model Hub, in the order that keeps money right."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        quota: QuotaStore,
        jobs: JobStore,
        hub: EditsHub,
        session: aiohttp.ClientSession,
        max_input_bytes: int,
        observer: EditObserver | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._queue = queue
        self._quota = quota
        self._jobs = jobs
        self._hub = hub
        self._session = session
        self._max_input_bytes = max_input_bytes
        self._observer = observer
        self._progress_interval = progress_interval

    async def run(
        self,
        choice: EditChoice,
        requester: Requester,
        *,
        deliver: Deliver,
        origin: Origin | None = None,
        progress: ProgressCallback | None = None,
    ) -> EditReport:
        """One edit, start to end; the report says how it ended.

        Cancellation propagates after settling (the observer counts it as `cancelled`); so does any
        unexpected error, which the observer does not count: the caller logs it and apologises.
        """
        try:
            ticket = self._queue.admit(requester.guild_id, requester.user_id, choice.count)
        except QueueRefused as exc:
            seconds = f"{max(exc.retry_after, 1):.0f}"
            return self._ended(
                EditReport(
                    EditOutcome.REFUSED_QUEUE,
                    choice.count,
                    text=Text(words.QUEUE_BUSY, reason=str(exc), seconds=seconds),
                    field="queue",
                )
            )
        except QueueClosed:
            text = Text(words.QUEUE_CLOSED, charged=Text(words.NOTHING_CHARGED))
            return self._ended(EditReport(EditOutcome.REFUSED_QUEUE, choice.count, text=text, field="queue"))
        attempt = _Attempt()
        try:
            return self._ended(
                await self._run_admitted(choice, requester, origin or Origin(), ticket, deliver, progress, attempt)
            )
        except asyncio.CancelledError:
            self._ended(EditReport(EditOutcome.CANCELLED, choice.count, attempt.delivered))
            raise
        finally:
            self._queue.finish(ticket)

    def _ended(self, report: EditReport) -> EditReport:
        if self._observer is not None:
            self._observer.edit_finished(report.outcome, report.delivered)
        return report

    async def _run_admitted(
        self,
        choice: EditChoice,
        requester: Requester,
        origin: Origin,
        ticket: Ticket,
        deliver: Deliver,
        progress: ProgressCallback | None,
        attempt: _Attempt,
    ) -> EditReport:
        started = time.monotonic()
        if progress is not None:
            await _quietly(progress(EditStatus("checking", choice.count, 0.0)))
        try:
            order = await self._prepare(choice)
        except InvalidInput as exc:
            return EditReport(EditOutcome.REFUSED_INPUT, choice.count, text=exc.text, field=exc.field)
        try:
            reservation = await self._quota.reserve(
                requester.guild_id, requester.user_id, requester.role_ids, choice.count
            )
        except QuotaExceeded as exc:
            return EditReport(
                EditOutcome.REFUSED_QUOTA, choice.count, text=quota_refusal(exc), field="count", order=order
            )
        # From here every way out goes through the finally: the reservation is settled whatever happens.
        job_id: int | None = None
        delivery: Delivery | None = None
        try:
            job_id = await self._jobs.create(_new_job(choice, order, requester, origin))
            async with self._showing(progress, ticket, choice.count, started), self._queue.running(ticket):
                if self._observer is not None and ticket.waited is not None:
                    self._observer.queue_waited(ticket.waited)
                result = await run_edit(self._hub, order, paced=True)
            delivery = attempt.delivery = Delivery(job_id, order, [image.data for image in result.images], self._jobs)
            await deliver(delivery)
        except ModelHubError as exc:
            log.info("Edit for user %s failed upstream: %r", requester.user_id, exc)
            delivered = delivery.delivered if delivery else 0
            return EditReport(
                EditOutcome.UPSTREAM_ERROR, choice.count, delivered, upstream_failure(exc), None, order, job_id
            )
        except DeliveryFailed as exc:
            assert delivery is not None
            return EditReport(
                EditOutcome.DISCORD_ERROR, choice.count, delivery.delivered, exc.text, None, order, job_id
            )
        finally:
            await settle_surely(self._settle(reservation.id, job_id, delivery.delivered if delivery else 0))
        if delivery.delivered == 0:
            return EditReport(
                EditOutcome.DISCORD_ERROR, choice.count, 0, Text(words.DELIVERED_NOTHING), None, order, job_id
            )
        outcome = EditOutcome.DELIVERED if delivery.delivered >= choice.count else EditOutcome.PARTIAL
        return EditReport(outcome, choice.count, delivery.delivered, None, None, order, job_id)

    async def _settle(self, reservation_id: int, job_id: int | None, delivered: int) -> None:
        """Charge what was delivered and return the rest; then close the job record, if there is one."""
        await self._quota.settle(reservation_id, delivered)
        if job_id is not None:
            try:
                await self._jobs.finish(job_id, delivered)
            except Exception:
                # The money is right already; a job left `running` only shows up wrong in the record.
                log.exception("Could not close job %d", job_id)

    @contextlib.asynccontextmanager
    async def _showing(
        self, progress: ProgressCallback | None, ticket: Ticket, count: int, started: float
    ) -> AsyncIterator[None]:
        """Tell `progress` where the edit stands every few seconds while it waits and runs."""
        if progress is None:
            yield
            return

        async def tick() -> None:
            while True:
                await asyncio.sleep(self._progress_interval)
                elapsed = time.monotonic() - started
                if ticket.started_at is None:
                    view = await self._queue.view(ticket)
                    status = EditStatus("waiting", count, elapsed, view.position, view.waiting, view.expected_wait)
                else:
                    status = EditStatus("editing", count, elapsed)
                await _quietly(progress(status))

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _prepare(self, choice: EditChoice) -> EditOrder:
        """Download and inspect the pictures, prepare the mask and resolve `size: auto`."""
        image, info = await self._download("image", choice.image)
        mask, mask_data_url = None, None
        if choice.mask is not None:
            mask, _ = await self._download("mask", choice.mask)
            try:
                mask_data_url = (await prepare_mask(mask.data, info)).data_url
            except ImageError as exc:
                raise InvalidInput.from_image_error(exc) from None
        size = choice.size or auto_size(info.width, info.height, choice.auto_long_side)
        return EditOrder(
            choice.model, choice.prompt, size, choice.count, choice.output_format, image, mask, mask_data_url
        )

    async def _download(self, field: str, picture: Picture) -> tuple[SourcePicture, ImageInfo]:
        limit = self._max_input_bytes
        try:
            timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
            async with self._session.get(picture.url, timeout=timeout) as response:
                if response.status != 200:
                    raise InvalidInput(field, Text(words.DOWNLOAD_REFUSED, field=field, status=response.status))
                # read(n) returns what has arrived so far, not n bytes: gather chunks up to just past the limit.
                buffer = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    buffer += chunk
                    if len(buffer) > limit:
                        break
                data = bytes(buffer)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise InvalidInput(field, Text(words.DOWNLOAD_FAILED, field=field)) from exc
        if len(data) > limit:
            raise InvalidInput(field, Text(words.DOWNLOAD_TOO_BIG, field=field, limit_mib=f"{limit / _MiB:.0f}"))
        try:
            info = await inspect_image(data, field=field)
        except ImageError as exc:
            raise InvalidInput.from_image_error(exc) from None
        return SourcePicture(picture.url, data, f"image/{info.format.lower()}"), info


def _new_job(choice: EditChoice, order: EditOrder, requester: Requester, origin: Origin) -> NewJob:
    return NewJob(
        guild_id=requester.guild_id,
        channel_id=requester.channel_id,
        user_id=requester.user_id,
        prompt=order.prompt,
        model=order.model,
        size=f"{order.size[0]}x{order.size[1]}",
        count=order.count,
        output_format=order.output_format,
        source=choice.image,
        mask=choice.mask,
        parent_job_id=origin.parent_job_id,
    )


async def settle_surely(settling: Coroutine[Any, Any, T]) -> T:
    """Run `settling` to its end even if the caller is cancelled meanwhile (any number of times).

    A cancellation that arrives meanwhile is raised once it has finished, so the task still ends cancelled.
    """
    task = asyncio.ensure_future(settling)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    if cancelled:
        if task.exception() is not None:
            log.error("Settling failed while the edit was being cancelled", exc_info=task.exception())
        raise asyncio.CancelledError
    return task.result()


async def _quietly(showing: Awaitable[None]) -> None:
    """Progress is a courtesy: a failed update must not stop the edit itself."""
    try:
        await showing
    except Exception:
        log.warning("Could not show an edit's progress", exc_info=True)


def _relative(moment: datetime) -> str:
    # Discord's timestamp markup: every reader sees it in their own time zone and language.
    return f"<t:{int(moment.timestamp())}:R>"


def quota_refusal(error: QuotaExceeded) -> Text:
    """How many images are left, and when the next one frees up."""
    status = error.status
    if status.blocked_by == "budget" and status.budget is not None:
        budget = status.budget
        when = Text(words.NEXT_FREES_UP, when=_relative(budget.next_free_at)) if budget.next_free_at else ""
        return Text(
            words.QUOTA_BUDGET_REFUSED,
            remaining=budget.remaining,
            limit=budget.rule.limit,
            period=period_name(budget.rule.period),
            requested=error.requested,
            when=when,
        )
    when = Text(words.NEXT_FREES_UP, when=_relative(status.next_free_at)) if status.next_free_at else ""
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


def upstream_failure(error: ModelHubError) -> Text:
    """Plain words for each kind of upstream failure; none of them carries a URL or a token."""
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
        return Text(words.UPSTREAM_TIMEOUT, message=error.message, charged=charged)
    if isinstance(error, ModelHubUnavailableError):
        return Text(words.UPSTREAM_UNAVAILABLE, message=error.message, charged=charged)
    if isinstance(error, ModelHubMalformedResponseError):
        return Text(words.UPSTREAM_MALFORMED, message=error.message, charged=charged)
    return Text(words.UPSTREAM_FAILED, message=error.message, charged=charged)


def _names_input_url(error: ModelHubBadRequestError) -> bool:
    # Undocumented: a fetch failure is a 4xx whose error names the field, by `param` or in its words.
    return error.names_field("url") or error.names_field("mask_image")


async def run_edit(hub: EditsHub, order: EditOrder, *, paced: bool = False) -> EditResult:
    """Send the pictures by URL; when the hub cannot fetch them, retry once with their bytes.

    `paced`: the first call already waited for the image rate (the job queue does); the fallback, a new
    request spending the images again, is paced by the client.
    """
    request = EditRequest(
        model=order.model,
        prompt=order.prompt,
        url=order.image.url,
        size=order.size,
        n=order.count,
        output_format=order.output_format,
        mask_image=order.mask_data_url or (order.mask.url if order.mask else None),
    )
    try:
        return await hub.edit(request, paced=paced)
    except ModelHubBadRequestError as exc:
        if not _names_input_url(exc):
            raise
        log.info("The Model Hub could not fetch an input by URL (%s); retrying with its bytes", exc)
    mask_image = order.mask_data_url
    if mask_image is None and order.mask is not None:
        mask_image = await to_data_url(order.mask.data, order.mask.content_type)
    fallback = dataclasses.replace(
        request,
        url=await to_data_url(order.image.data, order.image.content_type),
        mask_image=mask_image,
    )
    return await hub.edit(fallback)
