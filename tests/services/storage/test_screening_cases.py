"""Screening cases (services/storage/screening_cases.py): moved once, forgotten with the member, expired with the
retention period, on both backends."""

from __future__ import annotations

from services.storage.database import Database
from services.storage.jobs import JobStore
from services.storage.screening_cases import CaseStore, NewCase
from tests.helpers import DAY, GUILD, MEMBER, OTHER, Clock, finished_job, privacy_store, stored_picture


async def opened(cases: CaseStore, jobs: JobStore, user_id: int) -> int:
    job_id = await finished_job(jobs, user_id, "a fight", stored_picture(user_id % 1000, user_id))
    return await cases.open(NewCase(GUILD, 10, user_id, job_id, "input", "violence", "Too violent.", "de"))


async def test_a_case_moves_once_from_each_state(database: Database) -> None:
    cases, jobs = CaseStore(database), JobStore(database)
    case_id = await opened(cases, jobs, MEMBER)
    case = await cases.get(case_id)
    assert case is not None and (case.status, case.reason, case.locale, case.user_id) == (
        "refused",
        "Too violent.",
        "de",
        MEMBER,
    )
    assert await cases.move(case_id, "refused", "appealed")
    assert not await cases.move(case_id, "refused", "appealed")  # one appeal per case
    assert await cases.move(case_id, "appealed", "approved", by=OTHER)
    assert not await cases.move(case_id, "appealed", "denied", by=OTHER)  # one decision
    decided = await cases.get(case_id)
    assert decided is not None and (decided.status, decided.decided_by) == ("approved", OTHER)


async def test_forget_removes_the_members_cases_and_retention_expires_them(database: Database) -> None:
    clock = Clock()
    cases, jobs = CaseStore(database, clock=clock), JobStore(database)
    mine, theirs = await opened(cases, jobs, MEMBER), await opened(cases, jobs, OTHER)
    await privacy_store(database, clock).forget(MEMBER)
    assert await cases.get(mine) is None and await cases.get(theirs) is not None
    clock.now += 31 * DAY
    await privacy_store(database, clock).purge()
    assert await cases.get(theirs) is None
