"""The edit runner: the one flow of every edit, whoever asked and how (`/edit`, Reroll, Remix, a region, the painter).

check (before anything is spent) → acknowledge → claim the click → inputs with URLs that work → the use case
(services/domain/editing.py: queue, quota, screening, Model Hub, delivery through `ResultPoster`) → the audit entry →
the summary. A screening refusal is told here, with its Appeal button (cogs/appeal_buttons.py).
It talks to the member only through a `Reply` (cogs/reply.py): their interaction, or a channel when there is
none (the painter) or no longer one (a dead token). A refusal is raised as a `Refusal`, for whoever called
to tell: the interaction's error handler (cogs/failures.py) or the painter's page.

The rules it follows are the services': the one validation (`EditService.check`), Remix's
(services/domain/remixing.py) and the region pictures' (services/domain/region_pictures.py). It is built once, in
`bot.py`, and reached by the extensions as `bot.runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, cast

import discord

from cogs.appeal_buttons import appeal_view
from cogs.audit import post_audit
from cogs.base import jump_url, pictures_of, role_ids_of
from cogs.delivery import ResultPoster
from cogs.reply import Reply
from services.domain.acknowledgements import AcknowledgementsFirst
from services.domain.editing import EditProgress, EditService, EndedEdit, Requester, Screen
from services.domain.region_pictures import PictureRef, RegionPictures, RegionTarget, result_target
from services.domain.remixing import RemixRules, RemixTarget, remix_form, reroll_form
from services.domain.screening import ScreeningRefused, rules_of
from services.domain.validation import CheckedEdit, TypedEdit
from services.imaging.outpaint import Growth, plan_canvas
from services.imaging.pictures import Picture
from services.imaging.regions import Selection
from services.storage.jobs import JobStore, Origin
from services.storage.quota import PERSONAL
from services.storage.settings import GuildSettings, SettingsStore
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

if TYPE_CHECKING:
    from bot import RetouchBot

log = logging.getLogger(__name__)

STOP_NOTICE_SECONDS = 5.0  # how long a shutdown waits to tell a member their edit was stopped


def runner_of(interaction: discord.Interaction) -> EditRunner:
    """The bot's runner, for the components and modals that discord.py builds without their cog."""
    return cast("RetouchBot", interaction.client).runner


def progress_text(status: EditProgress) -> Text:
    """Checking, waiting in line (place and expected wait), or editing, with the time so far."""
    elapsed = round(status.elapsed)
    if status.stage == "checking":
        return Text(words.PROGRESS_CHECKING)
    if status.stage == "waiting":
        place = (
            Text(words.PROGRESS_NEXT)
            if status.position == 0
            else Text(words.PROGRESS_POSITION, position=status.position, waiting=status.waiting)
        )
        # A float is shown with the locale's decimal separator; tenths only while they matter.
        wait = round(status.expected_wait, 1) if status.expected_wait < 10 else round(status.expected_wait)
        return Text(words.PROGRESS_IN_LINE, place=place, wait=wait, elapsed=elapsed)
    return Text(words.PROGRESS_EDITING, count=status.count, elapsed=elapsed)


def _check_may_post(reply: Reply) -> None:
    """The pictures go public in this channel at the member's request: only where they may post pictures."""
    if not reply.may_post():
        raise Refusal(Text(words.MEMBER_MAY_NOT_POST, channel_id=reply.channel_id))


def _remix_origin(
    guild_id: int | None, picture: Picture, parent_job_id: int | None, credit: str = words.CREDIT_REMIX
) -> Origin:
    """A remix's lineage: its parent job, and the credit (`credit`'s words) to the picture's message and owner."""
    link = jump_url(guild_id, picture.channel_id, picture.message_id)
    return Origin(parent_job_id=parent_job_id, credit=Text(credit, link=link, author_id=picture.author_id))


def _check_may_grow(target: RegionTarget, growth: Growth) -> None:
    """A result's size is on record (no EXIF turns it): one that cannot grow is refused before anything is spent.

    A member's upload is measured once it is read (its stored size may be turned), in the use case.
    """
    picture = target.picture
    if target.parent is not None and picture.width and picture.height:
        plan_canvas(picture.width, picture.height, growth)


class EditRunner:
    """Every entry point's flow, from the member's request to the summary; see the module's docstring."""

    def __init__(
        self,
        *,
        client: discord.Client,
        edits: EditService,
        jobs: JobStore,
        settings: SettingsStore,
        remixing: RemixRules,
        regions: RegionPictures,
        default_model: str,
        no_channel_deadline: float,
        acknowledgements: AcknowledgementsFirst,
    ) -> None:
        """`no_channel_deadline`: the age (s) of an interaction at which its edit is stopped where there is no
        channel to post in once the token dies (Config.no_channel_deadline_seconds)."""
        self._client = client
        self._edits = edits
        self._jobs = jobs
        self._settings = settings
        self._remixing = remixing
        self.regions = regions
        self._default_model = default_model
        self._no_channel_deadline = no_channel_deadline
        self._acknowledgements = acknowledgements

    # --- /edit

    async def edit(self, reply: Reply, form: TypedEdit, *, private: bool = False) -> None:
        """`/edit`: the member's own picture; `private`: the results shown to the member alone."""
        # Acknowledged before anything else: in a burst every moment before it is a later member's wait, and the
        # deferral is ephemeral, so a refusal below fills it in as privately as a reply would.
        await reply.acknowledge()
        settings = GuildSettings() if reply.server_id is None else await self._settings.get(reply.server_id)
        if private and not settings.private_results:
            raise Refusal(Text(words.PRIVATE_RESULTS_OFF))
        if not private:
            _check_may_post(reply)
        reply.private = private
        choice = await self._edits.check(form, settings)
        await self._run(reply, choice, settings)

    # --- the buttons under a result, and the "Remix image" menu

    async def reroll(self, reply: Reply, job_id: int) -> None:
        """Reroll: the same inputs, new pictures, charged to whoever clicked."""
        job = await self._remixing.job(job_id)
        settings = await self._remix_settings(reply)
        _check_may_post(reply)
        await self._remixing.check_consent(reply.member.id, job.owners)
        if not job.prompt:
            # Its pictures are on record but its prompt is not: the member who wrote it had it forgotten.
            raise Refusal(Text(words.REROLL_PROMPT_FORGOTTEN))
        choice = await self._edits.check(reroll_form(job, self._channel_id(reply)), settings)
        # Acknowledged first: of two processes sharing a shard only one can, so only one claims for this click.
        await reply.acknowledge()
        async with self._remixing.claimed("reroll", job.id, reply.member.id):
            image, mask = await self._remixing.reroll_inputs(job)
            first = job.result_message_ids[0] if job.result_message_ids else None
            origin = Origin(
                parent_job_id=job.id,
                credit=Text(
                    words.CREDIT_REROLL, link=jump_url(reply.guild_id, job.channel_id, first), user_id=job.user_id
                ),
                inputs_of=job.id if job.kept else None,
            )
            await self._run(reply, dataclasses.replace(choice, image=image, mask=mask), settings, origin)

    async def remix_target_of_job(self, reply: Reply, job_id: int) -> RemixTarget:
        """The Remix button: the pictures of this result, once the member may build on them."""
        job = await self._remixing.job(job_id)
        await self._remix_settings(reply)
        _check_may_post(reply)
        await self._remixing.check_consent(reply.member.id, job.owners)
        if not job.results:
            raise Refusal(Text(words.NO_RESULTS_ON_RECORD))
        return RemixTarget(job.results, job.owners, job)

    async def remix_target_of_message(self, reply: Reply, message: discord.Message) -> RemixTarget:
        """The "Remix image" menu: the pictures of this message, once the member may build on them."""
        await self._remix_settings(reply)
        _check_may_post(reply)
        job = None
        if self._is_mine(message):
            # Only a result of an edit is the bot's to remix (under its job's consent); an audit entry is not.
            job = await self._remixing.result_job(message.id)
        # The pictures as this interaction carried them: a bot without the MESSAGE_CONTENT intent cannot
        # read a member's attachments again later, so they are never looked up again.
        pictures = pictures_of(message, job.user_id if job else message.author.id)
        if not pictures:
            raise Refusal(Text(words.NO_PICTURE_IN_MESSAGE))
        owners = job.owners if job else frozenset({message.author.id})
        await self._remixing.check_consent(reply.member.id, owners)
        return RemixTarget(pictures, owners, job)

    async def remix(
        self, reply: Reply, target: RemixTarget, prompt: str, picture: Picture, mask: Picture | None, count_text: str
    ) -> None:
        """The Remix modal's answers: the edit of the chosen picture, credited to its parent."""
        settings = await self._remix_settings(reply)  # again: the server may have turned it off meanwhile
        _check_may_post(reply)
        await self._remixing.check_consent(reply.member.id, target.owners)
        parent = target.parent
        form = remix_form(self._channel_id(reply), prompt, picture, parent, count_text, self._default_model, mask)
        choice = await self._edits.check(form, settings)
        key = picture.message_id or (parent.id if parent else 0)
        await reply.acknowledge()  # first, as in reroll
        async with self._remixing.claimed("remix", key, reply.member.id):
            image = await self._remixing.fresh("image", picture)
            origin = _remix_origin(reply.guild_id, picture, parent.id if parent else None)
            await self._run(reply, dataclasses.replace(choice, image=image), settings, origin)

    async def delete(self, reply: Reply, job_id: int, *, moderator: bool) -> None:
        """The Delete button: the requester's or a moderator's to press."""
        job = await self._remixing.job(job_id)
        self._remixing.check_may_delete(job, reply.member.id, moderator=moderator)
        await reply.acknowledge()
        # Marked first: a delivery still running sees it between batches and posts nothing more.
        await self._jobs.mark_deleted(job.id)
        channel = self._client.get_partial_messageable(job.channel_id)
        # Read again after marking: a batch recorded meanwhile is deleted with the rest.
        current = await self._jobs.get(job.id)
        for message_id in current.result_message_ids if current else job.result_message_ids:
            with contextlib.suppress(discord.NotFound):  # already gone is what was asked for
                await channel.get_partial_message(message_id).delete()
        log.info("User %s deleted the results of job %d", reply.member.id, job.id)
        await reply.finish(Text(words.DELETED))

    # --- the region panel and the painter

    async def region_target_of_job(self, reply: Reply, job_id: int, clicked: set[int]) -> RegionTarget:
        """The Region button: the clicked result's picture (of those in `clicked`), once the member may edit it."""
        job = await self._remixing.job(job_id)
        await self._remix_settings(reply)
        _check_may_post(reply)
        await self._remixing.check_consent(reply.member.id, job.owners)
        return result_target(job, clicked)

    async def region_target_of_message(self, reply: Reply, message: discord.Message) -> RegionTarget:
        """The "Edit region" menu: this message's picture, once the member may edit it."""
        await self._remix_settings(reply)
        _check_may_post(reply)
        if self._is_mine(message):
            job = await self._remixing.result_job(message.id)
            target = result_target(job, {a.id for a in message.attachments})
        else:
            target = await self.regions.upload_target(pictures_of(message, message.author.id), message.author.id)
        await self._remixing.check_consent(reply.member.id, target.owners)
        return target

    async def panel_target(self, reply: Reply, ref: PictureRef, *, continuing: Selection | None = None) -> RegionTarget:
        """A click on a panel: its picture, once the member may still edit it; `continuing`: Continue's selection."""
        await self._remix_settings(reply)
        target = await self.regions.target_of(ref, reply.channel_id)
        await self._remixing.check_consent(reply.member.id, target.owners)
        if continuing is not None:
            if continuing.is_empty:
                raise Refusal(Text(words.REGION_EMPTY))
            _check_may_post(reply)
        return target

    async def edit_region(
        self, reply: Reply, ref: PictureRef, prompt: str, count_text: str, mask: Selection | bytes
    ) -> None:
        """The edit of one area (the panel's Selection, or the painter's alpha PNG), credited like a remix."""
        settings = await self._remix_settings(reply)  # again: the server may have turned it off meanwhile
        _check_may_post(reply)
        target = await self.regions.target_of(ref, reply.channel_id)
        await self._remixing.check_consent(reply.member.id, target.owners)
        if isinstance(mask, Selection) and mask.is_empty:
            raise Refusal(Text(words.REGION_EMPTY))
        channel_id = self._channel_id(reply)
        form = remix_form(channel_id, prompt, target.picture, target.parent, count_text, self._default_model)
        choice = await self._edits.check(form, settings)
        await reply.acknowledge()  # before the shared claim, as in reroll
        async with self._remixing.claimed("region", target.ref.id, reply.member.id):
            image = await self._remixing.fresh("image", target.picture)
            masked = await self.regions.mask(target, image, mask, reply.member.id)
            origin = _remix_origin(reply.guild_id, target.picture, target.parent.id if target.parent else None)
            await self._run(reply, dataclasses.replace(choice, image=image, mask=masked), settings, origin)

    # --- Zoom out and Pan

    async def grow_target_of_job(self, reply: Reply, job_id: int, clicked: set[int], growth: Growth) -> RegionTarget:
        """Zoom out or a Pan button: the clicked result's picture, once the member may build on it and it can grow."""
        target = await self.region_target_of_job(reply, job_id, clicked)
        _check_may_grow(target, growth)
        return target

    async def grow_target(self, reply: Reply, ref: PictureRef, growth: Growth) -> RegionTarget:
        """Zoom out or a Pan on a region panel: its picture, once the member may still build on it and it can grow."""
        target = await self.panel_target(reply, ref)
        _check_may_grow(target, growth)
        return target

    async def grow(self, reply: Reply, ref: PictureRef, growth: Growth, prompt: str, count_text: str) -> None:
        """The Zoom out or Pan modal's answers: the picture on a larger canvas, the new area painted, credited."""
        settings = await self._remix_settings(reply)  # again: the server may have turned it off meanwhile
        _check_may_post(reply)
        target = await self.regions.target_of(ref, reply.channel_id)
        await self._remixing.check_consent(reply.member.id, target.owners)
        _check_may_grow(target, growth)
        channel_id = self._channel_id(reply)
        form = remix_form(channel_id, prompt, target.picture, target.parent, count_text, self._default_model)
        # The size is the canvas's, known once the picture is read (after the quota is reserved).
        choice = await self._edits.check(dataclasses.replace(form, size="auto", growth=growth), settings)
        await reply.acknowledge()  # before the shared claim, as in reroll
        async with self._remixing.claimed("grow", target.ref.id, reply.member.id):
            image = await self._remixing.fresh("image", target.picture)
            credit = words.CREDIT_ZOOM if growth.direction is None else words.CREDIT_PAN
            parent_id = target.parent.id if target.parent else None
            origin = _remix_origin(reply.guild_id, target.picture, parent_id, credit)
            await self._run(reply, dataclasses.replace(choice, image=image), settings, origin)

    # --- an appeal the moderators approved

    async def approved(self, reply: Reply, job_id: int) -> None:
        """The refused job's edit again, as the member (`reply`), charged to them, unscreened: moderators approved."""
        job = await self._remixing.job(job_id)
        assert reply.guild_id is not None
        _check_may_post(reply)  # the member's own right to post pictures there, as it is now
        settings = await self._settings.get(reply.guild_id)
        choice = await self._edits.check(reroll_form(job, self._channel_id(reply)), settings)
        image, mask = await self._remixing.reroll_inputs(job)
        origin = Origin(inputs_of=job.id if job.kept else None)
        await self._run(reply, dataclasses.replace(choice, image=image, mask=mask), settings, origin, screened=False)

    # --- the shared tail

    async def _run(
        self,
        reply: Reply,
        choice: CheckedEdit,
        settings: GuildSettings,
        origin: Origin | None = None,
        *,
        screened: bool = True,
    ) -> None:
        """Run the checked edit for a member already acknowledged, and tell them how it went.

        `screened`: under the server's screening rules (all but an approved appeal's edit).
        """
        assert reply.channel_id is not None  # every entry point is in a channel
        # Interactions still arriving are acknowledged before this edit's work takes the loop from them.
        await self._acknowledgements.wait()
        if origin is not None and origin.parent_job_id is not None and not reply.private:
            parent = await self._jobs.get(origin.parent_job_id)
            reply.private = parent is not None and parent.private  # what builds on a private result stays private
        requester = Requester(
            PERSONAL if reply.server_id is None else reply.server_id,
            reply.channel_id,
            reply.member.id,
            role_ids_of(reply.member),
            place_guild_id=reply.guild_id,
            private=reply.private,
        )
        poster = ResultPoster(reply, credit=origin.credit if origin else None)
        started = time.monotonic()
        # Without a channel to fall back to, the member must hear how it went while the token still lives.
        timer = asyncio.timeout(reply.time_left(self._no_channel_deadline))

        async def progress(status: EditProgress) -> None:
            await reply.progress(progress_text(status))

        ended: EndedEdit | None = None
        try:
            async with timer:
                screen = Screen(rules_of(settings), reply.locale) if screened else None
                ended = await self._edits.run(
                    choice, requester, deliver=poster, origin=origin, progress=progress, screen=screen
                )
            # Pictures the screening let through, of a batch it held some of, are posted: the audit logs them too.
            logged = ended.refusal is None or (isinstance(ended.refusal, ScreeningRefused) and ended.delivered > 0)
            if logged and settings.audit_channel_id is not None and ended.sent is not None and ended.job_id is not None:
                job_id = ended.job_id
                await post_audit(
                    self._client,
                    reply,
                    settings.audit_channel_id,
                    ended.sent,
                    lambda: self._jobs.kept_inputs(job_id),
                    poster,
                    ended.delivered,
                )
            if ended.refusal is None:
                await reply.finish(poster.summary(ended.delivered, time.monotonic() - started))
        except asyncio.CancelledError:
            # Only a shutdown cancels a job; the use case has already returned the quota. Once it ended there is
            # nothing to tell. The notice is bounded and not shielded: a shutdown must end, whatever Discord does.
            if ended is None:
                try:
                    async with asyncio.timeout(STOP_NOTICE_SECONDS):
                        await reply.tell(Text(words.STOPPED_BY_RESTART))
                except Exception as exc:
                    log.info("Could not tell user %s that a shutdown stopped their edit: %r", reply.member.id, exc)
            raise
        except TimeoutError:
            if not timer.expired():
                raise
            # The use case was cancelled, which returned the quota of everything not delivered.
            log.warning("An edit for user %s was stopped before its interaction token ran out", reply.member.id)
            stopped = Text(words.OUT_OF_TIME, delivered=poster.delivered, requested=choice.count)
            raise Refusal(stopped) from None
        except Exception as error:
            if not poster.delivered:
                raise  # apologised for by whoever called: nothing was charged
            # Pictures are out and charged: the apology must not say that nothing was.
            log.error("An edit failed after %d of its pictures were posted", poster.delivered, exc_info=error)
            failed = Text(words.FAILED_AFTER_DELIVERY, delivered=poster.delivered, requested=poster.requested)
            raise Refusal(failed) from error
        if isinstance(ended.refusal, ScreeningRefused):
            # Told here rather than raised: the member's refusal carries its Appeal button.
            await reply.tell(ended.refusal.text, view=appeal_view(ended.refusal.case_id, reply.locale))
        elif ended.refusal is not None:
            raise ended.refusal

    async def _remix_settings(self, reply: Reply) -> GuildSettings:
        return await self._remixing.settings_for(reply.server_id, reply.channel_id)

    @staticmethod
    def _channel_id(reply: Reply) -> int:
        assert reply.channel_id is not None  # the remix settings refused anything else
        return reply.channel_id

    def _is_mine(self, message: discord.Message) -> bool:
        assert self._client.user is not None
        return message.author.id == self._client.user.id
