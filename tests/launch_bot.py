"""`python bot.py …` pointed at the loopback Discord emulator: for tests only, never for operators.

discord.py's API base and gateway are fixed to discord.com; the emulator's are in
RETOUCH_TEST_DISCORD_REST and RETOUCH_TEST_DISCORD_GATEWAY; RETOUCH_TEST_DATABASE_BACKOFF shortens the
database's retry waits. Everything else is the real CLI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import discord.gateway
import discord.http
import yarl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot

discord.http.Route.BASE = os.environ["RETOUCH_TEST_DISCORD_REST"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["RETOUCH_TEST_DISCORD_GATEWAY"])
# The wait between tries to reach the database: shorter, so that giving up fits a test.
bot.DATABASE_BACKOFF_SECONDS = float(os.environ.get("RETOUCH_TEST_DATABASE_BACKOFF", bot.DATABASE_BACKOFF_SECONDS))
sys.argv[0] = "bot.py"
sys.exit(bot.cli())
