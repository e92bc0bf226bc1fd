"""A token wrapped in `Secret` shows only stars wherever it is printed, and compares by its value."""

from __future__ import annotations

import logging

import pytest

from services.outside.secret import Secret

TOKEN = "discord-token-value"
STARS = "Secret('********')"


def test_the_token_shows_only_stars_in_a_repr_a_string_and_a_log_line(caplog: pytest.LogCaptureFixture):
    secret = Secret(TOKEN)
    assert repr(secret) == str(secret) == f"{secret}" == STARS
    assert repr({"token": secret}) == f"{{'token': {STARS}}}"
    with caplog.at_level(logging.INFO):
        logging.getLogger("retouch.test").info("connecting with %s (%r)", secret, secret)
    assert caplog.messages == [f"connecting with {STARS} ({STARS})"]
    assert secret.reveal() == TOKEN


def test_secrets_are_equal_when_their_values_are_and_never_equal_a_plain_string():
    assert Secret(TOKEN) == Secret(TOKEN)
    assert Secret(TOKEN) != Secret("another-token")
    assert Secret(TOKEN) != TOKEN
    # Equal secrets are one key: a set of the configured tokens holds each once.
    assert {Secret(TOKEN), Secret(TOKEN), Secret("another-token")} == {Secret(TOKEN), Secret("another-token")}
    assert hash(Secret(TOKEN)) == hash(Secret(TOKEN))


def test_a_secret_holds_no_other_attribute():
    # `__slots__`: nothing can be attached that a traceback's locals would then show.
    with pytest.raises(AttributeError):
        Secret(TOKEN).note = TOKEN  # type: ignore[attr-defined]
