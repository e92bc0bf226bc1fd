"""`python bot.py check|run|sync` as an operator runs them: the real CLI in a subprocess, against the emulators."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

import bot as bot_module
from emulators.discord import DiscordEmulator
from emulators.modelhub import EDIT_MODEL, ModelHubEmulator
from services.outside.logs import url_password
from tests.helpers import until
from tests.ports import free_port

LAUNCHER = Path(__file__).resolve().parents[1].joinpath("launch_bot.py")
# View Channel, Send Messages, Embed Links, Attach Files, Read Message History, Send Messages in Threads.
PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 38)


@pytest.fixture
async def emulators():
    async with DiscordEmulator() as discord, ModelHubEmulator() as hub:
        yield discord, hub


def environment(discord: DiscordEmulator, hub: ModelHubEmulator, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "IONOS_", "LOG_", "SHARD_"))}
    env.update(
        DISCORD_TOKEN=discord.token,
        IONOS_API_TOKEN=hub.token,
        MODEL_HUB_URL=hub.base_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'retouch.db'}",
        EDIT_MODELS=EDIT_MODEL,
        DEFAULT_MODEL=EDIT_MODEL,
        HTTP_PORT="0",
        RETOUCH_TEST_DISCORD_REST=discord.rest_base,
        RETOUCH_TEST_DISCORD_GATEWAY=discord.gateway_url,
    )
    env.update(overrides)
    return env


async def run_cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(LAUNCHER),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_check_passes_against_a_good_configuration_and_prints_the_invite(emulators, tmp_path):
    discord, hub = emulators
    code, out, err = await run_cli(environment(discord, hub, tmp_path), tmp_path, "check")
    app = discord.application_id
    assert out.splitlines() == [
        "ok    configuration: every variable read and valid",
        "ok    database: sqlite opened and migrated (schema version "
        + out.split("schema version ")[1].split(")")[0]
        + ")",
        f"ok    Discord: DISCORD_TOKEN logs in as Retouch ({app})",
        f"      invite: https://discord.com/oauth2/authorize?client_id={app}&scope=bot+applications.commands"
        f"&permissions={PERMISSIONS}",
        f"      user install: https://discord.com/oauth2/authorize?client_id={app}&integration_type=1"
        "&scope=applications.commands",
        f"ok    Model Hub: IONOS_API_TOKEN lists {len(hub.models)} models at {hub.base_url}",
        f"ok    models: DEFAULT_MODEL and EDIT_MODELS ({EDIT_MODEL}) are listed",
    ]
    assert (code, err) == (0, "")
    assert (tmp_path / "retouch.db").exists()


@pytest.mark.parametrize(
    ("overrides", "failing_line"),
    [
        (
            {"DISCORD_TOKEN": "wrong-discord-token"},
            "FAIL  Discord: DISCORD_TOKEN was refused (HTTP 401); set it to the bot token",
        ),
        (
            {"IONOS_API_TOKEN": "wrong-ionos-token"},
            "FAIL  Model Hub: IONOS_API_TOKEN was refused; set it to an AI Model Hub token",
        ),
        (
            {"EDIT_MODELS": f"{EDIT_MODEL},acme/not-there"},
            "FAIL  models: EDIT_MODELS names models the Model Hub does not list: acme/not-there",
        ),
        (
            {"DEFAULT_MODEL": "acme/not-there"},
            "FAIL  models: DEFAULT_MODEL acme/not-there is not listed by the Model Hub",
        ),
        (
            {"DATABASE_URL": "postgresql://retouch:db-secret-pw@127.0.0.1:1/retouch"},
            "FAIL  database: could not open DATABASE_URL:",
        ),
    ],
)
async def test_check_fails_naming_the_variable_to_fix(emulators, tmp_path, overrides, failing_line):
    discord, hub = emulators
    code, out, err = await run_cli(environment(discord, hub, tmp_path, **overrides), tmp_path, "check")
    assert code == 1
    [failed] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failed.startswith(failing_line)
    for secret in ("wrong-discord-token", "wrong-ionos-token", "db-secret-pw"):
        assert secret not in out + err


async def test_check_with_a_bad_variable_fails_on_the_configuration_line(emulators, tmp_path):
    discord, hub = emulators
    code, out, err = await run_cli(environment(discord, hub, tmp_path, HTTP_PORT="eighty"), tmp_path, "check")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "FAIL  configuration: HTTP_PORT must be a port number from 0 (off) to 65535; got 'eighty'."
    ]


async def test_check_names_every_bad_variable_one_line_each(emulators, tmp_path):
    discord, hub = emulators
    env = environment(discord, hub, tmp_path, HTTP_PORT="eighty", MAX_INPUT_BYTES="1023")
    code, out, err = await run_cli(env, tmp_path, "check")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "FAIL  configuration: MAX_INPUT_BYTES must be a whole number of bytes from 1024 to 104857600 (100 MiB); "
        "got '1023'.",
        "FAIL  configuration: HTTP_PORT must be a port number from 0 (off) to 65535; got 'eighty'.",
    ]


async def start_cli(env: dict[str, str], cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(LAUNCHER),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_until(process: asyncio.subprocess.Process, condition) -> tuple[int, str]:
    """Let the bot run until `condition()` holds, then stop it as docker stop does; its exit code and logs."""
    try:
        await until(lambda: condition() or process.returncode is not None, 60, "the bot to get there")
        assert process.returncode is None, "the bot exited early"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, stderr.decode()


async def test_run_logs_json_lines_without_secrets_and_sync_forces_the_global_sync(emulators, tmp_path):
    discord, hub = emulators
    env = environment(discord, hub, tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    process = await asyncio.wait_for(start_cli(env, tmp_path, "run"), 10)
    code, logs = await run_until(process, lambda: discord.identify_count == 1)
    assert code == 0, logs[-3000:]
    assert discord.global_sync_count == 1
    entries = [json.loads(line) for line in logs.splitlines()]
    assert entries and all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any(
        e["logger"] == "retouch" and e["message"] == f"Synced {len(discord.commands)} commands globally"
        for e in entries
    )
    assert discord.token not in logs and hub.token not in logs
    # Where the data is, said once; nothing about voice, which the bot does not use.
    assert [e["message"] for e in entries if e["message"].startswith("Database: ")] == [
        f"Database: the SQLite file {tmp_path / 'retouch.db'}"
    ]
    assert not [e for e in entries if "voice" in e["message"]]
    # discord.py's own DEBUG traffic stays quiet unless asked for by name.
    assert not any(e["logger"] in ("discord.http", "discord.gateway") and e["level"] == "DEBUG" for e in entries)

    # The command set is unchanged: `run` skips the global sync; `sync` and `--sync` force it.
    for runs, args in enumerate((("run",), ("sync",), ("--sync",)), start=2):
        process = await asyncio.wait_for(start_cli(env, tmp_path, *args), 10)
        code, logs = await run_until(process, lambda n=runs: discord.identify_count == n)
        assert code == 0, logs[-3000:]
    assert discord.global_sync_count == 3  # the first run, then `sync` and `--sync`


async def test_check_opens_and_migrates_postgresql(emulators, tmp_path, postgres_url):
    discord, hub = emulators
    code, out, _ = await run_cli(environment(discord, hub, tmp_path, DATABASE_URL=postgres_url), tmp_path, "check")
    assert code == 0
    assert out.splitlines()[1].startswith("ok    database: postgresql opened and migrated (schema version ")
    password = url_password(postgres_url)
    assert not password or password not in out


def logged(line: str) -> tuple[str, str]:
    """A text log line's level and message, without its time and logger."""
    match = re.fullmatch(r"\[[^]]+\] \[(\w+) *\] [\w.]+: (.*)", line)
    assert match, line
    return match[1], match[2]


async def test_a_busy_http_port_is_one_line_naming_it(emulators, tmp_path):
    discord, hub = emulators
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, _, err = await run_cli(environment(discord, hub, tmp_path, HTTP_PORT=str(port)), tmp_path, "run")
    assert code == 2
    assert logged(err.splitlines()[-1]) == (
        "ERROR",
        f"Configuration error: HTTP_PORT: cannot listen on 127.0.0.1:{port} (address already in use); "
        "choose another port, or 0 for none.",
    )
    assert "Traceback" not in err


async def test_an_http_host_not_of_this_machine_is_one_line_naming_it(emulators, tmp_path):
    discord, hub = emulators
    port = free_port()
    env = environment(discord, hub, tmp_path, HTTP_HOST="192.0.2.1", HTTP_PORT=str(port))  # TEST-NET-1
    code, _, err = await run_cli(env, tmp_path, "run")
    assert code == 2
    assert logged(err.splitlines()[-1]) == (
        "ERROR",
        f"Configuration error: HTTP_HOST: cannot listen on 192.0.2.1:{port} (cannot assign requested address); "
        "set it to an address of this host, such as 127.0.0.1 (this host only) or 0.0.0.0 (every interface).",
    )
    assert "Traceback" not in err


async def test_a_dev_guild_the_bot_is_not_in_is_one_line_naming_it(emulators, tmp_path):
    discord, hub = emulators
    elsewhere = discord.add_guild(name="elsewhere", with_bot=False)  # Discord: 403 Missing Access on its commands
    env = environment(discord, hub, tmp_path, DEV_GUILD_ID=str(elsewhere.id))
    code, _, err = await run_cli(env, tmp_path, "run")
    assert code == 2
    assert logged(err.splitlines()[-1]) == (
        "ERROR",
        f"Configuration error: DEV_GUILD_ID: Discord refused to sync the commands to server {elsewhere.id} "
        "(HTTP 403: Missing Access); invite the bot there with the applications.commands scope "
        "(see `python bot.py check`), or unset DEV_GUILD_ID.",
    )
    assert "Traceback" not in err


async def test_check_tests_that_the_bot_may_sync_to_the_dev_guild(emulators, tmp_path):
    discord, hub = emulators
    elsewhere = discord.add_guild(name="elsewhere", with_bot=False)
    code, out, _ = await run_cli(environment(discord, hub, tmp_path, DEV_GUILD_ID=str(elsewhere.id)), tmp_path, "check")
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [
        f"FAIL  DEV_GUILD_ID: Discord refused the commands of server {elsewhere.id} (HTTP 403): the bot is not in "
        "it or lacks the applications.commands scope; invite it there with the URL above, or unset DEV_GUILD_ID"
    ]
    env = environment(discord, hub, tmp_path, DEV_GUILD_ID=str(discord.guild_id))
    code, out, _ = await run_cli(env, tmp_path, "check")
    assert code == 0
    assert f"ok    DEV_GUILD_ID: the commands can be synced to server {discord.guild_id}" in out.splitlines()


async def guild_commands(discord: DiscordEmulator, guild_id: int) -> list[dict]:
    """What Discord lists as the application's commands in one server, asked as the bot asks."""
    url = f"{discord.rest_base}/applications/{discord.application_id}/guilds/{guild_id}/commands"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bot {discord.token}"}) as response,
    ):
        assert response.status == 200
        return await response.json()


async def test_going_global_clears_the_dev_servers_copies(emulators, tmp_path):
    discord, hub = emulators
    env = environment(discord, hub, tmp_path, DEV_GUILD_ID=str(discord.guild_id))
    process = await asyncio.wait_for(start_cli(env, tmp_path, "sync"), 10)
    code, logs = await run_until(process, lambda: discord.identify_count == 1)
    assert code == 0, logs[-3000:]
    assert len(await guild_commands(discord, discord.guild_id)) == len(discord.commands) > 0
    assert discord.global_sync_count == 0  # `sync` with DEV_GUILD_ID set syncs to that server, and says so
    assert "DEV_GUILD_ID is set: the commands go to that server only; unset it to sync globally" in logs

    env.pop("DEV_GUILD_ID")
    process = await asyncio.wait_for(start_cli(env, tmp_path, "run"), 10)
    code, logs = await run_until(process, lambda: discord.identify_count == 2)
    assert code == 0, logs[-3000:]
    assert await guild_commands(discord, discord.guild_id) == []  # each command shows once, from the global set
    assert discord.global_sync_count == 1
    assert f"Cleared the commands of the former development server {discord.guild_id}" in logs


async def test_a_refused_ionos_token_is_logged_at_start_up_and_readyz_says_so(emulators, tmp_path):
    discord, hub = emulators
    port = free_port()
    env = environment(discord, hub, tmp_path, IONOS_API_TOKEN="wrong-ionos-token", HTTP_PORT=str(port))
    process = await asyncio.wait_for(start_cli(env, tmp_path, "run"), 10)
    answers: list[tuple[int, dict]] = []

    async def readyz() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/readyz") as r:
                answers.append((r.status, await r.json()))
        except aiohttp.ClientConnectionError:
            return False
        return discord.identify_count == 1 and "gateway" not in answers[-1][1].get("reasons", {"gateway": 1})

    code, logs = await run_until(process, readyz)
    assert code == 0, logs[-3000:]
    assert answers[-1] == (
        503,
        {"status": "not ready", "reasons": {"model_hub": "IONOS_API_TOKEN was refused by the Model Hub"}},
    )
    errors = [logged(line) for line in logs.splitlines() if "[ERROR" in line]
    assert errors == [
        ("ERROR", "IONOS_API_TOKEN was refused by the Model Hub: every edit will fail until it is replaced")
    ]
    assert "wrong-ionos-token" not in logs


async def test_a_postgresql_refusing_connections_is_retried_then_one_json_line_naming_it(emulators, tmp_path):
    discord, hub = emulators
    port = free_port()  # nothing listens there
    url = f"postgresql://retouch:db-secret-pw@127.0.0.1:{port}/retouch"
    env = environment(discord, hub, tmp_path, DATABASE_URL=url, LOG_FORMAT="json", RETOUCH_TEST_DATABASE_BACKOFF="0.01")
    code, _, err = await run_cli(env, tmp_path, "run")
    assert code == 1
    entries = [json.loads(line) for line in err.splitlines()]  # every line JSON: no traceback printed past the logs
    retries = [e["message"] for e in entries if e["level"] == "WARNING"]
    assert len(retries) == bot_module.DATABASE_TRIES - 1
    assert retries[0] == (
        f"Cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused); retrying in 0 s (try 1 of 10)"
    )
    assert entries[-1]["level"] == "ERROR" and "exception" not in entries[-1]
    assert entries[-1]["message"] == (
        f"Start-up error: DATABASE_URL: cannot open PostgreSQL at 127.0.0.1:{port} (connection refused)"
    )
    assert "db-secret-pw" not in err


async def test_an_unwritable_sqlite_path_is_one_line_naming_it(emulators, tmp_path):
    discord, hub = emulators
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path / "a-file" / "retouch.db"
    code, _, err = await run_cli(environment(discord, hub, tmp_path, DATABASE_URL=f"sqlite:///{path}"), tmp_path, "run")
    assert code == 1
    assert logged(err.splitlines()[-1]) == (
        "ERROR",
        # mkdir's own words: a file stands where its folder should be
        f"Start-up error: DATABASE_URL: cannot open the SQLite file {path} (file exists)",
    )
    assert "Traceback" not in err


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def test_a_postgresql_starting_after_the_bot_is_waited_for(emulators, tmp_path, postgres_url):
    """The stack starting together: the bot's first tries are refused, then the database listens."""
    discord, hub = emulators
    target = postgres_url.split("@", 1)[1].split("/", 1)[0]
    target_host, target_port = target.rsplit(":", 1)
    port = free_port()
    env = environment(
        discord,
        hub,
        tmp_path,
        DATABASE_URL=postgres_url.replace(target, f"127.0.0.1:{port}"),
        RETOUCH_TEST_DATABASE_BACKOFF="0.2",
    )
    process = await asyncio.wait_for(start_cli(env, tmp_path, "run"), 10)
    assert process.stderr is not None
    first = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
    assert logged(first.strip()) == (
        "WARNING",
        f"Cannot connect to PostgreSQL at 127.0.0.1:{port} (connection refused); retrying in 0 s (try 1 of 10)",
    )

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(target_host, int(target_port))
        await asyncio.gather(forward(reader, upstream_writer), forward(upstream_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port)  # the database is up now
    try:
        code, logs = await run_until(process, lambda: discord.identify_count == 1)
    finally:
        server.close()
    assert code == 0, logs[-3000:]
    assert f"Database: PostgreSQL at 127.0.0.1:{port}" in logs


async def test_a_second_process_on_one_sqlite_file_is_refused_with_one_line(emulators, tmp_path):
    # It would take the first one's live reservations for a crashed run's and return them at start-up.
    discord, hub = emulators
    env = environment(discord, hub, tmp_path)
    first = await asyncio.wait_for(start_cli(env, tmp_path, "run"), 10)
    try:
        await until(lambda: discord.identify_count == 1 or first.returncode is not None, 60, "the first to log in")
        assert first.returncode is None
        code, _, err = await run_cli(env, tmp_path, "run")
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 30)
    assert first.returncode == 0
    assert code == 1 and "Traceback" not in err
    assert logged(err.splitlines()[-1]) == (
        "ERROR",
        f"Start-up error: DATABASE_URL: another Retouch process is running on {tmp_path / 'retouch.db'};"
        " a SQLite file serves one process (stop the other first; several processes, and rolling restarts,"
        " need PostgreSQL)",
    )
    assert discord.identify_count == 1  # the second never reached Discord
    # Once the first has stopped, the file is free again.
    process = await asyncio.wait_for(start_cli(env, tmp_path, "run"), 10)
    code, logs = await run_until(process, lambda: discord.identify_count == 2)
    assert code == 0, logs[-3000:]
