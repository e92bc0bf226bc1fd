"""Remixing's rules over the real stores: where a server allows it, consent, one run per click, fresh URLs."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import pytest

from services.domain.remixing import CLAIM_SECONDS, RemixRules, RemixTarget, remix_form, reroll_form
from services.domain.signed_urls import REFRESH_MARGIN
from services.domain.validation import TypedEdit
from services.imaging.kept_inputs import KeptPicture
from services.imaging.pictures import Picture
from services.storage.claims import ClaimStore
from services.storage.database import Database
from services.storage.jobs import InputRole, Job, JobStore
from services.storage.quota import DEFAULT_STALE_AFTER_SECONDS
from services.storage.settings import GuildSettings, SettingsStore
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text
from tests.helpers import GUILD, MEMBER, OTHER, OTHER_GUILD, Clock, finished_job, new_job, stored_picture

NOW = 1_700_000_000.0
KEPT = KeptPicture(b"kept copy", "image/png")


def signed(n: int, expires: float, *, attachment: bool = True) -> Picture:
    """Picture `n` behind a URL Discord signed until `expires`; without `attachment`, an embed's proxy URL."""
    picture = stored_picture(n, OTHER)
    url = f"https://cdn.discordapp.com/attachments/5/{100 + n}/secret-{n}.png?ex={int(expires):x}&is=0&hm=ab{n}"
    return dataclasses.replace(picture, url=url, attachment_id=picture.attachment_id if attachment else None)


def fresh_url(n: int) -> str:
    """The URL Discord signs anew for picture `n`: valid for a day."""
    return f"https://cdn.discordapp.com/attachments/5/{100 + n}/secret-{n}.png?ex={int(NOW + 86_400):x}&is=1&hm=cd{n}"


class Discord:
    """Discord's side of a refresh: the fresh URL it gives for each URL (`answers`), and the URLs it was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, str | None] = {}
        self.asked: list[str] = []

    async def refresh(self, url: str) -> str | None:
        self.asked.append(url)
        return self.answers.get(url)


@dataclass
class Remixing:
    """The rules of one process over the real stores, and Discord refreshing its URLs."""

    rules: RemixRules
    jobs: JobStore
    settings: SettingsStore
    claims: ClaimStore
    discord: Discord

    @property
    def answers(self) -> dict[str, str | None]:
        return self.discord.answers

    @property
    def asked(self) -> list[str]:
        return self.discord.asked


def remixing(database: Database, owner: str = "process-a", clock: Clock | None = None) -> Remixing:
    clock = clock or Clock(NOW)
    claims = ClaimStore(database, clock=clock)
    jobs, settings, discord = JobStore(database), SettingsStore(database), Discord()
    rules = RemixRules(settings=settings, jobs=jobs, claims=claims, owner=owner, refresh=discord.refresh, clock=clock)
    return Remixing(rules, jobs, settings, claims, discord)


async def stored_job(jobs: JobStore, **changes: object) -> Job:
    job = await jobs.get(await jobs.create(new_job(**changes)))
    assert job is not None
    return job


# ----------------------------------------------------------------------------- where remixing is allowed


async def test_remixing_outside_a_channel_is_refused_as_servers_only(database: Database) -> None:
    rules = remixing(database).rules
    for guild_id in (GUILD, None):
        with pytest.raises(Refusal) as refused:
            await rules.settings_for(guild_id, None)
        assert (refused.value.text, refused.value.field) == (Text(words.REMIX_SERVERS_ONLY), None)


async def test_personal_use_has_the_default_settings_and_no_server_rules(database: Database) -> None:
    setup = remixing(database)
    await setup.settings.update(GUILD, remixing_enabled=False)
    assert await setup.rules.settings_for(None, 5) == GuildSettings()


async def test_a_server_that_turned_remixing_off_refuses_it(database: Database) -> None:
    setup = remixing(database)
    await setup.settings.update(GUILD, remixing_enabled=False)
    with pytest.raises(Refusal) as refused:
        await setup.rules.settings_for(GUILD, 5)
    assert (refused.value.text, refused.value.field) == (Text(words.REMIX_OFF), None)
    assert await setup.rules.settings_for(OTHER_GUILD, 5) == GuildSettings()


async def test_a_channel_the_server_has_not_enabled_is_refused_naming_the_ones_it_has(database: Database) -> None:
    setup = remixing(database)
    await setup.settings.allow_channel(GUILD, 6)
    await setup.settings.allow_channel(GUILD, 5)
    with pytest.raises(Refusal) as refused:
        await setup.rules.settings_for(GUILD, 9)
    not_enabled = Text(words.CHANNEL_NOT_ENABLED, channels="<#5>, <#6>")
    assert (refused.value.text, refused.value.field) == (not_enabled, "channel")


async def test_the_servers_own_settings_are_handed_on_where_it_allows_remixing(database: Database) -> None:
    setup = remixing(database)
    await setup.settings.allow_channel(GUILD, 5)
    await setup.settings.update(GUILD, max_count=2)
    settings = await setup.rules.settings_for(GUILD, 5)
    assert settings == await setup.settings.get(GUILD)
    assert (settings.max_count, settings.allowed_channel_ids) == (2, frozenset({5}))


# ----------------------------------------------------------------------------- the job behind a result


async def test_a_job_on_record_is_found_whether_running_done_or_failed(database: Database) -> None:
    setup = remixing(database)
    running = await setup.jobs.create(new_job())
    done = await finished_job(setup.jobs, MEMBER, "a dog", stored_picture(2))
    failed = await setup.jobs.create(new_job())
    await setup.jobs.finish(failed, delivered=0)
    for job_id, status in ((running, "running"), (done, "done"), (failed, "failed")):
        job = await setup.rules.job(job_id)
        assert job == await setup.jobs.get(job_id)
        assert (job.id, job.status) == (job_id, status)


async def test_a_deleted_or_unknown_job_is_gone(database: Database) -> None:
    setup = remixing(database)
    deleted = await finished_job(setup.jobs, MEMBER, "a dog", stored_picture(2))
    await setup.jobs.mark_deleted(deleted)
    for job_id in (deleted, deleted + 1):
        with pytest.raises(Refusal) as refused:
            await setup.rules.job(job_id)
        assert (refused.value.text, refused.value.field) == (Text(words.JOB_GONE), None)


async def test_the_job_of_a_result_message_is_the_one_that_posted_it(database: Database) -> None:
    setup = remixing(database)
    await finished_job(setup.jobs, OTHER, "first", stored_picture(2))
    job_id = await finished_job(setup.jobs, MEMBER, "second", stored_picture(3))
    job = await setup.rules.result_job(900 + job_id)
    assert job == await setup.jobs.get(job_id)
    assert job.prompt == "second"


async def test_a_message_that_is_not_a_result_has_nothing_to_remix(database: Database) -> None:
    setup = remixing(database)
    job_id = await finished_job(setup.jobs, MEMBER, "a dog", stored_picture(2, message_id=444))
    for message_id in (444, 900 + job_id + 1):  # the source's message; a message no job posted
        with pytest.raises(Refusal) as refused:
            await setup.rules.result_job(message_id)
        assert (refused.value.text, refused.value.field) == (Text(words.REMIX_NOT_A_RESULT), None)


# ----------------------------------------------------------------------------- consent and deleting


async def test_a_member_who_opted_out_refuses_remixes_of_their_pictures(database: Database) -> None:
    setup = remixing(database)
    await setup.jobs.set_remix_opt_out(OTHER, True)
    with pytest.raises(Refusal) as refused:
        await setup.rules.check_consent(MEMBER, {MEMBER, OTHER})
    assert (refused.value.text, refused.value.field) == (Text(words.OPTED_OUT, user_id=OTHER), None)


async def test_a_member_who_opted_out_still_builds_on_their_own_pictures(database: Database) -> None:
    setup = remixing(database)
    await setup.jobs.set_remix_opt_out(OTHER, True)
    # Neither refuses.
    await setup.rules.check_consent(OTHER, [OTHER])
    await setup.rules.check_consent(OTHER, [OTHER, MEMBER])


async def test_owners_who_allow_remixing_need_no_further_consent(database: Database) -> None:
    setup = remixing(database)
    await setup.jobs.set_remix_opt_out(OTHER, True)
    await setup.jobs.set_remix_opt_out(OTHER, False)
    # Neither refuses.
    await setup.rules.check_consent(MEMBER, {OTHER, 9})
    await setup.rules.check_consent(MEMBER, ())


async def test_of_several_owners_who_opted_out_the_lowest_id_is_named(database: Database) -> None:
    setup = remixing(database)
    await setup.jobs.set_remix_opt_out(9, True)
    await setup.jobs.set_remix_opt_out(3, True)
    with pytest.raises(Refusal) as refused:
        await setup.rules.check_consent(MEMBER, iter([9, 3, 9]))  # a set of them iterates 9 before 3
    assert refused.value.text == Text(words.OPTED_OUT, user_id=3)


async def test_a_result_is_its_requesters_or_a_moderators_to_delete(database: Database) -> None:
    setup = remixing(database)
    job = await stored_job(setup.jobs, user_id=MEMBER, source=stored_picture(1, OTHER))
    # None of these refuses.
    setup.rules.check_may_delete(job, MEMBER, moderator=False)
    setup.rules.check_may_delete(job, MEMBER, moderator=True)
    setup.rules.check_may_delete(job, OTHER, moderator=True)


async def test_another_member_may_not_delete_a_result_and_is_told_whose_it_is(database: Database) -> None:
    setup = remixing(database)
    job = await stored_job(setup.jobs, user_id=MEMBER, source=stored_picture(1, OTHER))
    with pytest.raises(Refusal) as refused:
        setup.rules.check_may_delete(job, OTHER, moderator=False)  # even the source's uploader
    assert (refused.value.text, refused.value.field) == (Text(words.DELETE_NOT_YOURS, user_id=MEMBER), None)


# ----------------------------------------------------------------------------- one run per click


async def claim_row(database: Database, key: str) -> tuple[str, float] | None:
    row = await database.fetch_one("SELECT owner, expires_at FROM claims WHERE key = ?", key)
    return None if row is None else (row[0], float(row[1]))


async def test_a_click_holds_its_claim_in_the_database_until_it_ends(database: Database) -> None:
    setup = remixing(database)
    assert CLAIM_SECONDS == DEFAULT_STALE_AFTER_SECONDS == 3 * 3600
    async with setup.rules.claimed("reroll", 12, MEMBER):
        assert await claim_row(database, "reroll:12:7") == ("process-a", NOW + CLAIM_SECONDS)
        assert not await setup.claims.claim("reroll:12:7", "process-b", 60)
    assert await claim_row(database, "reroll:12:7") is None


async def test_a_second_click_on_the_same_thing_is_refused_in_every_process_while_the_first_runs(
    database: Database,
) -> None:
    first, second = remixing(database), remixing(database, owner="process-b")
    ran: list[str] = []
    async with first.rules.claimed("remix", 12, MEMBER):
        for rules in (first.rules, second.rules):
            with pytest.raises(Refusal) as refused:
                async with rules.claimed("remix", 12, MEMBER):
                    ran.append("again")
            assert (refused.value.text, refused.value.field) == (Text(words.ALREADY_RUNNING), None)
        assert await claim_row(database, "remix:12:7") == ("process-a", NOW + CLAIM_SECONDS)
        # Another action, thing or member is another claim.
        for action, key, user_id in (("reroll", 12, MEMBER), ("remix", 13, MEMBER), ("remix", 12, OTHER)):
            async with second.rules.claimed(action, key, user_id):
                ran.append(f"{action}:{key}:{user_id}")
    assert ran == ["reroll:12:7", "remix:13:7", "remix:12:8"]
    async with second.rules.claimed("remix", 12, MEMBER):
        ran.append("after")
    assert ran[-1] == "after"


async def test_a_claim_is_given_back_when_its_click_fails(database: Database) -> None:
    setup = remixing(database)
    with pytest.raises(RuntimeError, match="the edit failed"):
        async with setup.rules.claimed("region", 12, MEMBER):
            raise RuntimeError("the edit failed")
    assert await claim_row(database, "region:12:7") is None


async def test_a_claim_left_by_a_dead_process_lapses_after_claim_seconds(database: Database) -> None:
    clock = Clock(NOW)
    dead, alive = remixing(database, "dead", clock), remixing(database, "alive", clock)
    async with dead.rules.claimed("grow", 12, MEMBER):
        clock.now += CLAIM_SECONDS - 1
        with pytest.raises(Refusal):
            async with alive.rules.claimed("grow", 12, MEMBER):
                pass
        clock.now += 1
        async with alive.rules.claimed("grow", 12, MEMBER):
            assert await claim_row(database, "grow:12:7") == ("alive", clock.now + CLAIM_SECONDS)


# ----------------------------------------------------------------------------- pictures whose URLs work


async def test_a_url_valid_past_the_margin_is_used_as_it_is(database: Database) -> None:
    setup = remixing(database)
    picture = signed(2, NOW + REFRESH_MARGIN + 1)
    assert await setup.rules.fresh("image", picture) is picture
    assert setup.asked == []


async def test_a_url_expiring_within_the_margin_is_refreshed_through_discord(database: Database) -> None:
    setup = remixing(database)
    for n, expires in ((2, NOW + REFRESH_MARGIN), (3, NOW - 1)):
        picture = signed(n, expires)
        setup.answers[picture.url] = fresh_url(n)
        assert await setup.rules.fresh("image", picture) == dataclasses.replace(picture, url=fresh_url(n))
    assert setup.asked == [signed(2, NOW + REFRESH_MARGIN).url, signed(3, NOW - 1).url]


async def test_an_embeds_proxy_url_is_not_an_attachments_to_refresh(database: Database) -> None:
    setup = remixing(database)
    picture = signed(2, NOW - 1, attachment=False)
    assert await setup.rules.fresh("image", picture) is picture
    assert setup.asked == []


async def test_a_fresh_link_discord_will_not_give_is_refused_naming_the_field(database: Database) -> None:
    setup = remixing(database)
    picture = signed(2, NOW - 1)
    with pytest.raises(Refusal) as refused:
        await setup.rules.fresh("mask", picture)
    assert (refused.value.text, refused.value.field) == (Text(words.REFRESH_FAILED, field="mask"), "mask")
    assert setup.asked == [picture.url]


async def test_a_refreshed_url_still_expired_means_discord_no_longer_has_the_file(database: Database) -> None:
    setup = remixing(database)
    picture = signed(2, NOW - 1)
    setup.answers[picture.url] = signed(2, NOW + REFRESH_MARGIN).url  # Discord repeats an expiring URL
    with pytest.raises(Refusal) as refused:
        await setup.rules.fresh("mask", picture)
    gone = Text(words.PICTURE_GONE, reason=Text(words.GONE_AT_DISCORD))
    assert (refused.value.text, refused.value.field) == (gone, "mask")


async def test_urls_expire_by_the_real_time_unless_told_otherwise(database: Database) -> None:
    setup = remixing(database)
    rules = RemixRules(
        settings=setup.settings, jobs=setup.jobs, claims=setup.claims, owner="process-a", refresh=setup.discord.refresh
    )
    assert rules.clock is time.time
    valid = signed(2, time.time() + REFRESH_MARGIN + 3600)
    assert await rules.fresh("image", valid) is valid
    expired = signed(3, time.time() - 1)
    with pytest.raises(Refusal):
        await rules.fresh("image", expired)
    assert setup.asked == [expired.url]


# ----------------------------------------------------------------------------- a Reroll's inputs


async def test_a_reroll_uses_the_jobs_kept_copies_as_they_are(database: Database) -> None:
    setup = remixing(database)
    job_id = await setup.jobs.create(new_job(source=signed(2, NOW - 1), mask=signed(3, NOW - 1)))
    await setup.jobs.keep_inputs(job_id, {"source": KEPT, "mask": KEPT})
    job = await setup.rules.job(job_id)
    assert await setup.rules.reroll_inputs(job) == (signed(2, NOW - 1), signed(3, NOW - 1))
    assert setup.asked == []


async def test_a_reroll_of_a_job_that_kept_nothing_refreshes_its_picture_and_mask(database: Database) -> None:
    setup = remixing(database)
    source, mask = signed(2, NOW - 1), signed(3, NOW - 1)
    setup.answers.update({source.url: fresh_url(2), mask.url: fresh_url(3)})
    job = await stored_job(setup.jobs, source=source, mask=mask)
    image, refreshed_mask = await setup.rules.reroll_inputs(job)
    assert image == dataclasses.replace(source, url=fresh_url(2))
    assert refreshed_mask == dataclasses.replace(mask, url=fresh_url(3))
    assert setup.asked == [source.url, mask.url]


async def test_a_reroll_without_a_mask_has_none(database: Database) -> None:
    setup = remixing(database)
    source = signed(2, NOW - 1)
    setup.answers[source.url] = fresh_url(2)
    kept_copies: tuple[dict[InputRole, KeptPicture], ...] = ({}, {"source": KEPT})
    for kept in kept_copies:
        job_id = await setup.jobs.create(new_job(source=source))
        await setup.jobs.keep_inputs(job_id, kept)
        image, mask = await setup.rules.reroll_inputs(await setup.rules.job(job_id))
        assert mask is None
        assert image == (source if kept else dataclasses.replace(source, url=fresh_url(2)))


async def test_a_reroll_refreshes_only_the_inputs_it_kept_no_copy_of(database: Database) -> None:
    setup = remixing(database)
    source, mask = signed(2, NOW - 1), signed(3, NOW - 1)
    setup.answers.update({source.url: fresh_url(2), mask.url: fresh_url(3)})
    source_kept = await setup.jobs.create(new_job(source=source, mask=mask))
    await setup.jobs.keep_inputs(source_kept, {"source": KEPT})
    mask_kept = await setup.jobs.create(new_job(source=source, mask=mask))
    await setup.jobs.keep_inputs(mask_kept, {"mask": KEPT})
    assert await setup.rules.reroll_inputs(await setup.rules.job(source_kept)) == (
        source,
        dataclasses.replace(mask, url=fresh_url(3)),
    )
    assert await setup.rules.reroll_inputs(await setup.rules.job(mask_kept)) == (
        dataclasses.replace(source, url=fresh_url(2)),
        mask,
    )
    assert setup.asked == [mask.url, source.url]


async def test_a_reroll_names_the_input_discord_would_not_refresh(database: Database) -> None:
    setup = remixing(database)
    source, mask = signed(2, NOW - 1), signed(3, NOW - 1)
    no_source = await stored_job(setup.jobs, source=source, mask=mask)
    with pytest.raises(Refusal) as refused:
        await setup.rules.reroll_inputs(no_source)
    assert (refused.value.text, refused.value.field) == (Text(words.REFRESH_FAILED, field="image"), "image")
    setup.answers[source.url] = fresh_url(2)
    with pytest.raises(Refusal) as refused:
        await setup.rules.reroll_inputs(no_source)
    assert (refused.value.text, refused.value.field) == (Text(words.REFRESH_FAILED, field="mask"), "mask")


# ----------------------------------------------------------------------------- the forms


def a_dog_in_channel_9(picture: Picture, mask: Picture | None, **options: str) -> TypedEdit:
    """The form a remix into "a dog" in channel 9 fills in (its size, count, format and model: `options`)."""
    return TypedEdit(channel_id=9, prompt="a dog", image=picture, mask=mask, growth=None, **options)


def test_a_remix_target_without_a_parent_is_a_members_upload() -> None:
    pictures = (stored_picture(2, OTHER, message_id=66),)
    target = RemixTarget(pictures, frozenset({OTHER}))
    assert (target.pictures, target.owners, target.parent) == (pictures, frozenset({OTHER}), None)


def test_a_remix_of_an_upload_takes_the_defaults() -> None:
    picture = stored_picture(2, OTHER, message_id=66)
    assert remix_form(9, "a dog", picture, None, "3", "model-x") == a_dog_in_channel_9(
        picture, None, size="auto", count="3", output_format="png", model="model-x"
    )


async def test_a_remix_of_a_result_keeps_its_parents_size_model_and_format(database: Database) -> None:
    jobs = JobStore(database)
    parent = await stored_job(jobs, size="48x32", output_format="webp", model="m2")
    picture, mask = stored_picture(2, OTHER), stored_picture(3)
    assert remix_form(9, "a dog", picture, parent, "2", "model-x", mask) == a_dog_in_channel_9(
        picture, mask, size="48x32", count="2", output_format="webp", model="m2"
    )


async def test_a_reroll_asks_again_for_exactly_the_jobs_inputs_in_the_channel_clicked(database: Database) -> None:
    jobs = JobStore(database)
    job = await stored_job(
        jobs,
        channel_id=5,
        prompt="a cat in a hat",
        size="48x32",
        count=3,
        output_format="jpeg",
        model="m2",
        source=stored_picture(2, OTHER),
        mask=stored_picture(3),
    )
    assert reroll_form(job, 11) == TypedEdit(
        channel_id=11,
        prompt="a cat in a hat",
        image=stored_picture(2, OTHER),
        mask=stored_picture(3),
        size="48x32",
        count=3,
        output_format="jpeg",
        model="m2",
        growth=None,
    )
