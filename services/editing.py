"""The edit use case: admit, reserve, download and keep, record, wait for a turn, call the Model Hub, deliver, settle.

Nothing is downloaded before the member is known to be served (a place in line, quota reserved), and no
picture bytes stay in memory while a job waits in line: the inputs are kept in the job's record (its
Reroll needs them once Discord purged the upload) and the upstream fetches them by URL; the kept copies
go as data URLs when it cannot, when the URL would be the wrong picture (a copy scaled down to what the
upstream takes) or when there is none (a Reroll).

Only delivered pictures are charged: every other way out (a refusal, an upstream or Discord failure, an
unexpected error, a cancellation, even a second cancellation while settling) returns the rest of the
reservation. The Discord side supplies `deliver` (it posts the pictures and reports each message's
pictures through `Delivery.posted`) and renders the progress and the outcome; nothing here knows Discord.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import aiohttp

from services import words
from services.images import (
    ImageError,
    ImageInfo,
    auto_size,
    inspect_image,
    prepare_mask,
    to_data_url,
    upright_picture,
)
from services.job_queue import GuildLineFull, JobQueue, MemberLineFull, QueueClosed, QueueRefused, Ticket
from services.jobs import InputRole, JobStore, NewJob, Origin
from services.kept_inputs import KeptPicture, keep_mask, keep_picture, kept_size
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
from services.rejections import CoolingDown, RejectionTracker
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
    """An input as it went upstream: its (signed, expiring) URL, None when it went as the kept copy; that copy."""

    url: str | None
    data: bytes
    content_type: str


@dataclass(frozen=True)
class EditPlan:
    """What goes upstream, holding no picture bytes (a job waits in line with it).

    Each input goes by its URL, or (None) as the job's kept copy in a data URL.
    """

    model: str
    prompt: str
    size: tuple[int, int]
    count: int
    output_format: str
    image_url: str | None
    has_mask: bool = False
    mask_url: str | None = None


@dataclass(frozen=True)
class EditOrder:
    """What went upstream, once it did: the options with the size resolved, and the inputs' kept copies."""

    model: str
    prompt: str
    size: tuple[int, int]
    count: int
    output_format: str
    image: SourcePicture
    mask: SourcePicture | None = None


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
    order: EditOrder | None = None  # once the upstream answered
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
        rejections: RejectionTracker | None = None,
        observer: EditObserver | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._rejections = rejections or RejectionTracker()
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
            # A member whose edits the upstream keeps rejecting waits before spending the shared rate again.
            self._rejections.check(requester.guild_id, requester.user_id)
        except CoolingDown as exc:
            return self._ended(EditReport(EditOutcome.REFUSED_QUEUE, choice.count, text=cooldown_refusal(exc)))
        try:
            ticket = self._queue.admit(requester.guild_id, requester.user_id, choice.count)
        except QueueRefused as exc:
            seconds = f"{max(exc.retry_after, 1):.0f}"
            return self._ended(
                EditReport(
                    EditOutcome.REFUSED_QUEUE,
                    choice.count,
                    text=Text(words.QUEUE_BUSY, reason=_queue_reason(exc), seconds=seconds),
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
        # Quota before any download: a member who cannot be served costs no download and no decode.
        try:
            reservation = await self._quota.reserve(
                requester.guild_id, requester.user_id, requester.role_ids, choice.count
            )
        except QuotaExceeded as exc:
            return EditReport(EditOutcome.REFUSED_QUOTA, choice.count, text=quota_refusal(exc), field="count")
        # From here every way out goes through the finally: the reservation is settled whatever happens.
        job_id: int | None = None
        delivery: Delivery | None = None
        order: EditOrder | None = None
        try:
            try:
                plan, recorded = await self._record(choice, requester, origin)
            except InvalidInput as exc:
                return EditReport(EditOutcome.REFUSED_INPUT, choice.count, text=exc.text, field=exc.field)
            job_id = recorded
            async with self._showing(progress, ticket, choice.count, started), self._queue.running(ticket):
                if self._observer is not None and ticket.waited is not None:
                    self._observer.queue_waited(ticket.waited)
                result = await run_edit(self._hub, plan, lambda: self._jobs.kept_inputs(recorded), paced=True)
            order = _order(plan, await self._jobs.kept_inputs(recorded))
            delivery = attempt.delivery = Delivery(job_id, order, [image.data for image in result.images], self._jobs)
            await deliver(delivery)
        except ModelHubError as exc:
            log.info("Edit for user %s failed upstream: %r", requester.user_id, exc)
            if isinstance(exc, ModelHubContentPolicyError | ModelHubBadRequestError):
                self._rejections.record(requester.guild_id, requester.user_id, choice.count)
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

    async def _record(self, choice: EditChoice, requester: Requester, origin: Origin) -> tuple[EditPlan, int]:
        """Download and inspect the inputs, record the job and keep their copies; the bytes end here."""
        plan, copies = await self._prepare(choice, origin)
        job_id = await self._jobs.create(_new_job(choice, plan, requester, origin))
        await self._jobs.keep_inputs(job_id, copies)
        return plan, job_id

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

    async def _prepare(self, choice: EditChoice, origin: Origin) -> tuple[EditPlan, dict[InputRole, KeptPicture]]:
        """Read and inspect the inputs, prepare the mask, resolve `size: auto`, and make the copies to keep.

        A Reroll (`origin.inputs_of`) reads the earlier job's kept copies instead of downloading.
        """
        earlier = await self._jobs.kept_inputs(origin.inputs_of) if origin.inputs_of is not None else {}
        data, info, image_url = await self._read("image", choice.image, earlier.get("source"))
        if info.reoriented:
            # The upstream ignores EXIF: it gets the picture as Discord shows it, as bytes, not the URL.
            data, info, image_url = await self._upright("image", data)
        copies: dict[InputRole, KeptPicture] = {"source": await keep_picture(data, info)}
        if kept_size(info.width, info.height) != (info.width, info.height):
            image_url = None  # the copy scaled down to what the upstream takes is the picture to send
        mask_url = None
        if choice.mask is not None:
            mask, mask_info, mask_url = await self._read("mask", choice.mask, earlier.get("mask"))
            if mask_info.reoriented:
                mask, mask_info, mask_url = await self._upright("mask", mask)
            try:
                prepared = await prepare_mask(mask, info)
            except ImageError as exc:
                raise InvalidInput.from_image_error(exc) from None
            if prepared.data_url is not None:  # converted from black-and-white: the converted one goes upstream
                mask, mask_url = await asyncio.to_thread(_data_of, prepared.data_url), None
                mask_info = ImageInfo(prepared.width, prepared.height, "PNG")
            copies["mask"] = await keep_mask(mask, mask_info, info)
            if image_url is None:
                mask_url = None  # the mask goes with its picture: both by URL, or both as the copies
        size = choice.size or auto_size(info.width, info.height, choice.auto_long_side)
        plan = EditPlan(
            choice.model,
            choice.prompt,
            size,
            choice.count,
            choice.output_format,
            image_url,
            choice.mask is not None,
            mask_url,
        )
        return plan, copies

    async def _read(
        self, field: str, picture: Picture, kept: KeptPicture | None
    ) -> tuple[bytes, ImageInfo, str | None]:
        """The input's bytes, what they are, and the URL the upstream may fetch it by (None: send the copy)."""
        if kept is not None:
            return kept.data, await _inspected(field, kept.data), None
        data = await self.download(field, picture)
        # A data URL goes as the kept copy, like any picture the upstream cannot fetch by URL.
        url = None if picture.url.startswith("data:") else picture.url
        return data, await _inspected(field, data), url

    @staticmethod
    async def _upright(field: str, data: bytes) -> tuple[bytes, ImageInfo, None]:
        """The bytes of a picture stored turned, re-encoded as displayed; no URL serves those."""
        try:
            upright = await upright_picture(data, field=field)
        except ImageError as exc:
            raise InvalidInput.from_image_error(exc) from None
        return upright.data, await _inspected(field, upright.data), None

    async def download(self, field: str, picture: Picture) -> bytes:
        """The picture's bytes, within the input limit; InvalidInput naming `field` when they cannot be had.

        A `data:` URL is a picture the bot made itself (a region's mask): its bytes are in the URL.
        """
        if picture.url.startswith("data:"):
            return await asyncio.to_thread(_data_of, picture.url)
        limit = self._max_input_bytes
        try:
            timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
            async with self._session.get(picture.url, timeout=timeout) as response:
                if response.status == 404 and picture.message_id is not None:
                    # The file of a message is gone only with the message or the attachment.
                    raise InvalidInput(field, Text(words.PICTURE_GONE, reason=Text(words.GONE_AT_DISCORD)))
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
        return data


async def _inspected(field: str, data: bytes) -> ImageInfo:
    try:
        return await inspect_image(data, field=field)
    except ImageError as exc:
        raise InvalidInput.from_image_error(exc) from None


def _data_of(data_url: str) -> bytes:
    return base64.b64decode(data_url.split(",", 1)[1])


def _order(plan: EditPlan, copies: Mapping[InputRole, KeptPicture]) -> EditOrder:
    """What went upstream, with the kept copies (the audit shows them)."""
    source, mask = copies["source"], copies.get("mask")
    return EditOrder(
        plan.model,
        plan.prompt,
        plan.size,
        plan.count,
        plan.output_format,
        SourcePicture(plan.image_url, source.data, source.content_type),
        SourcePicture(plan.mask_url, mask.data, mask.content_type) if mask is not None else None,
    )


def _new_job(choice: EditChoice, order: EditPlan, requester: Requester, origin: Origin) -> NewJob:
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


def _queue_reason(error: QueueRefused) -> Text:
    """Which limit of the line refused, in the member's words."""
    if isinstance(error, MemberLineFull):
        return Text(words.QUEUE_MEMBER_FULL, held=error.held)
    if isinstance(error, GuildLineFull):
        return Text(words.QUEUE_GUILD_FULL, held=error.held)
    return Text(words.QUEUE_FULL)


def cooldown_refusal(error: CoolingDown) -> Text:
    """When a member cooling down after rejected edits may start the next one."""
    cooldown = error.cooldown
    until = datetime.fromtimestamp(cooldown.until, UTC)
    return Text(words.COOLING_DOWN, edits=cooldown.edits, images=cooldown.images, until=until)


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


KeptCopies = Callable[[], Awaitable[Mapping[InputRole, KeptPicture]]]


async def run_edit(hub: EditsHub, plan: EditPlan, kept: KeptCopies, *, paced: bool = False) -> EditResult:
    """Send the pictures by URL where the plan has one; when the hub cannot fetch them, retry once with the copies.

    `kept` reads the job's kept copies, only when a data URL is needed. `paced`: the first call already
    waited for the image rate (the job queue does); the fallback, a new request spending the images
    again, is paced by the client.
    """
    copies: Mapping[InputRole, KeptPicture] = {}

    async def data_url(role: InputRole) -> str:
        nonlocal copies
        copies = copies or await kept()
        return await to_data_url(copies[role].data, copies[role].content_type)

    request = EditRequest(
        model=plan.model,
        prompt=plan.prompt,
        url=plan.image_url or await data_url("source"),
        size=plan.size,
        n=plan.count,
        output_format=plan.output_format,
        mask_image=(plan.mask_url or await data_url("mask")) if plan.has_mask else None,
    )
    try:
        return await hub.edit(request, paced=paced)
    except ModelHubBadRequestError as exc:
        if not _names_input_url(exc) or (plan.image_url is None and plan.mask_url is None):
            raise
        log.info("The Model Hub could not fetch an input by URL (%s); retrying with its bytes", exc)
    fallback = dataclasses.replace(
        request,
        url=await data_url("source"),
        mask_image=await data_url("mask") if plan.has_mask else None,
    )
    return await hub.edit(fallback)
