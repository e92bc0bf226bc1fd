"""The jobs record on both backends: what a restart-proof button reads back."""

from __future__ import annotations

from services.storage.database import Database
from services.storage.jobs import JobStore
from tests.helpers import OTHER, new_job, stored_picture


async def test_a_job_and_its_pictures_read_back_whole(database: Database) -> None:
    jobs = JobStore(database)
    parent = await jobs.create(new_job(prompt="first", count=2))
    child = await jobs.create(
        new_job(
            user_id=OTHER,
            prompt="second",
            output_format="webp",
            source=stored_picture(2, message_id=900),
            mask=stored_picture(3),
            parent_job_id=parent,
        )
    )
    await jobs.add_results(child, [stored_picture(n, OTHER, message_id=901) for n in (4, 5)])
    await jobs.finish(child, delivered=2)

    job = await jobs.get(child)
    assert job is not None
    assert (job.prompt, job.output_format, job.parent_job_id, job.status) == ("second", "webp", parent, "done")
    assert job.source == stored_picture(2, message_id=900) and job.mask == stored_picture(3)
    assert [r.filename for r in job.results] == ["secret-4.png", "secret-5.png"]
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
