"""The jobs record on both backends: what a restart-proof button reads back."""

from __future__ import annotations

from services.database import Database
from services.jobs import JobStore, NewJob
from services.pictures import Picture


def ref(n: int, *, message_id: int | None = None, author_id: int = 7) -> Picture:
    return Picture(
        url=f"http://127.0.0.1/cdn/{n}.png?ex=1",
        filename=f"{n}.png",
        content_type="image/png",
        size=1000 + n,
        width=64,
        height=32,
        attachment_id=100 + n,
        channel_id=5,
        message_id=message_id,
        author_id=author_id,
    )


async def test_a_job_and_its_pictures_read_back_whole(database: Database) -> None:
    jobs = JobStore(database)
    parent = await jobs.create(
        NewJob(
            guild_id=1,
            channel_id=5,
            user_id=7,
            prompt="first",
            model="m",
            size="64x32",
            count=2,
            output_format="png",
            source=ref(1),
        )
    )
    child = await jobs.create(
        NewJob(
            guild_id=1,
            channel_id=5,
            user_id=8,
            prompt="second",
            model="m",
            size="64x32",
            count=1,
            output_format="webp",
            source=ref(2, message_id=900),
            mask=ref(3),
            parent_job_id=parent,
        )
    )
    await jobs.add_results(child, [ref(4, message_id=901, author_id=8), ref(5, message_id=901, author_id=8)])
    await jobs.finish(child, delivered=2)

    job = await jobs.get(child)
    assert job is not None
    assert (job.prompt, job.output_format, job.parent_job_id, job.status) == ("second", "webp", parent, "done")
    assert job.source == ref(2, message_id=900) and job.mask == ref(3)
    assert [r.filename for r in job.results] == ["4.png", "5.png"]
    assert (await jobs.find_by_result_message(901)).id == child
    assert await jobs.find_by_result_message(12345) is None

    await jobs.finish(parent, delivered=0)
    assert (await jobs.get(parent)).status == "failed"
    await jobs.mark_deleted(child)
    assert (await jobs.get(child)).status == "deleted"


async def test_remix_opt_out_round_trips(database: Database) -> None:
    jobs = JobStore(database)
    assert await jobs.remix_opt_out(7) is False
    await jobs.set_remix_opt_out(7, True)
    assert await jobs.remix_opt_out(7) is True
    await jobs.set_remix_opt_out(7, False)
    assert await jobs.remix_opt_out(7) is False
