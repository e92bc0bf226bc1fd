"""The edit use case without Discord: a fake `deliver` and a fake Model Hub over a real SQLite store.

Every test asserts the money (images left in the member's quota) and the job record's status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from emulators.modelhub import SCREENING_MODEL, ModelHubEmulator
from services.domain.edit_inputs import PictureDownloader
from services.domain.edit_refusals import (
    cooldown_refusal,
    period_name,
    queue_closed,
    queue_refusal,
    quota_refusal,
    upstream_failure,
)
from services.domain.editing import (
    Delivery,
    DeliveryFailed,
    EditOutcome,
    EditProgress,
    EditService,
    EndedEdit,
    Requester,
    Screen,
    SentEdit,
    SentPicture,
)
from services.domain.job_queue import GuildLineFull, JobQueue, MemberLineFull, QueueFull, QueueRefused
from services.domain.pacing import BucketRule, ImagePacer, MemoryBucketStore
from services.domain.rejections import Cooldown, CoolingDown
from services.domain.screening import (
    Mode,
    Screening,
    ScreeningFailed,
    ScreeningRefused,
    ScreeningRequest,
    ScreeningRules,
    Verdict,
    refusal_text,
)
from services.domain.upstream import (
    HubAnswer,
    HubImage,
    HubRequest,
    ModelHubAuthenticationError,
    ModelHubBadRequestError,
    ModelHubContentPolicyError,
    ModelHubError,
    ModelHubMalformedResponseError,
    ModelHubRateLimitError,
    ModelHubTimeoutError,
    ModelHubUnavailableError,
)
from services.domain.validation import CheckedEdit, TypedEdit
from services.imaging.images import screening_data_url, to_data_url
from services.imaging.kept_inputs import KeptPicture
from services.imaging.outpaint import Growth
from services.imaging.pictures import Picture
from services.outside.screening import ScreeningClient
from services.outside.secret import Secret
from services.storage.database import Database, open_database
from services.storage.jobs import InputRole, JobStore, NewJob, Origin
from services.storage.quota import (
    BudgetStatus,
    Period,
    QuotaExceeded,
    QuotaRule,
    QuotaStatus,
    QuotaStore,
    RuleSource,
)
from services.storage.screening_cases import Case, CaseStore
from services.storage.settings import GuildSettings
from services.text.refusal import Refusal
from services.text.words import Text
from tests.helpers import until
from tests.images import alpha_mask, png_bytes

GUILD, CHANNEL, MEMBER, OTHER = 1, 2, 3, 4
QUOTA = 5
SOURCE = png_bytes(64, 48)
RESULT = png_bytes(64, 48, fmt="PNG")
LARGE = png_bytes(2560, 1280)  # larger than the upstream takes: kept (and sent) scaled down to 2048x1024
MASK = alpha_mask(64, 48, (0, 0, 32, 24))


def turned_jpeg() -> bytes:
    """A 64x48 JPEG stored with EXIF orientation 6: Discord (and a member) see it 48x64, turned upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.open(io.BytesIO(SOURCE)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


TURNED = turned_jpeg()


class FakeHub:
    """Answers `edit` with `count` pictures, or raises `error`; `gate` holds the call until it is set."""

    def __init__(self) -> None:
        self.error: ModelHubError | None = None
        self.gate: asyncio.Event | None = None
        self.calling = asyncio.Event()
        self.requests: list[HubRequest] = []
        self.paced: list[bool] = []  # per request: whether the caller already waited for the image rate

    async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer:
        self.requests.append(request)
        self.paced.append(paced)
        self.calling.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return HubAnswer([HubImage(RESULT, "PNG", 64, 48) for _ in range(request.n)], attempts=1)


class Models:
    """The one model the tests' choices name."""

    async def available(self) -> tuple[str, ...]:
        return ("flux",)


@dataclass
class Observer:
    finished: list[tuple[EditOutcome, int]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def edit_finished(self, outcome: EditOutcome, delivered: int) -> None:
        self.finished.append((outcome, delivered))

    def queue_waited(self, seconds: float) -> None:
        self.waits.append(seconds)


class SlowSettleQuota(QuotaStore):
    """The real store, whose settle waits for `gate` first: a window in which to cancel the settling."""

    def __init__(self, db: Database, rule: QuotaRule) -> None:
        super().__init__(db, rule)
        self.gate = asyncio.Event()
        self.settling = asyncio.Event()

    async def settle(self, reservation_id: int, delivered: int) -> bool:
        self.settling.set()
        await self.gate.wait()
        return await super().settle(reservation_id, delivered)


class BrokenJobs(JobStore):
    """The real job store with a database that refuses the job record."""

    async def create(self, job: NewJob) -> int:
        raise RuntimeError("the jobs table is locked")


class UnkeepingJobs(JobStore):
    """The real job store with a database that refuses the inputs' copies (a full disk, say)."""

    async def keep_inputs(self, job_id: int, inputs: Mapping[InputRole, KeptPicture]) -> None:
        raise RuntimeError("database or disk is full")


@dataclass
class Edits:
    db: Database
    session: aiohttp.ClientSession
    base_url: str
    downloads: list[str]  # the paths the service fetched from the picture server
    hub: FakeHub = field(default_factory=FakeHub)
    observer: Observer = field(default_factory=Observer)

    def service(
        self,
        *,
        quota: QuotaStore | None = None,
        jobs: JobStore | None = None,
        queue: JobQueue | None = None,
        progress_interval: float = 3.0,
        max_input_bytes: int = 1 << 20,
        screening: Screening | None = None,
    ) -> EditService:
        self.quota = quota or QuotaStore(self.db, QuotaRule(QUOTA, Period.DAY))
        self.jobs = jobs or JobStore(self.db)
        self.queue = queue or queue_of(max_in_flight=2)
        return EditService(
            queue=self.queue,
            quota=self.quota,
            jobs=self.jobs,
            hub=self.hub,
            downloader=PictureDownloader(self.session, max_input_bytes),
            models=Models(),
            max_input_bytes=max_input_bytes,
            observer=self.observer,
            progress_interval=progress_interval,
            screening=screening,
            cases=self.cases,
        )

    def choice(
        self, count: int = 2, *, path: str = "/source.png", size: tuple[int, int] | None = (64, 64)
    ) -> CheckedEdit:
        picture = Picture(f"{self.base_url}{path}", "source.png", "image/png", len(SOURCE), 64, 48, 11, CHANNEL)
        return CheckedEdit("make it blue", "flux", size, count, "png", picture, None, 1024)

    @property
    def cases(self) -> CaseStore:
        return CaseStore(self.db)

    async def left(self, user_id: int = MEMBER) -> int | None:
        return (await self.quota.explain(GUILD, user_id, [])).remaining

    async def status(self, job_id: int = 1) -> str | None:
        job = await JobStore(self.db).get(job_id)
        return job.status if job else None


def queue_of(**options: int) -> JobQueue:
    return JobQueue(pacer=ImagePacer(BucketRule(6000, 1000), MemoryBucketStore()), **options)


@pytest.fixture
async def edits(tmp_path) -> AsyncIterator[Edits]:
    downloads: list[str] = []

    def serving(body: bytes):
        async def handler(request: web.Request) -> web.Response:
            downloads.append(request.path)
            return web.Response(body=body, content_type="image/png")

        return handler

    app = web.Application()
    app.router.add_get("/source.png", serving(SOURCE))
    app.router.add_get("/large.png", serving(LARGE))
    app.router.add_get("/words.png", serving(b"not a picture at all"))
    app.router.add_get("/mask.png", serving(MASK))
    app.router.add_get("/turned.jpg", serving(TURNED))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with open_database(f"sqlite:///{tmp_path / 'retouch.db'}") as db, aiohttp.ClientSession() as session:
        yield Edits(db, session, f"http://127.0.0.1:{port}", downloads)
    await runner.cleanup()


def posting(per_message: int, *, then: Callable[[], Awaitable[None]] | None = None):
    """A fake Discord side: posts `per_message` pictures per message, and after the first message, `then`."""

    async def deliver(delivery: Delivery) -> None:
        for start in range(0, len(delivery.pictures), per_message):
            batch = delivery.pictures[start : start + per_message]
            await delivery.posted(
                [
                    Picture(
                        f"https://cdn/r{start + n}.png",
                        "r.png",
                        "image/png",
                        len(d),
                        64,
                        64,
                        100 + start + n,
                        CHANNEL,
                        500 + start,
                        MEMBER,
                    )
                    for n, d in enumerate(batch)
                ]
            )
            if then is not None:
                await then()

    return deliver


def requester(user_id: int = MEMBER) -> Requester:
    return Requester(GUILD, CHANNEL, user_id)


async def test_a_delivered_edit_charges_every_picture_and_records_them(edits: Edits) -> None:
    service = edits.service()
    report = await service.run(edits.choice(2), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED and report.delivered == 2 and report.refusal is None
    assert await edits.left() == QUOTA - 2
    assert await edits.status() == "done"
    job = await edits.jobs.get(1)
    assert job is not None and [p.url for p in job.results] == ["https://cdn/r0.png", "https://cdn/r1.png"]
    assert job.source.url.endswith("/source.png") and job.size == "64x64"
    assert edits.hub.requests[0].url.endswith("/source.png")  # by URL first
    assert edits.observer.finished == [(EditOutcome.DELIVERED, 2)] and len(edits.observer.waits) == 1


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ModelHubContentPolicyError("Request rejected", status=400), "content policy rejected"),
        (ModelHubBadRequestError("prompt too long", status=400), "refused the request and said: “prompt too long”"),
        (ModelHubAuthenticationError("bad token", status=401), "IONOS_API_TOKEN"),
        (ModelHubRateLimitError("slow down", retry_after=12), "try again in about 12 s"),
        (ModelHubTimeoutError("no answer in 120 s"), "timed out: it did not answer in time."),
        (ModelHubUnavailableError("HTTP 503: down", status=503), "unavailable right now (HTTP 503); please try"),
        (ModelHubUnavailableError("could not reach the Model Hub (ClientConnectorError)"), "cannot be reached right"),
        (ModelHubMalformedResponseError("no data"), "could not read; please try again."),
        (ModelHubError("something odd"), "The Model Hub failed; please try again later."),
    ],
)
async def test_every_upstream_failure_returns_the_whole_reservation(edits: Edits, error: ModelHubError, words: str):
    service = edits.service()
    edits.hub.error = error
    delivered: list[Delivery] = []

    async def deliver(delivery: Delivery) -> None:
        delivered.append(delivery)

    report = await service.run(edits.choice(3), requester(), deliver=deliver)
    assert report.outcome is EditOutcome.UPSTREAM_ERROR and report.delivered == 0
    assert (
        report.refusal is not None
        and words in str(report.refusal.text)
        and "Nothing was charged." in str(report.refusal.text)
    )
    # The error's own English (a detail for the logs, perhaps an exception's name) never reaches the member.
    if not isinstance(error, ModelHubBadRequestError):
        assert error.message not in report.refusal.text.render() and error.message not in report.refusal.text.render(
            "de"
        )
    assert delivered == [] and len(edits.hub.requests) == 1  # only a URL it could not fetch is sent again
    assert await edits.left() == QUOTA
    assert await edits.status() == "failed"
    assert edits.observer.finished == [(EditOutcome.UPSTREAM_ERROR, 0)]


async def test_a_url_the_hub_cannot_fetch_is_sent_again_as_bytes(edits: Edits) -> None:
    class FetchFails(FakeHub):
        async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer:
            if request.url.startswith("http"):
                self.requests.append(request)
                raise ModelHubBadRequestError("could not fetch url", status=400, param="url")
            return await super().edit(request, paced=paced)

    edits.hub = FetchFails()
    service = edits.service()
    report = await service.run(edits.choice(1), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED
    assert [r.url[:22] for r in edits.hub.requests] == [edits.hub.requests[0].url[:22], "data:image/png;base64,"]
    assert await edits.left() == QUOTA - 1


async def test_a_partial_delivery_charges_only_what_was_posted(edits: Edits) -> None:
    service = edits.service()

    async def deliver(delivery: Delivery) -> None:
        await posting(10)(Delivery(delivery.job_id, delivery.sent, delivery.pictures[:1], delivery._jobs))
        delivery.delivered = 1

    report = await service.run(edits.choice(3), requester(), deliver=deliver)
    assert report.outcome is EditOutcome.PARTIAL and report.delivered == 1
    assert await edits.left() == QUOTA - 1
    assert await edits.status() == "done"
    assert edits.observer.finished == [(EditOutcome.PARTIAL, 1)]


async def test_discord_refusing_the_second_message_charges_the_first(edits: Edits) -> None:
    service = edits.service()

    async def refuse() -> None:
        raise DeliveryFailed(Text("Discord refused (HTTP 413)."))

    report = await service.run(edits.choice(3), requester(), deliver=posting(2, then=refuse))
    assert report.outcome is EditOutcome.DISCORD_ERROR and report.delivered == 2
    assert str(report.refusal.text) == "Discord refused (HTTP 413)."
    assert await edits.left() == QUOTA - 2
    assert await edits.status() == "done"


async def test_an_unexpected_failure_after_a_partial_delivery_propagates_after_settling(edits: Edits) -> None:
    service = edits.service()

    async def crash() -> None:
        raise RuntimeError("bug in the Discord side")

    with pytest.raises(RuntimeError, match="bug in the Discord side"):
        await service.run(edits.choice(3), requester(), deliver=posting(1, then=crash))
    assert await edits.left() == QUOTA - 1
    assert await edits.status() == "done"


async def test_nothing_posted_is_a_discord_error_and_costs_nothing(edits: Edits) -> None:
    service = edits.service()

    async def deliver(delivery: Delivery) -> None:
        return None

    report = await service.run(edits.choice(2), requester(), deliver=deliver)
    assert report.outcome is EditOutcome.DISCORD_ERROR and report.delivered == 0
    assert await edits.left() == QUOTA and await edits.status() == "failed"


async def test_a_failing_job_record_returns_the_reservation(edits: Edits) -> None:
    service = edits.service(jobs=BrokenJobs(edits.db))
    with pytest.raises(RuntimeError, match="jobs table is locked"):
        await service.run(edits.choice(2), requester(), deliver=posting(10))
    assert await edits.left() == QUOTA
    assert edits.hub.requests == []
    assert edits.queue.in_line == 0


async def test_inputs_that_cannot_be_kept_cost_only_a_later_reroll_its_copies(
    edits: Edits, caplog: pytest.LogCaptureFixture
) -> None:
    service = edits.service(jobs=UnkeepingJobs(edits.db))
    report = await service.run(edits.choice(2), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED and report.delivered == 2
    assert await edits.left() == QUOTA - 2 and await edits.status() == "done"
    assert await JobStore(edits.db).kept_inputs(1) == {}
    assert "Could not keep the inputs of job 1; a Reroll downloads them again" in caplog.text


async def test_a_full_queue_refuses_before_anything_is_spent(edits: Edits) -> None:
    service = edits.service(queue=queue_of(max_in_flight=1, max_queued=0))
    report = await service.run(edits.choice(2), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.REFUSED_QUEUE and report.refusal.field == "queue"
    assert str(report.refusal.text).startswith("Retouch is busy: the queue is full. Please try again in about")
    assert await edits.left() == QUOTA and await edits.status() is None
    assert edits.observer.finished == [(EditOutcome.REFUSED_QUEUE, 0)]


async def test_a_closed_queue_refuses_with_the_restart_words(edits: Edits) -> None:
    service = edits.service()
    edits.queue.close()
    report = await service.run(edits.choice(2), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.REFUSED_QUEUE
    assert str(report.refusal.text).startswith("Retouch is restarting and takes no new edits right now")


async def test_more_than_the_quota_is_refused_and_records_no_job(edits: Edits) -> None:
    service = edits.service()
    report = await service.run(edits.choice(QUOTA + 1), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.REFUSED_QUOTA and report.refusal.field == "count"
    assert str(report.refusal.text).startswith(
        f"You have {QUOTA} of {QUOTA} images left this day and asked for {QUOTA + 1}."
    )
    assert await edits.left() == QUOTA and await edits.status() is None and edits.hub.requests == []


async def test_a_member_with_no_quota_left_costs_no_download(edits: Edits) -> None:
    service = edits.service(quota=QuotaStore(edits.db, QuotaRule(0, Period.DAY)))
    report = await service.run(edits.choice(1), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.REFUSED_QUOTA and report.refusal.field == "count"
    assert edits.downloads == [] and edits.hub.requests == []


async def test_a_picture_that_is_not_one_is_refused_after_the_reservation_and_refunded(edits: Edits) -> None:
    service = edits.service()
    report = await service.run(edits.choice(2, path="/words.png"), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.REFUSED_INPUT and report.refusal.field == "image"
    assert "`image`" in str(report.refusal.text)
    assert await edits.left() == QUOTA and await edits.status() is None and edits.hub.requests == []


async def test_the_inputs_are_kept_and_a_reroll_reads_them_without_downloading(edits: Edits) -> None:
    service = edits.service()
    assert (await service.run(edits.choice(1), requester(), deliver=posting(10))).outcome is EditOutcome.DELIVERED
    assert await edits.jobs.kept_inputs(1) == {"source": KeptPicture(SOURCE, "image/png")}
    assert edits.downloads == ["/source.png"]
    # The upload is gone (a purged ephemeral attachment): the Reroll needs only the kept copy.
    report = await service.run(
        edits.choice(1, path="/gone.png"), requester(OTHER), deliver=posting(10), origin=Origin(1, inputs_of=1)
    )
    assert report.outcome is EditOutcome.DELIVERED and edits.downloads == ["/source.png"]
    assert edits.hub.requests[-1].url == await to_data_url(SOURCE, "image/png")
    assert await edits.jobs.kept_inputs(2) == {"source": KeptPicture(SOURCE, "image/png")}
    # No copy of the input travels with the result: the audit's previews read the job's kept copies.
    assert report.sent is not None and report.sent.image == SentPicture(None)


async def test_a_picture_larger_than_the_upstream_takes_goes_as_its_scaled_copy(edits: Edits) -> None:
    service = edits.service(max_input_bytes=32 << 20)
    edits_choice = edits.choice(1, path="/large.png", size=None)
    report = await service.run(edits_choice, requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED
    [request] = edits.hub.requests
    assert request.url.startswith("data:image/") and request.size == (1024, 512)
    kept = (await edits.jobs.kept_inputs(1))["source"]
    assert Image.open(io.BytesIO(kept.data)).size == (2048, 1024)


async def test_a_picture_that_cannot_be_downloaded_is_refused_naming_the_field(edits: Edits) -> None:
    service = edits.service()
    report = await service.run(edits.choice(2, path="/gone.png"), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.REFUSED_INPUT and report.refusal.field == "image"
    assert str(report.refusal.text) == "Could not download `image` from Discord (HTTP 404); please upload it again."
    assert await edits.left() == QUOTA and await edits.status() is None


async def cancel(task: asyncio.Task[EndedEdit]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_while_calling_upstream_returns_the_reservation(edits: Edits) -> None:
    service = edits.service()
    edits.hub.gate = asyncio.Event()
    task = asyncio.create_task(service.run(edits.choice(2), requester(), deliver=posting(10)))
    await edits.hub.calling.wait()
    assert await edits.left() == QUOTA - 2  # held while the call runs
    await cancel(task)
    assert await edits.left() == QUOTA
    assert await edits.status() == "failed"
    assert edits.observer.finished == [(EditOutcome.CANCELLED, 0)]
    assert edits.queue.in_line == 0


async def test_cancelled_while_waiting_in_line_returns_the_reservation(edits: Edits) -> None:
    service = edits.service(queue=queue_of(max_in_flight=1))
    edits.hub.gate = asyncio.Event()
    first = asyncio.create_task(service.run(edits.choice(1), requester(OTHER), deliver=posting(10)))
    await edits.hub.calling.wait()
    second = asyncio.create_task(service.run(edits.choice(2), requester(), deliver=posting(10)))

    async def recorded() -> bool:
        return await edits.status(2) == "running"

    await until(recorded, 10, "the second edit on record")  # reserved and recorded: now it waits for the only slot
    assert await edits.left() == QUOTA - 2
    assert len(edits.hub.requests) == 1
    await cancel(second)
    assert await edits.left() == QUOTA and await edits.status(2) == "failed"
    edits.hub.gate.set()
    assert (await first).outcome is EditOutcome.DELIVERED
    assert await edits.left(OTHER) == QUOTA - 1


async def test_cancelled_while_delivering_charges_only_what_was_posted(edits: Edits) -> None:
    service = edits.service()
    posted_one = asyncio.Event()

    async def hang() -> None:
        posted_one.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(service.run(edits.choice(3), requester(), deliver=posting(1, then=hang)))
    await posted_one.wait()
    await cancel(task)
    assert await edits.left() == QUOTA - 1
    assert await edits.status() == "done"
    assert edits.observer.finished == [(EditOutcome.CANCELLED, 1)]


async def test_cancelled_twice_while_settling_still_settles(edits: Edits) -> None:
    quota = SlowSettleQuota(edits.db, QuotaRule(QUOTA, Period.DAY))
    service = edits.service(quota=quota)
    task = asyncio.create_task(service.run(edits.choice(2), requester(), deliver=posting(10)))
    await quota.settling.wait()
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # still settling, cancellations or not
    quota.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await edits.left() == QUOTA - 2  # both pictures were posted before the cancellations: charged
    assert await edits.status() == "done"


async def test_progress_tells_checking_then_where_the_edit_stands(edits: Edits) -> None:
    service = edits.service(progress_interval=0.01)
    edits.hub.gate = asyncio.Event()
    seen: list[EditProgress] = []
    editing = asyncio.Event()

    async def progress(status: EditProgress) -> None:
        seen.append(status)
        if status.stage == "editing":
            editing.set()

    task = asyncio.create_task(service.run(edits.choice(2), requester(), deliver=posting(10), progress=progress))
    await editing.wait()
    edits.hub.gate.set()
    assert (await task).outcome is EditOutcome.DELIVERED
    assert seen[0].stage == "checking" and seen[0].count == 2
    assert {s.stage for s in seen[1:]} <= {"waiting", "editing"}


async def test_a_failing_progress_display_does_not_stop_the_edit(edits: Edits) -> None:
    service = edits.service(progress_interval=0.01)

    async def progress(status: EditProgress) -> None:
        raise RuntimeError("Discord said no")

    report = await service.run(edits.choice(1), requester(), deliver=posting(10), progress=progress)
    assert report.outcome is EditOutcome.DELIVERED and await edits.left() == QUOTA - 1


async def test_the_end_of_an_edit_lets_a_progress_update_in_flight_finish(edits: Edits) -> None:
    """discord.py keeps a webhook's rate-limit lock for good when a request is cancelled while it waits out
    the bucket, so a progress update already sent must be let finish, never cancelled."""
    service = edits.service(progress_interval=0.01)
    edits.hub.gate = asyncio.Event()
    updating, may_finish = asyncio.Event(), asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    async def progress(status: EditProgress) -> None:
        if status.stage != "editing":
            return
        started.append(status.stage)
        updating.set()
        await may_finish.wait()  # Discord is slow to answer this one
        finished.append(status.stage)

    task = asyncio.create_task(service.run(edits.choice(1), requester(), deliver=posting(10), progress=progress))
    await updating.wait()
    edits.hub.gate.set()  # the edit ends while the update is on its way
    await until(lambda: edits.hub.requests, 5, "the upstream call")
    may_finish.set()
    assert (await task).outcome is EditOutcome.DELIVERED
    assert finished == started == ["editing"]


# ------------------------------------------------------------------ the words of a refused edit

NEXT_FREE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # shown as Discord's <t:…:R>, localised by Discord


def exceeded(*, blocked_by: str, next_free: datetime | None, budget_free: datetime | None = None) -> QuotaExceeded:
    budget = BudgetStatus(QuotaRule(100, Period.WEEK), used=99, remaining=1, next_free_at=budget_free)
    status = QuotaStatus(
        QuotaRule(10, Period.DAY),
        RuleSource("server default"),
        used=8,
        limit=10,
        remaining=2,
        next_free_at=next_free,
        budget=budget,
        blocked_by=blocked_by,  # type: ignore[arg-type]
    )
    return QuotaExceeded(status, requested=3)


def test_a_member_over_their_quota_reads_what_is_left_and_when_the_next_frees_up():
    stamp = f"<t:{int(NEXT_FREE.timestamp())}:R>"
    assert quota_refusal(exceeded(blocked_by="member", next_free=NEXT_FREE)).render() == (
        f"You have 2 of 10 images left this day and asked for 3. The next one frees up {stamp}."
    )
    # Nothing used in the window yet (a limit of 0, say): no time to wait for.
    assert quota_refusal(exceeded(blocked_by="member", next_free=None)).render() == (
        "You have 2 of 10 images left this day and asked for 3."
    )


def test_a_member_refused_by_the_servers_budget_reads_the_budgets_figures():
    stamp = f"<t:{int(NEXT_FREE.timestamp())}:R>"
    refused = exceeded(blocked_by="budget", next_free=None, budget_free=NEXT_FREE)
    assert quota_refusal(refused).render() == (
        "This server's image budget is used up: 1 of 100 images left this week, and you asked for 3."
        f" The next one frees up {stamp}."
    )
    assert quota_refusal(exceeded(blocked_by="budget", next_free=NEXT_FREE)).render() == (
        "This server's image budget is used up: 1 of 100 images left this week, and you asked for 3."
    )


def test_an_exempt_rule_has_no_period_name():
    assert period_name(None).render() == ""
    assert period_name(Period.HOUR).render() == "hour"


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            MemberLineFull("member", 0.2, limit=2, held=2),
            "you already have 2 edits in line. Please try again in about 1 s",
        ),
        (
            GuildLineFull("guild", 7.6, limit=5, held=5),
            "this server already has 5 edits in line. Please try again in about 8 s",
        ),
        (QueueFull("full", 30.0, limit=9, held=9), "the queue is full. Please try again in about 30 s"),
    ],
)
def test_a_full_line_says_which_limit_refused_and_when_to_try_again(error: QueueRefused, words: str):
    assert queue_refusal(error).render() == f"Retouch is busy: {words}; nothing was charged."


def test_a_restarting_bot_says_so_and_that_nothing_was_charged():
    assert queue_closed().render() == (
        "Retouch is restarting and takes no new edits right now; please try again in a minute. Nothing was charged."
    )


def test_a_member_cooling_down_reads_their_refused_edits_and_when_to_start_again():
    cooldown = Cooldown(GUILD, MEMBER, until=NEXT_FREE.timestamp(), edits=3, images=6)
    assert cooldown_refusal(CoolingDown(cooldown)).render() == (
        "The Model Hub refused your last 3 edits (6 pictures), which still cost everyone's shared image rate;"
        f" you can start the next edit <t:{int(NEXT_FREE.timestamp())}:R>. Nothing was charged."
    )


def test_a_rate_limit_without_a_retry_time_says_to_try_again_in_a_minute():
    assert upstream_failure(ModelHubRateLimitError("slow down", retry_after=None)).render() == (
        "The Model Hub is rate limiting Retouch right now; please try again in a minute. Nothing was charged."
    )
    assert upstream_failure(ModelHubRateLimitError("slow down", retry_after=12.4)).render() == (
        "The Model Hub is rate limiting Retouch right now; please try again in about 12 s. Nothing was charged."
    )


# ------------------------------------------------------------------ inputs as they go upstream


class FetchFails(FakeHub):
    """A hub that cannot fetch `field`'s URL: it answers 400 naming the field, as the IONOS hub does."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer:
        if str(getattr(request, self.field)).startswith("http"):
            self.requests.append(request)
            self.paced.append(paced)
            raise ModelHubBadRequestError(f"could not fetch {self.field}", status=400, param=self.field)
        return await super().edit(request, paced=paced)


def masked(edits: Edits, count: int = 1) -> CheckedEdit:
    mask = Picture(f"{edits.base_url}/mask.png", "mask.png", "image/png", len(MASK), 64, 48, 12, CHANNEL)
    return dataclasses.replace(edits.choice(count), mask=mask)


async def test_a_masked_edit_sends_picture_and_mask_by_url_and_reports_both_copies(edits: Edits) -> None:
    service = edits.service()
    report = await service.run(masked(edits), requester(), deliver=posting(1))
    assert report.outcome is EditOutcome.DELIVERED
    source_url, mask_url = f"{edits.base_url}/source.png", f"{edits.base_url}/mask.png"
    [request] = edits.hub.requests
    assert (request.url, request.mask_image, edits.hub.paced) == (source_url, mask_url, [True])
    assert (request.model, request.prompt, request.size, request.n, request.output_format) == (
        "flux",
        "make it blue",
        (64, 64),
        1,
        "png",
    )
    assert report.sent == SentEdit(
        "flux",
        "make it blue",
        (64, 64),
        1,
        "png",
        SentPicture(source_url),
        SentPicture(mask_url),
    )
    job = await edits.jobs.get(1)
    assert job is not None and job.mask is not None and job.mask.url == mask_url


async def test_a_mask_the_hub_cannot_fetch_sends_picture_and_mask_again_as_bytes_paced_by_the_client(
    edits: Edits,
) -> None:
    edits.hub = FetchFails("mask_image")
    service = edits.service()
    report = await service.run(masked(edits), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED
    first, again = edits.hub.requests
    assert first.mask_image == f"{edits.base_url}/mask.png"
    assert again.url == await to_data_url(SOURCE, "image/png")
    assert again.mask_image == await to_data_url(MASK, "image/png")
    # The job queue paced the first request; the second spends the images again, so the client paces it.
    assert edits.hub.paced == [True, False]
    assert await edits.left() == QUOTA - 1


async def test_a_picture_sent_as_its_copy_is_not_sent_again_when_the_hub_refuses_it(edits: Edits) -> None:
    class RefusesTheCopy(FakeHub):
        async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer:
            self.requests.append(request)
            raise ModelHubBadRequestError("could not read url", status=400, param="url")

    edits.hub = RefusesTheCopy()
    service = edits.service(max_input_bytes=32 << 20)
    report = await service.run(edits.choice(1, path="/large.png", size=None), requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.UPSTREAM_ERROR
    [request] = edits.hub.requests
    assert request.url.startswith("data:image/")
    assert await edits.left() == QUOTA


async def test_a_picture_stored_turned_goes_upstream_upright_as_its_copy(edits: Edits) -> None:
    service = edits.service()
    turned = Picture(f"{edits.base_url}/turned.jpg", "turned.jpg", "image/jpeg", len(TURNED), 64, 48, 11, CHANNEL)
    choice = dataclasses.replace(edits.choice(1, size=None), image=turned)
    report = await service.run(choice, requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED
    [request] = edits.hub.requests
    assert request.url.startswith("data:image/") and request.size == (768, 1024)  # upright: taller than wide
    kept = (await edits.jobs.kept_inputs(1))["source"]
    assert Image.open(io.BytesIO(kept.data)).size == (48, 64)
    assert report.sent is not None and report.sent.image.url is None


async def test_each_message_posted_is_charged(edits: Edits) -> None:
    service = edits.service()
    report = await service.run(edits.choice(3), requester(), deliver=posting(1))
    assert report.outcome is EditOutcome.DELIVERED and report.delivered == 3
    assert await edits.left() == QUOTA - 3
    job = await edits.jobs.get(1)
    assert job is not None and len(job.results) == 3


async def test_a_grown_canvas_records_the_mask_retouch_made(edits: Edits) -> None:
    service = edits.service()
    choice = dataclasses.replace(edits.choice(1, size=None), growth=Growth.zoom(2.0))
    report = await service.run(choice, requester(), deliver=posting(10))
    assert report.outcome is EditOutcome.DELIVERED
    mask = (await edits.jobs.kept_inputs(1))["mask"]
    job = await edits.jobs.get(1)
    assert job is not None and job.mask == Picture(
        await to_data_url(mask.data, "image/png"), "outpaint-mask.png", "image/png", len(mask.data), channel_id=CHANNEL
    )


async def test_a_deleted_job_is_withdrawn_from_its_delivery(edits: Edits) -> None:
    service = edits.service()
    withdrawn: list[bool] = []

    async def deliver(delivery: Delivery) -> None:
        withdrawn.append(await delivery.withdrawn())
        await edits.jobs.mark_deleted(delivery.job_id)  # the Delete button, pressed meanwhile
        withdrawn.append(await delivery.withdrawn())
        await posting(10)(delivery)

    await service.run(edits.choice(1), requester(), deliver=deliver)
    assert withdrawn == [False, True]
    gone = Delivery(99, SentEdit("flux", "p", (1, 1), 1, "png", SentPicture(None)), [], edits.jobs)
    assert await gone.withdrawn() is False  # no such job: nothing withdrew it


async def test_the_check_refuses_a_model_not_offered_and_counts_it_as_refused_input(edits: Edits) -> None:
    service = edits.service()
    picture = edits.choice().image
    checked = await service.check(TypedEdit(CHANNEL, "make it blue", picture, model="flux"), GuildSettings())
    assert (checked.model, checked.prompt, checked.count, checked.image) == ("flux", "make it blue", 1, picture)
    assert edits.observer.finished == []
    with pytest.raises(Refusal) as refused:
        await service.check(TypedEdit(CHANNEL, "make it blue", picture, model="other"), GuildSettings())
    assert refused.value.field == "model" and "`flux`" in str(refused.value.text)
    assert edits.observer.finished == [(EditOutcome.REFUSED_INPUT, 0)]


# ------------------------------------------------------------------ screening


def solid(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


MADE = [solid((200, 0, 0)), solid((0, 200, 0)), solid((0, 0, 200))]  # the results, one colour each


class Painter(FakeHub):
    """Answers `edit` with the first `n` of MADE, in order."""

    async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer:
        self.requests.append(request)
        return HubAnswer([HubImage(data, "PNG", 64, 48) for data in MADE[: request.n]], attempts=1)


class Judge:
    """The screening model, scripted by the picture it is shown (its screening URL; None: the prompt alone):
    a verdict in `verdicts`, a failed check for one in `failing`, else allowed."""

    def __init__(self) -> None:
        self.verdicts: dict[str | None, Verdict] = {}
        self.failing: set[str | None] = set()
        self.requests: list[ScreeningRequest] = []

    async def judge(self, request: ScreeningRequest) -> Verdict:
        self.requests.append(request)
        if request.picture_url in self.failing:
            raise ScreeningFailed("timeout", "no screening answer within 20 s")
        return self.verdicts.get(request.picture_url, Verdict(True, "none", "Fine."))


def screened(mode: Mode, policy: str, locale: str | None = "fr") -> Screen:
    """A server's screening rules, for a member reading French unless told."""
    return Screen(ScreeningRules(mode, policy), locale)


def collecting(posted: list[bytes]) -> Callable[[Delivery], Awaitable[None]]:
    """Posts every picture in one message, keeping what was posted."""

    async def deliver(delivery: Delivery) -> None:
        posted.extend(delivery.pictures)
        await posting(10)(delivery)

    return deliver


def refused_case(job_id: int, stage: str, category: str, reason: str, locale: str | None, case_id: int = 1) -> Case:
    return Case(GUILD, CHANNEL, MEMBER, job_id, stage, category, reason, locale, case_id, "refused")


async def screened_edit(edits: Edits, judge: Judge, count: int, screen: Screen) -> tuple[EndedEdit, list[bytes]]:
    """An edit of `count` pictures under `screen`, `judge` answering for the screening model: how it ended, and
    the pictures posted (all in one message)."""
    posted: list[bytes] = []
    service = edits.service(screening=Screening(judge))
    report = await service.run(edits.choice(count), requester(), deliver=collecting(posted), screen=screen)
    return report, posted


async def test_a_prompt_the_screening_refuses_costs_no_image_and_opens_a_case(edits: Edits) -> None:
    """The real screening client against the Model Hub emulator: the prompt alone, in the member's language."""
    async with ModelHubEmulator() as chat:
        client = ScreeningClient(edits.session, chat.base_url, Secret(chat.token), SCREENING_MODEL, timeout=5)
        service = edits.service(screening=Screening(client))
        chat.verdict(False, "hats", "Keine Hüte.")
        report = await service.run(
            edits.choice(2),
            requester(),
            deliver=posting(10),
            screen=screened("prompts", "No hats.", "de"),
        )
    [sent] = chat.chat_requests
    assert sent.text == "The member's prompt:\nmake it blue" and "in German" in sent.system and sent.image_urls == []
    verdict = Verdict(False, "hats", "Keine Hüte.")
    assert (report.outcome, report.requested, report.delivered, report.sent, report.job_id) == (
        EditOutcome.REFUSED_SCREENING,
        2,
        0,
        None,
        1,
    )
    assert isinstance(report.refusal, ScreeningRefused)
    assert (report.refusal.text, report.refusal.field, report.refusal.case_id) == (
        refusal_text(verdict),
        "screening",
        1,
    )
    assert await edits.cases.get(1) == refused_case(1, "input", "hats", "Keine Hüte.", "de")
    assert edits.hub.requests == []  # refused before the image call: no image spent, no wait in line
    assert await edits.left() == QUOTA and await edits.status() == "failed"
    assert edits.observer.finished == [(EditOutcome.REFUSED_SCREENING, 0)]


async def test_pictures_screening_shows_the_input_then_each_result_in_the_members_language(edits: Edits) -> None:
    edits.hub = Painter()
    judge = Judge()
    report, posted = await screened_edit(edits, judge, 2, screened("pictures", "all-ages"))
    assert report.outcome is EditOutcome.DELIVERED and report.delivered == 2 and report.refusal is None
    assert posted == MADE[:2]
    first, *results = judge.requests
    assert (first.prompt, first.picture_url) == ("make it blue", await screening_data_url(SOURCE))
    assert "picture it asks to edit" in first.instructions and "in French" in first.instructions
    assert sorted(str(r.picture_url) for r in results) == sorted([await screening_data_url(m) for m in MADE[:2]])
    assert all(r.prompt == "make it blue" and "in French" in r.instructions for r in results)
    assert all(r.instructions.startswith("You screen pictures an image-editing bot is about to post") for r in results)
    assert await edits.cases.get(1) is None
    assert await edits.left() == QUOTA - 2


async def test_prompts_screening_checks_the_prompt_alone_and_never_the_results(edits: Edits) -> None:
    judge = Judge()
    report, _ = await screened_edit(edits, judge, 2, screened("prompts", "all-ages"))
    assert report.outcome is EditOutcome.DELIVERED and report.delivered == 2
    [request] = judge.requests
    assert (request.prompt, request.picture_url) == ("make it blue", None)
    assert await edits.left() == QUOTA - 2


async def test_a_refused_input_picture_opens_a_case_with_the_models_category_and_reason(edits: Edits) -> None:
    judge = Judge()
    judge.verdicts[await screening_data_url(SOURCE)] = Verdict(False, "real person", "C'est une vraie personne.")
    report, _ = await screened_edit(edits, judge, 1, screened("pictures", "no-real-people"))
    assert report.outcome is EditOutcome.REFUSED_SCREENING and isinstance(report.refusal, ScreeningRefused)
    assert report.refusal.text.render() == (
        "This server's screening refused your edit: C'est une vraie personne. Nothing was charged. If you think that"
        " is wrong, press **Appeal** to ask the moderators."
    )
    assert await edits.cases.get(report.refusal.case_id) == refused_case(
        1, "input", "real person", "C'est une vraie personne.", "fr"
    )
    assert len(judge.requests) == 1 and edits.hub.requests == []


async def test_an_input_that_could_not_be_checked_is_refused_as_unchecked_when_the_rules_fail_closed(
    edits: Edits,
) -> None:
    judge = Judge()
    judge.failing.add(None)
    report, _ = await screened_edit(edits, judge, 1, screened("prompts", "all-ages", None))
    assert report.outcome is EditOutcome.REFUSED_SCREENING and isinstance(report.refusal, ScreeningRefused)
    assert report.refusal.text.render().startswith("Your edit could not be screened just now")
    assert await edits.cases.get(1) == refused_case(1, "input", "unchecked", "", None)
    assert edits.hub.requests == [] and await edits.left() == QUOTA
    # The same failure under rules that fail open lets the edit through.
    report, _ = await screened_edit(edits, judge, 1, screened("prompts", "anything"))
    assert report.outcome is EditOutcome.DELIVERED and await edits.cases.get(2) is None


async def test_held_back_results_are_not_posted_or_charged_and_the_first_refusal_is_the_case(edits: Edits) -> None:
    edits.hub = Painter()
    judge = Judge()
    judge.verdicts[await screening_data_url(MADE[1])] = Verdict(False, "gore", "Trop sanglant.")
    judge.verdicts[await screening_data_url(MADE[2])] = Verdict(False, "hats", "Pas de chapeaux.")
    report, posted = await screened_edit(edits, judge, 3, screened("pictures", "all-ages"))
    assert posted == MADE[:1]
    assert (report.outcome, report.requested, report.delivered, report.job_id) == (EditOutcome.PARTIAL, 3, 1, 1)
    assert report.sent is not None and report.sent.count == 3
    assert isinstance(report.refusal, ScreeningRefused) and report.refusal.field == "screening"
    assert report.refusal.text == refusal_text(Verdict(False, "gore", "Trop sanglant."), refused=2, count=3)
    assert report.refusal.text.render() == (
        "This server's screening held back 2 of the 3 pictures made for you: Trop sanglant. They were not posted"
        " and not charged. If you think that is wrong, press **Appeal** to ask the moderators."
    )
    assert report.refusal.case_id == 1
    assert await edits.cases.get(1) == refused_case(1, "result", "gore", "Trop sanglant.", "fr")
    assert await edits.cases.get(2) is None  # one case for the edit, however many were held back
    assert await edits.left() == QUOTA - 1 and await edits.status() == "done"
    assert edits.observer.finished == [(EditOutcome.PARTIAL, 1)]


async def test_every_result_held_back_refuses_the_edit_and_charges_nothing(edits: Edits) -> None:
    edits.hub = Painter()
    judge = Judge()
    judge.verdicts[await screening_data_url(MADE[0])] = Verdict(False, "gore", "Trop sanglant.")
    report, posted = await screened_edit(edits, judge, 1, screened("pictures", "all-ages"))
    assert posted == []
    assert (report.outcome, report.requested, report.delivered, report.job_id) == (
        EditOutcome.REFUSED_SCREENING,
        1,
        0,
        1,
    )
    assert report.sent is not None and isinstance(report.refusal, ScreeningRefused)
    assert report.refusal.text.render() == (
        "This server's screening held back the picture made for you: Trop sanglant. It was not posted and not"
        " charged. If you think that is wrong, press **Appeal** to ask the moderators."
    )
    assert await edits.cases.get(report.refusal.case_id) == refused_case(1, "result", "gore", "Trop sanglant.", "fr")
    assert await edits.left() == QUOTA and await edits.status() == "failed"
    assert edits.observer.finished == [(EditOutcome.REFUSED_SCREENING, 0)]


async def test_results_that_could_not_be_checked_are_held_back_as_unchecked(edits: Edits) -> None:
    edits.hub = Painter()
    judge = Judge()
    judge.failing.add(await screening_data_url(MADE[1]))
    report, posted = await screened_edit(edits, judge, 2, screened("pictures", "all-ages"))
    assert posted == MADE[:1] and report.outcome is EditOutcome.PARTIAL
    assert isinstance(report.refusal, ScreeningRefused)
    assert report.refusal.text.render().startswith("Your edit could not be screened just now")
    assert await edits.cases.get(1) == refused_case(1, "result", "unchecked", "", "fr")
