"""The edit use case without Discord: a fake `deliver` and a fake Model Hub over a real SQLite store.

Every test asserts the money (images left in the member's quota) and the job record's status.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from services.domain.edit_inputs import PictureDownloader
from services.domain.editing import (
    Delivery,
    DeliveryFailed,
    EditOutcome,
    EditProgress,
    EditService,
    EndedEdit,
    Requester,
)
from services.domain.job_queue import JobQueue
from services.domain.pacing import BucketRule, ImagePacer, MemoryBucketStore
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
from services.domain.validation import CheckedEdit
from services.imaging.images import to_data_url
from services.imaging.kept_inputs import KeptPicture
from services.imaging.pictures import Picture
from services.storage.database import Database, open_database
from services.storage.jobs import JobStore, NewJob, Origin
from services.storage.quota import Period, QuotaRule, QuotaStore
from services.text.words import Text
from tests.helpers import until
from tests.images import png_bytes

GUILD, CHANNEL, MEMBER, OTHER = 1, 2, 3, 4
QUOTA = 5
SOURCE = png_bytes(64, 48)
RESULT = png_bytes(64, 48, fmt="PNG")
LARGE = png_bytes(2560, 1280)  # larger than the upstream takes: kept (and sent) scaled down to 2048x1024


class FakeHub:
    """Answers `edit` with `count` pictures, or raises `error`; `gate` holds the call until it is set."""

    def __init__(self) -> None:
        self.error: ModelHubError | None = None
        self.gate: asyncio.Event | None = None
        self.calling = asyncio.Event()
        self.requests: list[HubRequest] = []

    async def edit(self, request: HubRequest, *, paced: bool = False) -> HubAnswer:
        self.requests.append(request)
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
        )

    def choice(
        self, count: int = 2, *, path: str = "/source.png", size: tuple[int, int] | None = (64, 64)
    ) -> CheckedEdit:
        picture = Picture(f"{self.base_url}{path}", "source.png", "image/png", len(SOURCE), 64, 48, 11, CHANNEL)
        return CheckedEdit("make it blue", "flux", size, count, "png", picture, None, 1024)

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
        (ModelHubBadRequestError("prompt too long", status=400), "refused the request: prompt too long"),
        (ModelHubAuthenticationError("bad token", status=401), "IONOS_API_TOKEN"),
        (ModelHubRateLimitError("slow down", retry_after=12), "try again in about 12 s"),
        (ModelHubTimeoutError("no answer in 120 s"), "timed out: no answer in 120 s"),
        (ModelHubUnavailableError("HTTP 503", status=503), "unavailable right now (HTTP 503)"),
        (ModelHubMalformedResponseError("no data"), "could not read (no data)"),
        (ModelHubError("something odd"), "The Model Hub failed: something odd"),
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
    assert delivered == []
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
    assert report.sent is not None and report.sent.image.data == SOURCE  # for the audit's thumbnail


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
