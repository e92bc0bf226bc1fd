"""Every text a member or moderator reads, as English templates: the one place translation changes.

A `Text` is a template from this module with its named values; it is rendered only when it is shown,
in the reader's language (the member's `locale` for replies, the server's `guild_locale` for public
messages). Templates are marked with `_` so that Babel can extract them into the gettext catalogs; a
sentence whose words follow a number is marked with `_n` (singular, plural, and the placeholder holding the
number), which becomes a `msgid_plural` entry with as many forms as the language has.
Services raise errors carrying a `Text`; the Discord side renders it for the interaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.text import i18n


def _(template: str) -> str:
    """Marks a template for extraction; the lookup in the reader's language happens in `Text.render`."""
    return template


@dataclass(frozen=True)
class Plural:
    """A template with plural forms; the value of the placeholder `number` (an int) picks the form."""

    singular: str
    plural: str
    number: str = "count"


# Called only as the module is imported, before mutmut can switch a mutant on: never mutated.
def _n(singular: str, plural: str, number: str = "count") -> Plural:  # pragma: no mutate
    """Marks a plural template for extraction (gettext's ngettext).

    The plural form has every placeholder; the singular may leave out the number (`in the last day`), and so
    may a translation's form that serves only the number one.
    """
    return Plural(singular, plural, number)  # pragma: no mutate


def _formatted(value: Any, locale: str | None) -> Any:
    """A placeholder's value as the reader sees it; anything else is formatted by `str.format` as it is."""
    if isinstance(value, Text):
        return value.render(locale)
    if isinstance(value, float):
        return i18n.format_number(value, locale)
    if isinstance(value, datetime):
        return i18n.discord_timestamp(value)
    if isinstance(value, date):
        return i18n.format_day(value, locale)
    if isinstance(value, timedelta):
        return i18n.format_duration(value, locale)
    return value


@dataclass(frozen=True, init=False)
class Text:
    """A member-facing sentence: a template of this module and the values of its placeholders.

    Values may be other `Text`s (rendered in the same language), `float`s (the locale's decimal separator),
    `datetime`s (a Discord timestamp, which Discord localises), `date`s (a day in the locale's words),
    `timedelta`s (in the locale's words), or
    anything `str.format` shows as it is: ints stay plain digits, since most are ids, sizes or HTTP statuses.
    """

    template: str | Plural
    values: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, template: str | Plural, /, **values: Any) -> None:
        if isinstance(template, Plural) and not isinstance(values.get(template.number), int):
            raise TypeError(f"{template.singular!r} needs the number {template.number!r} as an int")
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", values)

    def render(self, locale: str | None = None) -> str:
        """The sentence for a reader of `locale` (a Discord locale code; None: English)."""
        if isinstance(self.template, Plural):
            plural = self.template
            template = i18n.plural_translation(plural.singular, plural.plural, self.values[plural.number], locale)
        else:
            template = i18n.translation(self.template, locale) or self.template
        return template.format(**{name: _formatted(value, locale) for name, value in self.values.items()})

    def __str__(self) -> str:
        return self.render()


# Templates follow, grouped by where members meet them. Placeholders are named, never positional, so a
# translation may reorder them.

APOLOGY = _("Something went wrong inside Retouch; it has been logged. Nothing was charged.")
NOTHING_CHARGED = _("Nothing was charged.")
DATABASE_AWAY = _("Retouch cannot reach its database just now. Nothing was charged; try again in a minute.")

# --- options of an edit (`/edit`, Reroll, Remix) ---------------------------------------------------
PROMPT_LENGTH = _("`prompt` must be {min}–{max} characters; it has {length}.")
PROMPT_BLOCKED = _("`prompt` contains a word or phrase this server does not allow.")
SIZE_FORMAT = _(
    "`size` must be `auto` or WIDTHxHEIGHT with both sides multiples of {multiple} between {min} and {max}"
    " (e.g. 1024x1024); got `{shown}`."
)
COUNT_RANGE = _("`count` must be between {min} and {max}; got {count}.")
COUNT_NOT_NUMBER = _("`count` must be a whole number between {min} and {max}.")
FORMAT_CHOICE = _("`format` must be png, jpeg or webp; got `{value}`.")
MODEL_CHOICE = _("`model` must be one of the editing models offered: {offered}.")
MODELS_NONE = _("none right now")
CHANNEL_NOT_ENABLED = _("Retouch is not enabled in this channel; use {channels}.")

# --- pictures ------------------------------------------------------------------------------------
NOT_A_PICTURE = _("`{field}` must be a picture (PNG, JPEG, WebP or GIF); `{filename}` is not one.")
PICTURE_TOO_BIG = _("`{field}` must be at most {limit_mib} MiB; this one is {size_mib} MiB.")
DOWNLOAD_TOO_BIG = _("`{field}` must be at most {limit_mib} MiB.")
DOWNLOAD_REFUSED = _("Could not download `{field}` from Discord (HTTP {status}); please upload it again.")
DOWNLOAD_FAILED = _("Could not download `{field}` from Discord; please upload it again.")
STILL_PICTURE = _("`{field}` must be a still picture (PNG, JPEG, WebP or GIF without animation); {reason}")
STILL_ANIMATED = _("this one is animated.")
STILL_UNREADABLE = _("this file could not be read as one.")
PIXEL_LIMIT = _("the limit is {megapixels} megapixels; send a smaller picture.")
TOO_MANY_PIXELS = _("`{field}` has too many pixels to process; {limit}")
TOO_MANY_PIXELS_SIZED = _("`{field}` is {width}x{height} ({megapixels} megapixels); {limit}")
MASK_SIZE = _("`mask` must be the same size as `image` ({width}x{height}); it is {mask_width}x{mask_height}.")
MASK_EMPTY = _(
    "`mask` marks nothing to edit: paint the area to change white (or fully transparent) and the rest black."
)
REENCODED = _n(
    "{count} picture was re-encoded as JPEG to fit Discord's {limit} upload limit{downscaled}.",
    "{count} pictures were re-encoded as JPEG to fit Discord's {limit} upload limit{downscaled}.",
)
DOWNSCALED_ONE = _(" (and scaled down)")
DOWNSCALED_SOME = _(" ({count} of them also scaled down)")
SPLIT = _n("Split across {count} message to fit {reason}.", "Split across {count} messages to fit {reason}.")
SPLIT_FOR_BOTH = _("Discord's limits of {files} files and {limit} per message")
SPLIT_FOR_SIZE = _("Discord's {limit} upload limit")
SPLIT_FOR_COUNT = _("Discord's limit of {files} files per message")

# --- the queue and the quota ---------------------------------------------------------------------
QUEUE_BUSY = _("Retouch is busy: {reason}. Please try again in about {seconds} s; nothing was charged.")
QUEUE_FULL = _("the queue is full")
QUEUE_MEMBER_FULL = _n("you already have {held} edit in line", "you already have {held} edits in line", "held")
QUEUE_GUILD_FULL = _n(
    "this server already has {held} edit in line", "this server already has {held} edits in line", "held"
)
QUEUE_CLOSED = _("Retouch is restarting and takes no new edits right now; please try again in a minute. {charged}")
QUOTA_MEMBER_REFUSED = _n(
    "You have {remaining} of {limit} image left this {period} and asked for {requested}.{when}",
    "You have {remaining} of {limit} images left this {period} and asked for {requested}.{when}",
    "limit",
)
QUOTA_BUDGET_REFUSED = _n(
    "This server's image budget is used up: {remaining} of {limit} image left this {period},"
    " and you asked for {requested}.{when}",
    "This server's image budget is used up: {remaining} of {limit} images left this {period},"
    " and you asked for {requested}.{when}",
    "limit",
)
NEXT_FREES_UP = _(" The next one frees up {when}.")
PERIODS = {"hour": _("hour"), "day": _("day"), "week": _("week"), "month": _("month")}

# --- the Model Hub -------------------------------------------------------------------------------
UPSTREAM_CONTENT_POLICY = _("The Model Hub's content policy rejected this prompt or picture. {charged}")
# The Model Hub's own words (about the request) are quoted as they came; nothing else of an error's text, which is
# English and for the logs, reaches a member.
UPSTREAM_BAD_REQUEST = _("The Model Hub refused the request and said: “{message}” {charged}")
UPSTREAM_AUTHENTICATION = _(
    "The Model Hub refused Retouch's API token; an operator needs to check IONOS_API_TOKEN. {charged}"
)
UPSTREAM_RATE_LIMITED = _("The Model Hub is rate limiting Retouch right now; please try again{wait}. {charged}")
UPSTREAM_RETRY_IN = _(" in about {seconds} s")
UPSTREAM_RETRY_SOON = _(" in a minute")
UPSTREAM_TIMEOUT = _("The Model Hub timed out: it did not answer in time. {charged}")
UPSTREAM_UNAVAILABLE = _("The Model Hub is unavailable right now (HTTP {status}); please try again later. {charged}")
UPSTREAM_UNREACHABLE = _("The Model Hub cannot be reached right now; please try again later. {charged}")
UPSTREAM_MALFORMED = _("The Model Hub sent back an answer Retouch could not read; please try again. {charged}")
UPSTREAM_FAILED = _("The Model Hub failed; please try again later. {charged}")

# --- progress, results and delivery --------------------------------------------------------------
PROGRESS_CHECKING = _("Checking your picture…")
PROGRESS_IN_LINE = _("In line: {place} · about {wait} s to wait · {elapsed} s elapsed")
PROGRESS_NEXT = _("next")
PROGRESS_POSITION = _("position {position} of {waiting}")
PROGRESS_EDITING = _n("Editing {count} picture… {elapsed} s", "Editing {count} pictures… {elapsed} s")
DONE = _n("Done: {count} picture posted below in {seconds} s.", "Done: {count} pictures posted below in {seconds} s.")
CAPTION = _("> {prompt}\nRequested by {mention} · `{model}` · {width}x{height}{part}{credit}")
CAPTION_PART = _(" · part {number}/{total}")
CREDIT_REMIX = _("Remix of {link} by <@{author_id}>")
CREDIT_REROLL = _("Reroll of {link} by <@{user_id}>")
AUDIT_NOT_POSTED = _("(not posted)")
AUDIT_PRIVATE = _("private (shown to the member only)")
PRIVATE_RESULTS_OFF = _(
    "This server does not allow private results: run `/edit` without `private`. Nothing was charged."
)
FORCED_PRIVATE = _(
    "This server shows apps it has not added only to the member who uses them, so only you can see the results."
)
OUT_OF_TIME = _(
    "Discord lets Retouch answer here for 15 minutes only, and there is no channel to post in instead, so the edit"
    " was stopped: {delivered} of {requested} pictures were delivered and charged, the rest was not."
)
DISCORD_REFUSED = _(
    "Discord refused to post the pictures (HTTP {status}); {delivered} of {requested} were posted and only"
    " those were charged."
)
DELIVERED_NOTHING = _("Discord accepted none of the pictures; nothing was charged.")
TOKEN_EXPIRED_NO_CHANNEL = _(
    "The edit took longer than Discord lets a reply wait, and Retouch may not post in this channel; it was"
    " cancelled and nothing undelivered was charged."
)
STOPPED_BY_RESTART = _(
    "Retouch is restarting and had to stop this edit; only pictures already posted were charged. Please try again."
)

# --- /jobs ----------------------------------------------------------------------------------------
JOBS_HEADER = _("**Your last edits**, newest first (page {page}):")
JOBS_HEADER_MEMBER = _("**Last edits of {member} in this server**, newest first (page {page}):")
JOBS_NONE = _("No edits on record.")
JOBS_LINE = _("**{number}.** {when} · {where} · {prompt} · {outcome}")
JOBS_IN_DM = _("in a DM")
JOBS_PRIVATE_IN = _("privately in <#{channel_id}>")
JOBS_PROMPT_GONE = _("(prompt not kept)")
JOBS_DONE = _("{delivered} of {count} delivered")
JOBS_FAILED = _("failed, nothing delivered")
JOBS_DELETED = _("deleted")
JOBS_RUNNING = _("still running")
BUTTON_SHOW = _("Show {number}")
BUTTON_NEWER = _("Newer")
BUTTON_OLDER = _("Older")
SHOWN_AGAIN = _("Your edit of {when}: {prompt}")
SHOW_GONE = _(
    "The results of that edit are gone: they were deleted, forgotten, past the retention period, or Discord no"
    " longer has them."
)
SHOW_NOT_YOURS = _("Only the member who made that edit, or a moderator of its server, can see its results again.")

# --- remixing ------------------------------------------------------------------------------------
BUTTON_REROLL = _("Reroll")
BUTTON_REMIX = _("Remix")
BUTTON_DELETE = _("Delete")
REMIX_UNAVAILABLE = _("Remixing is not available right now; please try again in a minute.")
REMIX_MODAL_TITLE = _("Remix")
REMIX_PROMPT_LABEL = _("Prompt")
REMIX_PROMPT_HELP = _("What should change")
REMIX_PICTURE_LABEL = _("Picture")
REMIX_PICTURE_HELP = _("Which one to remix")
REMIX_PICTURE_OPTION = _("{number}. {filename}")
REMIX_MASK_LABEL = _("Mask (optional)")
REMIX_MASK_HELP = _("Same size as the picture; transparent or white where it may change")
REMIX_COUNT_LABEL = _("Count")
REMIX_COUNT_HELP = _("How many pictures ({min}–{max})")
REMIXING_ALLOWED = _("Other members can remix your uploads and results.")
REMIXING_STOPPED = _("Other members can no longer remix or reroll your uploads and results; you still can.")
NO_PICTURE_IN_MESSAGE = _("That message has no picture to remix: it needs an image attachment or an image embed.")
NO_RESULTS_ON_RECORD = _("This result has no pictures on record to remix.")
DELETE_NOT_YOURS = _("Only <@{user_id}>, who asked for this result, or a moderator can delete it.")
DELETED = _("Deleted.")
JOB_GONE = _("This result is no longer on record, so its buttons cannot do anything.")
REROLL_PROMPT_FORGOTTEN = _(
    "The prompt of this result was deleted at the request of the member who wrote it, so it cannot be rerolled. "
    "Use Remix to give it a prompt of your own."
)
REMIX_SERVERS_ONLY = _("Remixing works in servers only.")
REMIX_OFF = _("Remixing is turned off on this server.")
OPTED_OUT = _(
    "<@{user_id}> has opted out of having their pictures remixed, so this one cannot be remixed or rerolled by others."
)
ALREADY_RUNNING = _("Already working on that one: the pictures will appear in a moment. This click was not charged.")
PICTURE_GONE = _("The picture is gone: {reason}. Nothing was charged.")
GONE_AT_DISCORD = _("Discord no longer has it")
REFRESH_FAILED = _(
    "Discord would not give a fresh link to the `{field}` picture right now; please try again in a minute."
    " Nothing was charged."
)
REMIX_NOT_A_RESULT = _(
    "That message of mine is not the result of an edit, so there is nothing on record to remix. Nothing was charged."
)
MEMBER_MAY_NOT_POST = _(
    "You may not post pictures in <#{channel_id}> (that needs Send Messages and Attach Files), so Retouch will"
    " not post them for you there. Nothing was charged."
)

# --- moderators, quotas and settings -------------------------------------------------------------
NOT_MODERATOR = _("`/{group}` is for moderators: it needs the Manage Server permission.")
RULE_EXEMPT = _("no limit (exempt)")
RULE_LIMIT = _n("{limit} image per {period}", "{limit} images per {period}", "limit")
RULE_WITH_SOURCE = _("{rule}, from {reason}")
SOURCE_MEMBER = _("a rule set on this member")
SOURCE_ROLE = _("the role <@&{role_id}>, the most generous of the member's roles with a rule")
SOURCE_SERVER_DEFAULT = _("the server's default (no member or role rule applies)")
SOURCE_OPERATOR_DEFAULT = _("the operator's default (this server has set no rule)")
SOURCE_PERSONAL = _("the operator's limit for personal use: no server's rules apply here")
STATUS_UNLIMITED_YOU = _("No limit applies to you ({source}).")
STATUS_UNLIMITED_THEM = _("No limit applies to them ({source}).")
STATUS_LEFT_YOU = _n(
    "You have **{remaining} of {limit}** image left this {period} (used {used}).",
    "You have **{remaining} of {limit}** images left this {period} (used {used}).",
    "limit",
)
STATUS_LEFT_THEM = _n(
    "They have **{remaining} of {limit}** image left this {period} (used {used}).",
    "They have **{remaining} of {limit}** images left this {period} (used {used}).",
    "limit",
)
STATUS_NEXT_FREE = _("The next one frees up {when}.")
STATUS_BUDGET = _n(
    "The server budget has {remaining} of {limit} image left this {period}.",
    "The server budget has {remaining} of {limit} images left this {period}.",
    "limit",
)
STATUS_PERSONAL_BUDGET = _n(
    "All personal use together has {remaining} of {limit} image left this {period}.",
    "All personal use together has {remaining} of {limit} images left this {period}.",
    "limit",
)
QUOTA_DEFAULT_SET = _n(
    "Server default set to {limit} image per {period}.", "Server default set to {limit} images per {period}.", "limit"
)
QUOTA_TARGET_SET = _n(
    "{target} set to {limit} image per {period}.", "{target} set to {limit} images per {period}.", "limit"
)
QUOTA_EXEMPTED = _("{target} is exempt from limits (the server budget still applies).")
QUOTA_CLEARED = _("Removed the rule of {target}.")
QUOTA_NO_RULE = _("{target} had no rule.")
QUOTA_BUDGET_CLEARED = _("Removed the server budget: only members' own limits apply now.")
QUOTA_NO_BUDGET_SET = _("This server had no budget.")
QUOTA_BUDGET_INCOMPLETE = _(
    "`{missing}` is missing: give both `limit` and `period` to set the server budget, or neither to remove it."
)
QUOTA_BUDGET_SET = _n(
    "Server budget set to {limit} image per {period}.", "Server budget set to {limit} images per {period}.", "limit"
)
QUOTA_SHOW_MEMBER = _("{target}: {source}.\n{status}")
QUOTA_OPERATOR_DEFAULT = _("Operator default: {rule}")
QUOTA_RULE_LINE = _("{who}: {rule}")
QUOTA_SERVER_DEFAULT = _("Server default")
QUOTA_SERVER_BUDGET = _("Server budget: {rule}")
QUOTA_NO_BUDGET = _("none")
QUOTA_FORGIVEN = _n("Forgave {count} image of {target}.", "Forgave {count} images of {target}.")
REPORT_TOTAL = _n("**{images}** in the last day.", "**{images}** in the last {days} days.", "days")
REPORT_RANK = _("{rank}. <@{user_id}>: {images}")
REPORT_PER_DAY = _("Per day: {days}")
REPORT_CHART_TITLE = _n("Images per day, last day", "Images per day, last {days} days", "days")
REPORT_UNKNOWN_USER = _("user {user_id}")
CONSENT_OPTED_OUT = _("Others may not remix your pictures (`/remixing allow:True` to change that).")
CONSENT_ALLOWED = _("Others may remix your pictures (`/remixing allow:False` to opt out).")
SETTINGS_CHANNELS = _("Allowed channels: {channels}")
SETTINGS_ALL_CHANNELS = _("all channels")
SETTINGS_MAX_COUNT = _("Max pictures per edit: {count}")
SETTINGS_LONG_SIDE = _("Long side for `auto` size: {side}")
SETTINGS_BLOCKLIST = _("Blocked words and phrases: {count}")
SETTINGS_AUDIT = _("Audit log: {channel}")
SETTINGS_REMIXING = _("Remixing: {state}")
SETTINGS_PRIVATE = _("Private results (`/edit … private:True`): {state}")
SETTINGS_ALLOWED = _("allowed")
SETTINGS_ON = _("on")
SETTINGS_OFF = _("off")
SETTINGS_SAVED = _("Saved.\n{settings}")
LONG_SIDE_RANGE = _("`long_side` must be a multiple of {multiple} between {min} and {max}; got {value}.")
BLOCKLIST_LIST = _("Blocked: {phrases}")
BLOCKLIST_EMPTY = _("nothing")
BLOCKLIST_PHRASE_NEEDED = {
    "add": _("`phrase` is needed to add a word or phrase to the blocklist."),
    "remove": _("`phrase` is needed to remove a word or phrase from the blocklist."),
}
BLOCKLIST_ADDED = _("Added to the blocklist.")
BLOCKLIST_ALREADY = _("That is already blocked.")
BLOCKLIST_REMOVED = _("Removed from the blocklist.")
BLOCKLIST_ABSENT = _("That was not blocked.")

# Counted things, shown inside other sentences (`{edits}`, `{images}`) so that each number has its own form.
N_EDITS = _n("{count} edit", "{count} edits")
N_IMAGES = _n("{count} image", "{count} images")
N_PICTURES = _n("{count} picture", "{count} pictures")
N_REFERENCES = _n("{count} reference", "{count} references")
N_PICTURE_REFERENCES = _n("{count} picture reference", "{count} picture references")
N_USAGE_RECORDS = _n("{count} usage record", "{count} usage records")
N_DAYS = _n("{count} day", "{count} days")


def joined(texts: Sequence[Text], separator: str = "\n") -> Text:
    """Several sentences shown as one (lines of a reply, notes after a summary), each rendered on its own."""
    template = separator.join(f"{{t{n}}}" for n in range(len(texts)))
    return Text(template, **{f"t{n}": text for n, text in enumerate(texts)})


# --- command metadata (the command picker) -------------------------------------------------------
# Command descriptions are the commands' docstrings (discord.py's convention); their options, groups and
# the message menu are named here. Discord localises these through `app_commands.Translator`.
MENU_REMIX_IMAGE = _("Remix image")
GROUP_QUOTA = _("Set and inspect image quotas (moderators)")
GROUP_RETOUCH = _("Retouch's settings for this server (moderators)")
GROUP_PRIVACY = _("What Retouch keeps about you, and forgetting it")
OPTION_IMAGE = _("The picture to edit")
OPTION_PROMPT = _("What should change (up to {max} characters)")
OPTION_MASK = _("Optional mask: transparent (or white) where the picture may change")
OPTION_SIZE = _("auto (keeps the aspect ratio) or WIDTHxHEIGHT, multiples of {multiple} between {min} and {max}")
OPTION_COUNT = _("How many pictures to make ({min}–{max})")
OPTION_FORMAT = _("File format of the results")
OPTION_MODEL = _("The editing model")
OPTION_PRIVATE = _("Show the results only to you")
OPTION_PRIVATE_RESULTS = _("allowed: members may ask for results only they see; off: every result is public")
OPTION_ALLOW_REMIX = _("Whether other members may remix your uploads and results")
OPTION_QUOTA_LIMIT = _("Images per period (0 = none)")
OPTION_QUOTA_PERIOD = _("The rolling window")
OPTION_ROLE = _("The role")
OPTION_MEMBER = _("The member")
OPTION_EXEMPT_TARGET = _("The role or member to exempt from limits (the server budget still applies)")
OPTION_CLEAR_TARGET = _("The role or member whose rule to remove")
OPTION_BUDGET_LIMIT = _("Images per period for the whole server (leave out with period to remove the budget)")
OPTION_BUDGET_PERIOD = _("The rolling window (leave out with limit to remove the budget)")
OPTION_SHOW_MEMBER = _("Whose quota to explain (default: the rules of the server)")
OPTION_RESET_MEMBER = _("The member whose usage in the current window to forgive")
OPTION_REPORT_DAYS = _("How many days back (default 7)")
OPTION_CHANNEL = _("The channel")
OPTION_CHANNEL_ALLOWED = _("Allow /edit there (once any channel is allowed, only allowed channels work)")
OPTION_MAX_COUNT = _("The most pictures one edit may ask for ({min}–{max})")
OPTION_LONG_SIDE = _("The long side of `auto` size, a multiple of {multiple} between {min} and {max}")
OPTION_BLOCKLIST_ACTION = _("Add, remove or list")
# Choice names of `/retouch blocklist action` (the values stay English); `PERIODS` names the quota choices.
BLOCKLIST_ACTIONS = (_("add"), _("remove"), _("list"))
OPTION_BLOCKLIST_PHRASE = _("A word or phrase (whole words, any case)")
OPTION_AUDIT_CHANNEL = _("Where to log every edit (leave empty to turn the audit log off)")
OPTION_REMIXING_ENABLED = _("Whether members may remix and reroll pictures here")
OPTION_SCREENING_MODE = _("What to screen: off, prompts, or prompts and pictures (the input and each result)")
OPTION_SCREENING_POLICY = _("A preset (all-ages, no-nudity, no-real-people, anything) or your own words")
OPTION_SCREENING_ON_FAILURE = _("When a check cannot be made: refuse the edit or allow it (default: as the policy)")
SETTINGS_SCREENING = _("Screening: {mode}; policy: {policy}; when a check fails: {failure}")
SCREENING_MODES = {
    "off": _("off"),
    "prompts": _("prompts"),
    "pictures": _("prompts and pictures"),
}
SCREENING_PRESETS = {
    "all-ages": _("all ages"),
    "no-nudity": _("no nudity"),
    "no-real-people": _("no real people"),
    "anything": _("anything the Model Hub allows"),
}
SCREENING_OWN_POLICY = _("your own words: “{words}”")
SCREENING_FAIL_REFUSE = _("refuse")
SCREENING_FAIL_ALLOW = _("allow")
SCREENING_POLICY_EMPTY = _("The policy needs some words: a preset's name or your own (up to {max} characters).")

# ----------------------------------------------------------------------------- screening and appeals

SCREENING_REFUSED_PROMPT = _(
    "This server's screening refused your edit: {reason} {charged} If you think that is wrong, press **Appeal** "
    "to ask the moderators."
)
SCREENING_REFUSED_RESULTS = _n(
    "This server's screening held back the picture made for you: {reason} It was not posted and not charged. If "
    "you think that is wrong, press **Appeal** to ask the moderators.",
    "This server's screening held back {refused} of the {count} pictures made for you: {reason} They were not "
    "posted and not charged. If you think that is wrong, press **Appeal** to ask the moderators.",
)
SCREENING_UNCHECKED = _(
    "Your edit could not be screened just now, and this server refuses what it cannot check. {charged} Try again "
    "in a moment, or press **Appeal** to ask the moderators."
)
BUTTON_APPEAL = _("Appeal")
BUTTON_APPROVE = _("Approve")
BUTTON_DENY = _("Deny")
APPEALS_UNAVAILABLE = _("Appeals are not available right now; please try again in a minute.")
APPEAL_GONE = _("This case is no longer on record (it was forgotten or has expired).")
APPEAL_NOT_YOURS = _("Only the member whose edit was refused can appeal it.")
APPEAL_ALREADY = _("You have already appealed this refusal; the moderators will decide.")
APPEAL_NO_AUDIT_CHANNEL = _(
    "This server has no audit-log channel, where moderators see appeals, so this one cannot reach them. Ask a "
    "moderator directly, or ask them to set one with `/retouch audit-log`."
)
APPEAL_NOT_DELIVERED = _("Your appeal could not be posted for the moderators; please try again later.")
APPEAL_SENT = _("Your appeal is with the moderators. If they approve it, your edit runs and is posted here.")
APPEAL_POST = _(
    "**Appeal** from {mention} in <#{channel_id}>: screening refused {stage}.\n"
    "Category: {category}. Reason given: {reason}"
)
APPEAL_STAGE_INPUT = _("the prompt and its picture")
APPEAL_STAGE_RESULT = _("the results")
APPEAL_NO_REASON = _("none (the check itself failed)")
APPEAL_MODERATORS_ONLY = _("Only moderators (Manage Server) can decide appeals.")
APPEAL_DECIDED = _("This appeal has already been decided.")
APPEAL_APPROVED_BY = _("Approved by {mention}.")
APPEAL_DENIED_BY = _("Denied by {mention}.")
APPEAL_APPROVED = _("Approved: the edit runs for {mention} in <#{channel_id}>, charged to them.")
APPEAL_DENIED = _("Denied; {mention} has been told.")
APPEAL_DENIED_MEMBER = _(
    "The moderators looked at your appeal in <#{channel_id}> and kept the screening's refusal. Nothing was charged."
)

# ----------------------------------------------------------------------------- privacy (/privacy)

PRIVACY_SHOW = _(
    "**What Retouch keeps about you**, across every server it shares with you ({servers} so far):\n"
    "- {edits} on record, {prompts} of them with the prompt you wrote\n"
    "- {uploads} to pictures you uploaded and {results} to results made for you: links to "
    "the Discord attachments; of each picture (and mask) you edited, also a copy at most 2048 pixels on "
    "its long side, so that Reroll still works once Discord has deleted the upload\n"
    "- {images} counting against your quota now ({usage_rows})\n"
    "- Others remixing your pictures: {consent}\n"
    "\n"
    "**For how long**: prompts and picture references for {retention_days} (the copies too), after "
    "which only the edit's date, model and size remain; usage counts for {window_days}; everything of a server "
    "{forget_guild_days} after Retouch leaves it.\n"
    "\n"
    "**Sent to the IONOS AI Model Hub** (in Germany) for each edit: your prompt, the link to your picture "
    "(or its copy, for a Reroll or when the Model Hub cannot fetch the link), and the mask if you gave one. Not your "
    "name or id.\n"
    "\n"
    "**Sent to the screening model** (on the same Model Hub), only where a server turned screening on: the "
    "server's policy, your prompt and your language, and, if it screens pictures, a copy of your picture and of "
    "each result at most 512 pixels on its long side. Not your name or id. A refusal you appeal is kept, with "
    "its reason, for the moderators to decide.\n"
    "\n"
    "`/privacy forget` deletes your prompts (also in others' Rerolls of your edits), picture references (with the "
    "copies) and appeals. Your remixing choice stays, and so do the entries the moderators' audit-log channel "
    "received."
)
PRIVACY_CONSENT_ALLOWED = _("allowed")
PRIVACY_CONSENT_REFUSED = _("not allowed (you opted out)")
PRIVACY_FORGET_CONFIRM = _(
    "This deletes, in every server: your prompts (also where others rerolled your edits) and the references to "
    "your pictures and results ({edits}, {pictures}). Your usage stays only as "
    "counts until it leaves the quota window ({window_days} at most), so that limits still hold. "
    "Your choice about others remixing your pictures (`/remixing`) stays too, so that an opt-out keeps "
    "protecting them. Results already posted stay on Discord (their Delete button removes them; use it first) "
    "but their buttons will stop working. Entries already posted in a server's audit-log channel (with your "
    "prompt and small previews) are its moderators' log and stay: ask them if you want those removed. "
    "This cannot be undone, and you can ask again only after {interval}."
)
PRIVACY_FORGET_BUTTON = _("Forget me")
PRIVACY_CANCEL_BUTTON = _("Cancel")
PRIVACY_FORGOTTEN = _(
    "Done: Retouch no longer keeps your prompts or picture references. Your remixing choice stays, and the "
    "entries moderators' audit-log channels received stay with them."
)
PRIVACY_TOO_SOON = _("You asked Retouch to forget you {last}; you can ask again {next}. Nothing was deleted.")
PRIVACY_CANCELLED = _("Cancelled; nothing was deleted.")
PRIVACY_EXPIRED = _("This confirmation has expired; nothing was deleted. Run `/privacy forget` again.")
PRIVACY_BUSY = _("One of your edits is still running; wait until it has finished, then ask again. Nothing was deleted.")

# ----------------------------------------------------------------- delivery hardening (issue 9)

FAILED_AFTER_DELIVERY = _n(
    "{delivered} of {requested} picture was posted and only that was charged; then something went wrong"
    " inside Retouch (it has been logged).",
    "{delivered} of {requested} pictures were posted and only those were charged; then something went wrong"
    " inside Retouch (it has been logged).",
    "requested",
)
DELIVERY_STOPPED_DELETED = _("The rest was not posted or charged: the result was deleted meanwhile.")
LONG_TEXT_ATTACHED = _("(The whole list is in the attached `{filename}`.)")
AUDIT_HEADER = _(
    "{mention} edited in <#{channel_id}> · `{model}` · {width}x{height} · {delivered} of {requested} posted · {link}"
)
AUDIT_PROMPT_ATTACHED = _("(The whole prompt is in the attached `{filename}`.)")
DELIVERY_DELETED_NOTHING = _("The result was deleted before any picture was posted; nothing was charged.")


# Pictures too large to read at full size (services.imaging.images)

PICTURE_TOO_LARGE_TO_DECODE = _(
    "`{field}` is {width}x{height} ({megapixels} megapixels); a picture Retouch reads at full size (a mask, "
    "a PNG, WebP or GIF, or a photo stored turned) may have at most {limit} megapixels; send a smaller picture."
)

# Cooldowns after repeated upstream rejections (services.domain.rejections); `until` is how the reader's client
# shows the moment the cooldown ends (on Discord a relative timestamp)

COOLING_DOWN = _(
    "The Model Hub refused your last {edits} ({images}), which still cost everyone's shared "
    "image rate; you can start the next edit {until}. Nothing was charged."
)
COOLING_DOWN_ENTRY = _("{member}: cooling down until {until}; refused: {edits} ({images})")

# ----------------------------------------------------------------- editing a region (issue 11)

BUTTON_REGION = _("Region")
MENU_EDIT_REGION = _("Edit region")
REGION_PANEL = _(
    "Choose the area to change: it is tinted on the picture. **Invert** swaps it for the rest; "
    "**Continue** asks what should appear there."
)
REGION_CHOSEN = _("Area to change: {areas}.")
REGION_CHOSEN_INVERTED = _("Area to change: everything except {areas}.")
REGION_NOTHING_CHOSEN = _("Area to change: nothing yet.")
REGION_EVERYTHING = _("Area to change: the whole picture.")
REGION_SELECT_PLACEHOLDER = _("Areas to change")
REGION_INVERT = _("Invert")
REGION_CONTINUE = _("Continue")
REGION_PAINT = _("Paint in browser")
REGION_EMPTY = _("The area to change is empty: choose at least one area first. Nothing was charged.")
REGION_MODAL_TITLE = _("Edit region")
REGION_PROMPT_HELP = _("What should appear in the tinted area")
REGION_NO_PICTURE = _("That message has no picture to edit: it needs an image attachment.")
REGION_UNKNOWN = _(
    "I no longer know this panel's picture (I may have restarted); open **Edit region** on the message again."
)
PAINTER_POSTED = _("Done: the result is posted in the channel.")
PAINTER_QUEUED = _("Your edit is in line: the result will be posted in the channel, mentioning you.")
PAINTER_NOT_MEMBER = _("You are no longer a member of that server, so this link cannot edit there.")
PAINTER_TOLD = _("About your edit from the browser painter in <#{channel}>: {reason}")

# ----------------------------------------------------------------- Zoom out and Pan (issue 21)

BUTTON_ZOOM_OUT = _("Zoom out")
ZOOM_MODAL_TITLE = _("Zoom out")
PAN_LEFT_TITLE = _("Pan left")
PAN_RIGHT_TITLE = _("Pan right")
PAN_UP_TITLE = _("Pan up")
PAN_DOWN_TITLE = _("Pan down")
GROW_PROMPT_HELP = _("What should appear around the picture")
ZOOM_FACTOR_LABEL = _("Factor")
ZOOM_FACTOR_HELP = _("How far to zoom out")
ZOOM_FACTOR_OPTION = _("{factor}×")
CREDIT_ZOOM = _("Zoomed out from {link} by <@{author_id}>")
CREDIT_PAN = _("Panned from {link} by <@{author_id}>")
OUTPAINT_CANNOT_GROW = _(
    "This picture cannot grow that way: it is already {width}×{height} pixels, and the upstream makes"
    " pictures of at most {max} pixels a side. Nothing was charged."
)
