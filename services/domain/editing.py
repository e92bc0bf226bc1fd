"""The edit use case: admit, reserve, read and keep the inputs, record, screen, wait, call the Model Hub, screen the
results, deliver, settle.

Nothing is downloaded before the member is known to be served (a place in line, quota reserved), and no
picture bytes stay in memory while a job waits in line: the inputs are kept in the job's record (its
Reroll needs them once Discord purged the upload) and the upstream fetches them by URL
(services/domain/edit_inputs.py plans which, services/domain/edit_upstream.py falls back to the copies).

Only delivered pictures are charged: every other way out (a refusal, an upstream or Discord failure, an
unexpected error, a cancellation, even a second cancellation while settling) returns the rest of the
reservation. The Discord side supplies `deliver` (it posts the pictures and reports each message's
pictures through `Delivery.posted`) and renders the progress and the ending; nothing here knows Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from services.domain.edit_inputs import PictureDownloader, prepare_inputs
from services.domain.edit_refusals import cooldown_refusal, queue_closed, queue_refusal, quota_refusal, upstream_failure
from services.domain.edit_upstream import Hub, PlannedEdit, send_upstream
from services.domain.job_queue import JobQueue, QueueClosed, QueueRefused, Ticket
from services.domain.rejections import CoolingDown, RejectionTracker
from services.domain.screening import Screening, ScreeningRefused, ScreeningRules, Stage, Verdict, refusal_text
from services.domain.upstream import ModelHubBadRequestError, ModelHubContentPolicyError, ModelHubError
from services.domain.validation import CheckedEdit, TypedEdit, validate
from services.imaging.images import to_data_url
from services.imaging.kept_inputs import KeptPicture
from services.imaging.pictures import Picture
from services.storage.database import outlast, unreachable
from services.storage.jobs import InputRole, JobStore, NewJob, Origin
from services.storage.quota import SETTLE_PATIENCE_SECONDS, QuotaExceeded, QuotaStore, Reservation
from services.storage.screening_cases import CaseStore, NewCase
from services.storage.settings import GuildSettings
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)

MASK_FILENAME = "outpaint-mask.png"  # the name a grown canvas's mask is recorded under
PROGRESS_INTERVAL = 3.0  # seconds between progress updates while an edit waits or runs
# How long the end of an edit waits for a progress update already on its way to finish.
PROGRESS_SETTLE_SECONDS = 10.0
T = TypeVar("T")


class EditOutcome(enum.Enum):
    """How an edit ended, as metrics count it."""

    DELIVERED = "delivered"
    PARTIAL = "partial"  # some pictures posted (and charged), the rest not
    REFUSED_INPUT = "refused_input"
    REFUSED_QUOTA = "refused_quota"
    REFUSED_QUEUE = "refused_queue"
    REFUSED_SCREENING = "refused_screening"  # the server's screening refused the prompt, the input or every result
    UPSTREAM_ERROR = "upstream_error"
    DISCORD_ERROR = "discord_error"
    CANCELLED = "cancelled"


class EditObserver(Protocol):
    """Told how every edit ended and how long admitted edits waited for their turn (the metrics)."""

    def edit_finished(self, outcome: EditOutcome, delivered: int) -> None: ...

    def queue_waited(self, seconds: float) -> None: ...


class OfferedModels(Protocol):
    """The editing models a member may choose (`ModelCatalog` implements it)."""

    async def available(self) -> Sequence[str]: ...


class DeliveryFailed(Refusal):
    """`deliver` could not post (all of) the pictures: Discord refused, or the channel is out of reach."""


@dataclass(frozen=True)
class SentPicture:
    """An input as it went upstream: its (signed, expiring) URL, None when it went as the kept copy (the job's
    record holds that copy: `JobStore.kept_inputs`)."""

    url: str | None


@dataclass(frozen=True)
class SentEdit:
    """What went upstream, once it did: the options with the size resolved, and the inputs' kept copies."""

    model: str
    prompt: str
    size: tuple[int, int]
    count: int
    output_format: str
    image: SentPicture
    mask: SentPicture | None = None


@dataclass(frozen=True)
class Requester:
    """Who asked, and where: quota rules follow the member's roles.

    `guild_id` is whose rules apply: the server's, or `PERSONAL` (services/storage/quota.py) where no server
    installed Retouch; `place_guild_id` the server the member is in, if any (kept with the job for `/jobs`).
    """

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    place_guild_id: int | None = None
    private: bool = False  # the results go to the member alone


@dataclass(frozen=True)
class Screen:
    """The server's screening rules for one edit, and the member's language for the reason."""

    rules: ScreeningRules
    locale: str | None = None


@dataclass(frozen=True)
class EditProgress:
    """Where a running edit stands: checking the inputs, waiting in line (where, how long), or editing."""

    stage: Literal["checking", "waiting", "editing"]
    count: int
    elapsed: float
    position: int = 0  # 0: past the line, waiting only for the upstream's image rate
    waiting: int = 0
    expected_wait: float = 0.0


ShowProgress = Callable[[EditProgress], Awaitable[None]]


@dataclass(eq=False)
class Delivery:
    """The pictures to post, and the count of those posted: that count is what the member is charged."""

    job_id: int
    sent: SentEdit
    pictures: list[bytes]
    _jobs: JobStore
    delivered: int = 0

    async def posted(self, pictures: Sequence[Picture]) -> None:
        """One message went out with these pictures: they are charged, and recorded for its buttons."""
        self.delivered += len(pictures)
        # Recorded even if the database is away for a while: without the record its buttons would not work. (Should
        # a commit's answer be the thing lost, the retry records the message twice: a picture offered twice to Remix.)
        await outlast(lambda: self._jobs.add_results(self.job_id, pictures), SETTLE_PATIENCE_SECONDS)

    async def withdrawn(self) -> bool:
        """Whether the job was deleted meanwhile (its Delete button): then nothing more is posted or charged."""
        try:
            job = await self._jobs.get(self.job_id)
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The picture is out already and must be counted (and charged); a Delete cannot be checked just now.
            log.warning("Could not check whether job %d was deleted (%r); delivering on", self.job_id, exc)
            return False
        return job is not None and job.status == "deleted"


Deliver = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True)
class EndedEdit:
    """How one edit ended; `refusal` says why when it did not deliver everything."""

    outcome: EditOutcome
    requested: int
    delivered: int = 0
    refusal: Refusal | None = None
    sent: SentEdit | None = None  # once the upstream answered
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
        hub: Hub,
        downloader: PictureDownloader,
        models: OfferedModels,
        max_input_bytes: int,
        rejections: RejectionTracker | None = None,
        observer: EditObserver | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        screening: Screening | None = None,
        cases: CaseStore | None = None,
    ) -> None:
        self._rejections = rejections or RejectionTracker()
        self._queue = queue
        self._quota = quota
        self._jobs = jobs
        self._hub = hub
        self._downloader = downloader
        self._models = models
        self._max_input_bytes = max_input_bytes
        self._observer = observer
        self._progress_interval = progress_interval
        self._screening = screening
        self._cases = cases

    async def check(self, form: TypedEdit, settings: GuildSettings) -> CheckedEdit:
        """The one check of every entry point, before anything is spent; its refusal counts as `refused_input`."""
        try:
            return validate(
                form,
                settings=settings,
                offered_models=await self._models.available(),
                max_input_bytes=self._max_input_bytes,
            )
        except Refusal:
            self._count(EditOutcome.REFUSED_INPUT, 0)
            raise

    async def run(
        self,
        choice: CheckedEdit,
        requester: Requester,
        *,
        deliver: Deliver,
        origin: Origin | None = None,
        progress: ShowProgress | None = None,
        screen: Screen | None = None,
    ) -> EndedEdit:
        """One edit, start to end; the ending says how it went. `screen`: the server's screening, when it is on.

        Cancellation propagates after settling (the observer counts it as `cancelled`); so does any
        unexpected error, which the observer does not count: the caller logs it and apologises.
        """
        try:
            # A member whose edits the upstream keeps rejecting waits before spending the shared rate again.
            self._rejections.check(requester.guild_id, requester.user_id)
        except CoolingDown as exc:
            refusal = Refusal(cooldown_refusal(exc))
            return self._ended(EndedEdit(EditOutcome.REFUSED_QUEUE, choice.count, refusal=refusal))
        try:
            ticket = self._queue.admit(requester.guild_id, requester.user_id, choice.count)
        except QueueRefused as exc:
            refusal = Refusal(queue_refusal(exc), field="queue")
            return self._ended(EndedEdit(EditOutcome.REFUSED_QUEUE, choice.count, refusal=refusal))
        except QueueClosed:
            refusal = Refusal(queue_closed(), field="queue")
            return self._ended(EndedEdit(EditOutcome.REFUSED_QUEUE, choice.count, refusal=refusal))
        attempt = _Attempt()
        try:
            return self._ended(
                await self._run_admitted(
                    choice, requester, origin or Origin(), ticket, deliver, progress, attempt, screen
                )
            )
        except asyncio.CancelledError:
            self._ended(EndedEdit(EditOutcome.CANCELLED, choice.count, attempt.delivered))
            raise
        finally:
            self._queue.finish(ticket)

    def _count(self, outcome: EditOutcome, delivered: int) -> None:
        if self._observer is not None:
            self._observer.edit_finished(outcome, delivered)

    def _ended(self, ended: EndedEdit) -> EndedEdit:
        self._count(ended.outcome, ended.delivered)
        return ended

    async def _run_admitted(
        self,
        choice: CheckedEdit,
        requester: Requester,
        origin: Origin,
        ticket: Ticket,
        deliver: Deliver,
        progress: ShowProgress | None,
        attempt: _Attempt,
        screen: Screen | None = None,
    ) -> EndedEdit:
        started = time.monotonic()
        screening = screen if screen is not None and screen.rules.on and self._screening is not None else None
        if progress is not None:
            await _quietly(progress(EditProgress("checking", choice.count, 0.0)))
        # Quota before any download: a member who cannot be served costs no download and no decode.
        try:
            reservation = await self._quota.reserve(
                requester.guild_id, requester.user_id, requester.role_ids, choice.count
            )
        except QuotaExceeded as exc:
            refusal = Refusal(quota_refusal(exc), field="count")
            return EndedEdit(EditOutcome.REFUSED_QUOTA, choice.count, refusal=refusal)
        # From here every way out goes through the finally: the reservation is settled whatever happens.
        job_id: int | None = None
        keeping: asyncio.Task[None] | None = None
        delivery: Delivery | None = None
        sent: SentEdit | None = None
        billed = 0  # images the Model Hub may have billed for this edit, retries included
        try:
            try:
                plan, recorded, keeping = await self._record(choice, requester, origin)
            except Refusal as refused:
                return EndedEdit(EditOutcome.REFUSED_INPUT, choice.count, refusal=refused)
            job_id = recorded
            if screening is not None:
                # Before the line and the image call: a refused prompt or input costs no image and no wait.
                source = (await self._kept_copies(keeping, recorded))["source"].data
                verdict = await self._screen_input(screening, plan.prompt, source)
                if not verdict.allowed:
                    text = refusal_text(verdict)
                    screened_out = await self._refused(requester, recorded, "input", verdict, screening, text)
                    return EndedEdit(EditOutcome.REFUSED_SCREENING, choice.count, refusal=screened_out, job_id=job_id)
            async with self._showing(progress, ticket, choice.count, started), self._queue.running(ticket):
                if self._observer is not None and ticket.waited is not None:
                    self._observer.queue_waited(ticket.waited)
                answer = await send_upstream(self._hub, plan, lambda: self._kept_copies(keeping, recorded), paced=True)
            billed = answer.billed
            sent = _sent(plan)
            pictures = [image.data for image in answer.images]
            held_back: ScreeningRefused | None = None
            if screening is not None and screening.rules.mode == "pictures":
                # Each result before it is posted; one held back is not posted, so not charged (the budget
                # still counts it: the Model Hub billed it).
                pictures, held_back = await self._screen_results(screening, requester, recorded, plan.prompt, pictures)
                if not pictures:
                    assert held_back is not None
                    return EndedEdit(EditOutcome.REFUSED_SCREENING, choice.count, 0, held_back, sent, job_id)
            delivery = attempt.delivery = Delivery(job_id, sent, pictures, self._jobs)
            await deliver(delivery)
        except ModelHubError as exc:
            log.info("Edit for user %s failed upstream: %r", requester.user_id, exc)
            billed = exc.billable_images
            if isinstance(exc, ModelHubContentPolicyError | ModelHubBadRequestError):
                self._rejections.record(requester.guild_id, requester.user_id, choice.count)
            delivered = delivery.delivered if delivery else 0
            failure = Refusal(upstream_failure(exc))
            return EndedEdit(EditOutcome.UPSTREAM_ERROR, choice.count, delivered, failure, sent, job_id)
        except DeliveryFailed as exc:
            assert delivery is not None
            return EndedEdit(EditOutcome.DISCORD_ERROR, choice.count, delivery.delivered, exc, sent, job_id)
        finally:
            delivered = delivery.delivered if delivery else 0
            await settle_surely(self._settle(reservation, job_id, keeping, delivered, billed))
        if delivery.delivered == 0:
            nothing = Refusal(Text(words.DELIVERED_NOTHING))
            return EndedEdit(EditOutcome.DISCORD_ERROR, choice.count, 0, nothing, sent, job_id)
        outcome = EditOutcome.DELIVERED if delivery.delivered >= choice.count else EditOutcome.PARTIAL
        return EndedEdit(outcome, choice.count, delivery.delivered, held_back, sent, job_id)

    async def _screen_input(self, screen: Screen, prompt: str, source: bytes) -> Verdict:
        assert self._screening is not None
        return await self._screening.check_input(screen.rules, prompt, source, screen.locale)

    async def _screen_results(
        self, screen: Screen, requester: Requester, job_id: int, prompt: str, pictures: list[bytes]
    ) -> tuple[list[bytes], ScreeningRefused | None]:
        """The results the rules let through, and the refusal (with its case) for those held back, if any."""
        assert self._screening is not None
        screening = self._screening
        verdicts = await asyncio.gather(
            *(screening.check_result(screen.rules, prompt, picture, screen.locale) for picture in pictures)
        )
        allowed = [picture for picture, verdict in zip(pictures, verdicts, strict=True) if verdict.allowed]
        refused = [verdict for verdict in verdicts if not verdict.allowed]
        if not refused:
            return allowed, None
        text = refusal_text(refused[0], refused=len(refused), count=len(pictures))
        return allowed, await self._refused(requester, job_id, "result", refused[0], screen, text)

    async def _refused(
        self, requester: Requester, job_id: int, stage: Stage, verdict: Verdict, screen: Screen, text: Text
    ) -> ScreeningRefused:
        """Open the case the member may appeal, and say why."""
        assert self._cases is not None
        case_id = await self._cases.open(
            NewCase(
                requester.guild_id,
                requester.channel_id,
                requester.user_id,
                job_id,
                stage,
                verdict.category if not verdict.unchecked else "unchecked",
                verdict.reason,
                screen.locale,
            )
        )
        log.info("Screening refused job %d at the %s stage (case %d)", job_id, stage, case_id)
        return ScreeningRefused(text, case_id)

    async def _record(
        self, choice: CheckedEdit, requester: Requester, origin: Origin
    ) -> tuple[PlannedEdit, int, asyncio.Task[None]]:
        """Read and inspect the inputs and record the job; the task keeping their copies (the bytes end there).

        The copies are written while the edit goes on (a picture's megabyte is the slowest write of an edit), and
        read only by a fallback to data URLs, a screening, an audit entry or a later Reroll, which wait for it.
        A Reroll (`origin.inputs_of`) reads the earlier job's kept copies instead of downloading.
        """
        earlier = await self._jobs.kept_inputs(origin.inputs_of) if origin.inputs_of is not None else {}
        plan, copies = await prepare_inputs(choice, earlier, self._downloader)
        if choice.growth is not None:
            # The mask of a grown canvas was made here: on record, so that a Reroll sends the kept copies again.
            choice = dataclasses.replace(choice, mask=await _made_mask(copies["mask"], choice.image))
        job_id = await self._jobs.create(_new_job(choice, plan, requester, origin))
        return plan, job_id, asyncio.ensure_future(self._keep(job_id, copies))

    async def _keep(self, job_id: int, copies: Mapping[InputRole, KeptPicture]) -> None:
        """Keep the inputs' copies. Without them only a later Reroll is the poorer: it downloads the pictures
        again, while Discord still has them."""
        try:
            await self._jobs.keep_inputs(job_id, copies)
        except Exception:
            log.warning("Could not keep the inputs of job %d; a Reroll downloads them again", job_id, exc_info=True)

    async def _kept_copies(self, keeping: asyncio.Task[None], job_id: int) -> dict[InputRole, KeptPicture]:
        await asyncio.shield(keeping)  # shielded: an edit cancelled meanwhile leaves the copies to be written
        return await self._jobs.kept_inputs(job_id)

    async def _settle(
        self,
        reservation: Reservation,
        job_id: int | None,
        keeping: asyncio.Task[None] | None,
        delivered: int,
        billed: int,
    ) -> None:
        """Charge what was delivered and return the rest, count against the server budget what the Model Hub
        may have billed beyond that; then close the job record, if there is one, once its copies are kept."""
        await self._quota.settle(reservation.id, delivered)
        if billed > delivered:
            log.info("Counting %d image(s) the Model Hub may have billed against the server budget", billed - delivered)
            await self._quota.charge_upstream(reservation.guild_id, billed - delivered, at=reservation.created_at)
        if keeping is not None:
            await keeping  # what reads the job next (its audit entry, a Reroll) finds its copies
        if job_id is not None:
            try:
                await self._jobs.finish(job_id, delivered)
            except Exception:
                # The money is right already; a job left `running` only shows up wrong in the record.
                log.exception("Could not close job %d", job_id)

    @contextlib.asynccontextmanager
    async def _showing(
        self, progress: ShowProgress | None, ticket: Ticket, count: int, started: float
    ) -> AsyncIterator[None]:
        """Tell `progress` where the edit stands every few seconds while it waits and runs."""
        if progress is None:
            yield
            return

        ended = asyncio.Event()

        async def tick() -> None:
            while True:
                try:
                    await asyncio.wait_for(ended.wait(), self._progress_interval)
                    return
                except TimeoutError:
                    pass
                elapsed = time.monotonic() - started
                if ticket.started_at is None:
                    view = await self._queue.view(ticket)
                    status = EditProgress("waiting", count, elapsed, view.position, view.waiting, view.expected_wait)
                else:
                    status = EditProgress("editing", count, elapsed)
                await _quietly(progress(status))

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            # An update in flight is let finish, never cancelled: a request cancelled while discord.py waits out
            # an exhausted rate-limit bucket keeps that bucket's lock for good, and every later request with the
            # interaction's token (the results, the summary) would wait on it forever. An update that hangs is
            # left to itself after a while rather than holding up the edit.
            ended.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), PROGRESS_SETTLE_SECONDS)


def _sent(plan: PlannedEdit) -> SentEdit:
    """What went upstream. Not the inputs' bytes: only an audit entry shows them, and it reads the kept copies."""
    return SentEdit(
        plan.model,
        plan.prompt,
        plan.size,
        plan.count,
        plan.output_format,
        SentPicture(plan.image_url),
        SentPicture(plan.mask_url) if plan.has_mask else None,
    )


async def _made_mask(mask: KeptPicture, image: Picture) -> Picture:
    """The record of a mask Retouch made: its data URL. No size: it is the canvas's, which the source is not."""
    url = await to_data_url(mask.data, mask.content_type)
    return Picture(url, MASK_FILENAME, mask.content_type, len(mask.data), channel_id=image.channel_id)


def _new_job(choice: CheckedEdit, plan: PlannedEdit, requester: Requester, origin: Origin) -> NewJob:
    return NewJob(
        guild_id=requester.place_guild_id or requester.guild_id or None,
        channel_id=requester.channel_id,
        user_id=requester.user_id,
        prompt=plan.prompt,
        model=plan.model,
        size=f"{plan.size[0]}x{plan.size[1]}",
        count=plan.count,
        output_format=plan.output_format,
        source=choice.image,
        mask=choice.mask,
        parent_job_id=origin.parent_job_id,
        private=requester.private,
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
