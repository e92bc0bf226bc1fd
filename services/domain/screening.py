"""Screening: a server's policy, judged by a chat model on the Model Hub before any image is spent or posted.

A server turns it on with `/retouch screening`: `prompts` (the prompt alone), `pictures` (the prompt with the
input picture, then each result before it is posted), with a policy in plain words (a preset or the
moderators' own) and what happens when the check itself fails (a timeout, an error, an answer that is not
the JSON asked for): refuse (fail closed) or allow (fail open).

One check is one chat completion: the policy as the system message, the prompt and at most one picture
(a downsized data URL) as the user message, and the answer asked for as one JSON object
`{"allowed": …, "category": …, "reason": …}`, the reason one sentence in the member's language. The HTTP
client (services/outside/screening.py) implements `Screener`; this module says what is asked and what an
answer means.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from services.imaging.images import screening_data_url
from services.storage.settings import GuildSettings
from services.text import words
from services.text.refusal import Refusal
from services.text.words import Text

log = logging.getLogger(__name__)

Mode = Literal["off", "prompts", "pictures"]
MODES: tuple[Mode, ...] = ("off", "prompts", "pictures")
Stage = Literal["input", "result"]
Outcome = Literal["allowed", "refused", "failed_open", "failed_closed"]
OUTCOMES: tuple[Outcome, ...] = ("allowed", "refused", "failed_open", "failed_closed")
STAGES: tuple[Stage, ...] = ("input", "result")

# The presets a server picks by name; the words go to the model as they are (English: the model's best).
PRESETS: dict[str, str] = {
    "all-ages": (
        "This is a community for all ages, children included. Refuse anything sexual or suggestive (including"
        " revealing clothing or poses), nudity, gore, graphic violence, drugs, hate symbols, and any edit that"
        " mocks, sexualises or humiliates a real person in the picture."
    ),
    "no-nudity": "Refuse nudity and sexual content of any kind. Everything else is allowed.",
    "no-real-people": (
        "Refuse edits of photos of real, identifiable people (faces of real persons, celebrities, members'"
        " photos of themselves or others). Drawings, illustrations and fictional characters are allowed."
    ),
    "anything": "Allow anything the Model Hub itself allows; refuse nothing on this server's account.",
}
DEFAULT_PRESET = "all-ages"
# The presets whose servers would rather lose an edit than let one through unchecked when a check fails.
_FAIL_OPEN_PRESETS = frozenset({"anything"})
MAX_POLICY_CHARS = 1000
# The language the reason is asked in, by Discord locale (its first part); others are named by their code.
_LANGUAGES = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch"}

_INSTRUCTIONS = (
    "You screen requests to an image-editing bot on a Discord server against the server's policy.\n"
    "The server's policy:\n{policy}\n\n"
    "Judge the member's prompt{and_picture}. Answer with exactly one JSON object and nothing else:"
    ' {{"allowed": true or false, "category": "one or two words naming what the policy refuses, or none",'
    ' "reason": "one sentence, in {language}, telling the member why"}}.'
)
_RESULT_INSTRUCTIONS = (
    "You screen pictures an image-editing bot is about to post on a Discord server against the server's policy.\n"
    "The server's policy:\n{policy}\n\n"
    "Judge the picture, made for the member's prompt. Answer with exactly one JSON object and nothing else:"
    ' {{"allowed": true or false, "category": "one or two words naming what the policy refuses, or none",'
    ' "reason": "one sentence, in {language}, telling the member why"}}.'
)


@dataclass(frozen=True)
class ScreeningRules:
    """A server's screening settings: the mode, the policy (a preset's name or the moderators' words), on failure."""

    mode: Mode = "off"
    policy: str = DEFAULT_PRESET
    fail_open: bool | None = None  # None: the policy's default (closed, but open for `anything`)

    @property
    def on(self) -> bool:
        return self.mode != "off"

    @property
    def policy_words(self) -> str:
        """What the model is told the policy is."""
        return PRESETS.get(self.policy, self.policy)

    @property
    def opens_on_failure(self) -> bool:
        return self.fail_open if self.fail_open is not None else self.policy in _FAIL_OPEN_PRESETS


@dataclass(frozen=True)
class Verdict:
    """The model's answer: allowed or not, what kind of thing it refused, and why, in the member's language."""

    allowed: bool
    category: str
    reason: str
    unchecked: bool = False  # no verdict at all: the check failed, and the rules decided


@dataclass(frozen=True)
class ScreeningRequest:
    """One check: the instructions (the policy), the member's prompt, and at most one picture as a URL."""

    instructions: str
    prompt: str
    picture_url: str | None = None

    def messages(self) -> list[dict[str, Any]]:
        """The chat messages in OpenAI's shape: the instructions as the system message, the rest as the user's."""
        content: list[dict[str, Any]] = [{"type": "text", "text": f"The member's prompt:\n{self.prompt}"}]
        if self.picture_url is not None:
            content.append({"type": "image_url", "image_url": {"url": self.picture_url}})
        return [{"role": "system", "content": self.instructions}, {"role": "user", "content": content}]


class ScreeningFailed(Exception):
    """The check itself failed: no answer in time, an upstream error, or an answer that is not the JSON asked for.

    `kind` is one of a few fixed words (metrics, logs); the message never carries a token or a URL.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Screener(Protocol):
    """Judges one request (services/outside/screening.py over `POST /chat/completions`)."""

    async def judge(self, request: ScreeningRequest) -> Verdict: ...


class ScreeningObserver(Protocol):
    """Told of every check: its stage, its outcome and how long it took (the metrics)."""

    def screened(self, stage: str, outcome: str, seconds: float) -> None: ...


def parse_verdict(content: str) -> Verdict:
    """The verdict in the model's answer, which must be one JSON object with the three fields, else malformed.

    A fenced block (```json … ```) is taken as what it holds: models add the fence even when told not to.
    """
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        raise ScreeningFailed("malformed", "the screening answer was not JSON") from None
    if not isinstance(answer, dict):
        raise ScreeningFailed("malformed", "the screening answer was not a JSON object")
    allowed, category, reason = answer.get("allowed"), answer.get("category"), answer.get("reason")
    if not isinstance(allowed, bool) or not isinstance(category, str) or not isinstance(reason, str):
        raise ScreeningFailed("malformed", "the screening answer lacked allowed, category or reason")
    return Verdict(allowed, category.strip()[:100], " ".join(reason.split())[:500])


def language_of(locale: str | None) -> str:
    """The language the reason is asked in, for a Discord locale (`de`, `en-US`, `pt-BR`)."""
    if not locale:
        return "English"
    return _LANGUAGES.get(locale.split("-")[0].lower(), locale)


class ScreeningRefused(Refusal):
    """A screening refused the edit (or some of its results): the member is told why and may appeal `case_id`."""

    def __init__(self, text: Text, case_id: int) -> None:
        super().__init__(text, field="screening")
        self.case_id = case_id


class Screening:
    """The checks of one server's rules, their outcome decided per the rules when a check fails."""

    def __init__(self, screener: Screener, observer: ScreeningObserver | None = None) -> None:
        self._screener = screener
        self._observer = observer

    async def check_input(
        self, rules: ScreeningRules, prompt: str, picture: bytes | None, locale: str | None
    ) -> Verdict:
        """The prompt, with the input picture when the rules screen pictures."""
        with_picture = rules.mode == "pictures" and picture is not None
        instructions = _INSTRUCTIONS.format(
            policy=rules.policy_words,
            and_picture=" and the picture it asks to edit" if with_picture else "",
            language=language_of(locale),
        )
        url = await screening_data_url(picture) if with_picture and picture is not None else None
        return await self._check("input", rules, ScreeningRequest(instructions, prompt, url))

    async def check_result(self, rules: ScreeningRules, prompt: str, picture: bytes, locale: str | None) -> Verdict:
        """One result, before it is posted."""
        instructions = _RESULT_INSTRUCTIONS.format(policy=rules.policy_words, language=language_of(locale))
        url = await screening_data_url(picture)
        return await self._check("result", rules, ScreeningRequest(instructions, prompt, url))

    async def _check(self, stage: Stage, rules: ScreeningRules, request: ScreeningRequest) -> Verdict:
        started = time.monotonic()
        try:
            verdict = await self._screener.judge(request)
            outcome: Outcome = "allowed" if verdict.allowed else "refused"
        except ScreeningFailed as failed:
            log.warning("A screening check failed (%s): %s", failed.kind, failed)
            opened = rules.opens_on_failure
            verdict = Verdict(opened, "none", "", unchecked=True)
            outcome = "failed_open" if opened else "failed_closed"
        if self._observer is not None:
            self._observer.screened(stage, outcome, time.monotonic() - started)
        return verdict


def refusal_text(verdict: Verdict, refused: int = 0, count: int = 0) -> Text:
    """What the member reads: the model's reason (for the prompt, or for `refused` of `count` results), or that
    the check could not be made and the server refuses what it cannot check."""
    charged = Text(words.NOTHING_CHARGED)
    if verdict.unchecked:
        return Text(words.SCREENING_UNCHECKED, charged=charged)
    if refused:
        return Text(words.SCREENING_REFUSED_RESULTS, refused=refused, count=count, reason=verdict.reason)
    return Text(words.SCREENING_REFUSED_PROMPT, reason=verdict.reason, charged=charged)


def rules_of(settings: GuildSettings) -> ScreeningRules:
    """A server's screening rules, from its settings (an unknown stored mode reads as off)."""
    mode: Mode = next((known for known in MODES if known == settings.screening_mode), "off")
    return ScreeningRules(mode, settings.screening_policy, settings.screening_fail_open)
