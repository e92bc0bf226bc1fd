"""Many processes on one PostgreSQL behave as one bot: real `python bot.py run` processes, one Discord emulator
speaking sharding, one Model Hub emulator enforcing the contract's image rate.

Measured figures are printed (run with `-s` to read them); nothing here asserts speed beyond a loose bound
on how soon a killed process's reservations come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from emulators.discord import DiscordEmulator, Guild, shard_of
from emulators.modelhub import EDIT_MODEL, Fault, ModelHubEmulator
from services.storage.database import Database, open_database
from services.storage.quota import Period, QuotaStore, parse_quota
from tests.helpers import CuttableProxy, liveness_backends, told, until
from tests.images import png_bytes
from tests.ports import free_port

LAUNCHER = Path(__file__).resolve().parents[1].joinpath("launch_bot.py")
SHARDS = 2
# The contract's image rate (and its 5 requests/s), which the Model Hub emulator enforces with 429s.
IMAGES_PER_MINUTE, IMAGE_BURST = 60, 3
START_TIMEOUT = 60  # three Python processes importing discord.py and Pillow on a loaded 2-CPU machine
EDIT_TIMEOUT = 45
RETURN_BOUND = 20  # loose: the sweep runs every 10 s
DONE = "Done: 1 picture posted below"
REFUSED = ("images left this day",)  # the member's and the server budget's refusals both end so


@dataclass
class BotProcess:
    """One `python bot.py run`, its stderr in a file (a pipe nobody reads would stall it)."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def ready(process: BotProcess) -> bool:
    """/readyz: every shard the process owns is connected and the database answers."""
    assert process.process.returncode is None, f"{process.name} exited early:\n{process.log()}"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{process.port}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as answer,
        ):
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


class Fleet:
    """The bot processes of a test, all on one PostgreSQL, stopped (SIGTERM) at the end."""

    def __init__(self, discord: DiscordEmulator, hub: ModelHubEmulator, database_url: str, tmp_path: Path) -> None:
        self.discord, self.hub, self.database_url, self.tmp_path = discord, hub, database_url, tmp_path
        self.processes: list[BotProcess] = []

    async def start(self, name: str, shard_ids: str) -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "IONOS_", "LOG_", "SHARD_"))}
        port = free_port()
        env.update(
            DISCORD_TOKEN=self.discord.token,
            IONOS_API_TOKEN=self.hub.token,
            MODEL_HUB_URL=self.hub.base_url,
            DATABASE_URL=self.database_url,
            EDIT_MODELS=EDIT_MODEL,
            DEFAULT_MODEL=EDIT_MODEL,
            DEFAULT_QUOTA="1000/day",
            UPSTREAM_IMAGES_PER_MINUTE=f"{IMAGES_PER_MINUTE}/{IMAGE_BURST}",
            UPSTREAM_BACKOFF_SECONDS="0.05",
            SHARD_COUNT=str(SHARDS),
            SHARD_IDS=shard_ids,
            HTTP_PORT=str(port),
            RETOUCH_TEST_DISCORD_REST=self.discord.rest_base,
            RETOUCH_TEST_DISCORD_GATEWAY=self.discord.gateway_url,
        )
        log_path = self.tmp_path / f"{name}.log"
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(LAUNCHER),
                "run",
                cwd=self.tmp_path,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log_file,
            )
        started = BotProcess(name, process, log_path, port)
        self.processes.append(started)
        return started

    async def wait_ready(self, *processes: BotProcess) -> None:
        for process in processes:
            try:
                await until(lambda p=process: ready(p), START_TIMEOUT, f"{process.name} becoming ready")
            except AssertionError as exc:
                raise AssertionError(f"{exc}:\n{process.log()}") from None
        await until(lambda: "edit" in self.discord.commands, START_TIMEOUT, "the command sync")

    async def stop(self) -> None:
        for process in self.processes:
            if process.process.returncode is None:
                process.process.send_signal(signal.SIGCONT)  # a test that failed may have left it frozen
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.process.wait(), 30)
            except TimeoutError:
                process.process.kill()
                await process.process.wait()


@contextlib.asynccontextmanager
async def fleet(
    postgres_url: str, tmp_path: Path, *, bots_url: str | None = None
) -> AsyncIterator[tuple[Fleet, Database]]:
    """The emulators, the test's own connection to `postgres_url`, and bots reaching it at `bots_url` (a proxy)."""
    # A generous acknowledgement window: three processes share two loaded CPUs; speed is not what is tested.
    async with (
        DiscordEmulator(response_deadline=15) as discord,
        ModelHubEmulator(
            images_per_minute=IMAGES_PER_MINUTE, image_burst=IMAGE_BURST, requests_per_second=5, request_burst=10
        ) as hub,
        open_database(postgres_url) as db,
    ):
        bots = Fleet(discord, hub, bots_url or postgres_url, tmp_path)
        try:
            yield bots, db
        finally:
            await bots.stop()


def guild_on_other_shard(discord: DiscordEmulator) -> Guild:
    # Snowflakes grow with time, so a few more guilds are enough to land one on the other shard.
    home = shard_of(discord.guild_id, SHARDS)
    return next(g for g in (discord.add_guild() for _ in range(64)) if shard_of(g.id, SHARDS) != home)


async def edit(discord: DiscordEmulator, user: dict, channel_id: int):
    image = discord.add_attachment(png_bytes(64, 64), "photo.png", "image/png", width=64, height=64)
    return await discord.slash(
        "edit", {"image": image, "prompt": "invert it", "size": "64x64"}, user=user, channel_id=channel_id
    )


async def outcome(record) -> str:
    """ "done" or "refused", once the member has been told either."""
    await record.wait_for(lambda r: any(DONE in t or any(w in t for w in REFUSED) for t in r.texts()), EDIT_TIMEOUT)
    return "done" if any(DONE in t for t in record.texts()) else "refused"


async def images_used(db: Database, guild_id: int, user_id: int | None = None) -> int:
    """What counts against the member (or the whole server): settled and pending images."""
    where, args = (
        ("guild_id = ?", [guild_id]) if user_id is None else ("guild_id = ? AND user_id = ?", [guild_id, user_id])
    )
    return int(await db.fetch_value(f"SELECT COALESCE(SUM(images), 0) FROM quota_usage WHERE {where}", *args))


async def nothing_used(db: Database, guild_id: int, user_id: int) -> bool:
    return await images_used(db, guild_id, user_id) == 0


async def test_two_processes_one_shard_each_share_quotas_budget_and_pacer_and_return_a_killed_ones_reservations(
    postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path) as (bots, db):
        discord, hub = bots.discord, bots.hub
        home, away = discord.guild(), guild_on_other_shard(discord)
        away_channel = discord.add_channel("general", guild_id=away.id)
        away_members = [discord.add_member(name=f"away-{n}", guild_id=away.id) for n in range(4)]
        quota = QuotaStore(db, parse_quota("1000/day"))
        await quota.set_default(home.id, 2, Period.DAY)  # the home member asks for 3 images
        await quota.set_budget(away.id, 3, Period.DAY)  # four away members ask for one each
        shard_home = shard_of(home.id, SHARDS)
        first = await bots.start("home", str(shard_home))
        second = await bots.start("away", str(1 - shard_home))
        await bots.wait_ready(first, second)

        started = time.monotonic()
        records = await asyncio.gather(
            *(edit(discord, discord.member, discord.channel_id) for _ in range(3)),
            edit(discord, discord.other_member, discord.channel_id),
            *(edit(discord, member, away_channel) for member in away_members),
        )
        outcomes = await asyncio.gather(*(outcome(r) for r in records))
        elapsed = time.monotonic() - started
        assert sorted(outcomes[:3]) == ["done", "done", "refused"]  # the member's 2 a day, exactly
        assert outcomes[3] == "done"
        assert sorted(outcomes[4:]) == ["done", "done", "done", "refused"]  # the server's 3 a day, exactly
        assert await images_used(db, home.id, int(discord.member["id"])) == 2
        assert await images_used(db, away.id) == 3
        # Each process answered only its own shard's guilds.
        sessions = {s.shard_id: s for s in discord.sessions.values()}
        assert {int(i["guild_id"]) for i in _interactions(sessions[shard_home])} == {home.id}
        assert {int(i["guild_id"]) for i in _interactions(sessions[1 - shard_home])} == {away.id}
        # Six images through one shared pacer at the contract's rate: not one 429.
        assert [r.status for r in hub.requests] == [200] * 6
        assert hub.rate_limited_count == 0
        print(f"\n6 images in {elapsed:.1f} s across two processes at {IMAGES_PER_MINUTE}/min (burst {IMAGE_BURST})")

        # The home process is killed mid-edit: the away process returns what it had reserved.
        hub.inject(Fault(delay=EDIT_TIMEOUT))
        member = discord.add_member(name="caught-mid-edit", guild_id=home.id)
        await edit(discord, member, discord.channel_id)
        await until(lambda: len(hub.requests) == 7, EDIT_TIMEOUT, "the edit to reach the Model Hub")
        assert await images_used(db, home.id, int(member["id"])) == 1
        first.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await until(lambda: nothing_used(db, home.id, int(member["id"])), RETURN_BOUND, "its return")
        returned = time.monotonic() - killed
        released = "Released 1 reservation(s) left pending by stopped processes"
        await until(lambda: released in second.log(), 10, "the away process to say it returned the reservation")
        status = await db.fetch_value("SELECT status FROM quota_usage WHERE user_id = ?", int(member["id"]))
        assert status == "swept"
        print(f"a SIGKILLed process's reservation returned by the other after {returned:.1f} s")


async def no_claims(db: Database) -> bool:
    return not await db.fetch_value("SELECT COUNT(*) FROM claims")


def refused_callbacks(discord: DiscordEmulator, record) -> list:
    path = f"/interactions/{record.id}/{record.token}/callback"
    return [call for call in discord.calls if call.path == path and call.status == 400]


def _interactions(session) -> list[dict]:
    return [frame["d"] for frame in session.dispatched if frame["t"] == "INTERACTION_CREATE"]


async def test_a_double_click_while_old_and_new_process_share_a_shard_is_charged_once(postgres_url, tmp_path):
    async with fleet(postgres_url, tmp_path) as (bots, db):
        discord, hub = bots.discord, bots.hub
        shard = str(shard_of(discord.guild_id, SHARDS))
        # A rolling restart: the new process is up before the old one stops, both on the same shard, and
        # Discord sends every interaction to both (the first to acknowledge it wins, the other gets 40060).
        old = await bots.start("old", shard)
        new = await bots.start("new", shard)
        await bots.wait_ready(old, new)
        user_id = int(discord.member["id"])

        record = await edit(discord, discord.member, discord.channel_id)
        await told(record, DONE, timeout=EDIT_TIMEOUT)
        [result] = [m for m in record.followups if m.get("components")]
        [reroll] = [
            c["custom_id"] for row in result["components"] for c in row["components"] if c.get("label") == "Reroll"
        ]
        assert len(hub.requests) == 1

        # The first click reaches the old process first, the second the new one: each process, frozen in
        # turn (SIGSTOP), lets the other acknowledge. The old one's Reroll is still running meanwhile.
        hub.inject(Fault(delay=5))
        new.process.send_signal(signal.SIGSTOP)
        first = await discord.click(result, reroll)
        await until(lambda: len(hub.requests) == 2, EDIT_TIMEOUT, "the first Reroll to reach the Model Hub")
        old.process.send_signal(signal.SIGSTOP)
        new.process.send_signal(signal.SIGCONT)
        # The new process catches up on the first click, and Discord refuses it the answer (40060) and the apology.
        await until(lambda: len(refused_callbacks(discord, first)) == 2, EDIT_TIMEOUT, "the first click's 40060s")
        second = await discord.click(result, reroll)
        assert "Already working on that one" in await told(second, "This click was not charged.", EDIT_TIMEOUT)
        old.process.send_signal(signal.SIGCONT)
        await told(first, DONE, timeout=EDIT_TIMEOUT)
        assert len(hub.requests) == 2  # one Reroll upstream, not two
        assert await images_used(db, discord.guild_id, user_id) == 2  # the edit and one Reroll
        # Released as the Reroll ends, just after the member is told it is done.
        await until(lambda: no_claims(db), EDIT_TIMEOUT, "the Reroll's claim to be released")


# --- faults an operator meets: the database restarted, a liveness session killed, the database away for 30 s

SERVER_USER = os.environ.get("RETOUCH_CI_USER", "retouchci")  # as .ci/postgres.sh: the server never runs as root
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
IN_FLIGHT_DELAY = 15  # upstream across the fault, past the 9 s another process gives a lost liveness lock
OUTAGE_SECONDS = 30
FAULT_TIMEOUT = 120  # an edit caught by the outage settles once the database is back
HOME_LIMIT, AWAY_BUDGET = 2, 5
DATABASE_AWAY = "Retouch cannot reach its database just now. Nothing was charged; try again in a minute."
ENDINGS = (DONE, *REFUSED, DATABASE_AWAY, "Something went wrong inside Retouch", "then something went wrong")


async def ending(record) -> str:
    """ "done", "refused", "database away" or "failed" (an apology), once the member has been told any of them."""
    await record.wait_for(lambda r: any(e in t for t in r.texts() for e in ENDINGS), FAULT_TIMEOUT)
    texts = record.texts()
    if any(DONE in t for t in texts):
        return "done"
    if any(DATABASE_AWAY in t for t in texts):
        return "database away"
    return "refused" if any(w in t for t in texts for w in REFUSED) else "failed"


def pictures_posted(record) -> int:
    return sum(len(message.get("attachments") or []) for message in record.followups)


async def restart_postgres() -> None:
    """`pg_ctl restart` on the test server (.ci/postgres.sh's), as the server's user when run as root."""
    directory = os.environ.get("RETOUCH_TEST_POSTGRES_DIR")
    if not directory:
        assert os.environ.get("CI") != "true", "RETOUCH_TEST_POSTGRES_DIR is not set on CI"
        pytest.skip('RETOUCH_TEST_POSTGRES_DIR is not set; start the server with: eval "$(bash .ci/postgres.sh)"')
    command = [str(PG_BIN / "pg_ctl"), "-D", f"{directory}/data", "-l", f"{directory}/server.log", "-m", "fast"]
    command += ["-w", "-t", "60", "restart"]
    if os.getuid() == 0:
        command = ["runuser", "-u", SERVER_USER, "--", *command]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, f"pg_ctl restart failed: {output.decode(errors='replace')}"


async def pending_instances(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT DISTINCT instance_id FROM quota_usage WHERE status = 'pending'")
    return [row[0] for row in rows]


async def terminate_liveness(db: Database) -> None:
    """pg_terminate_backend on the liveness session (the one holding its instance lock) of a process with an edit
    in flight."""
    [instance, *_] = await pending_instances(db)
    [pid] = await liveness_backends(db, instance)
    terminated = await db.fetch_all("SELECT pg_terminate_backend(?)", pid)
    assert [row[0] for row in terminated] == [True]


@pytest.mark.parametrize("fault", ["postgres restart", "liveness terminated", "database away 30 s"])
async def test_two_processes_keep_quotas_exact_through_a_database_fault_and_serve_again(
    postgres_url, tmp_path, fault, record_property
):
    """Figures in the run's summary: edits served during the fault, reservations lost, over-grants, time to recover."""
    parts = urlsplit(postgres_url)
    async with CuttableProxy(parts.port or 5432) as proxy:
        bots_url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        async with fleet(postgres_url, tmp_path, bots_url=bots_url) as (bots, db):
            record_property("figures", await _serve_through(bots, db, proxy, fault))


async def _serve_through(bots: Fleet, db: Database, proxy: CuttableProxy, fault: str) -> str:
    discord, hub = bots.discord, bots.hub
    home, away = discord.guild(), guild_on_other_shard(discord)
    away_channel = discord.add_channel("general", guild_id=away.id)
    channels = {home.id: discord.channel_id, away.id: away_channel}
    quota = QuotaStore(db, parse_quota("1000/day"))
    await quota.set_default(home.id, HOME_LIMIT, Period.DAY)
    await quota.set_budget(away.id, AWAY_BUDGET, Period.DAY)
    shard_home = shard_of(home.id, SHARDS)
    first = await bots.start("home", str(shard_home))
    second = await bots.start("away", str(1 - shard_home))
    await bots.wait_ready(first, second)

    def member(name: str, guild: Guild) -> dict:
        return discord.add_member(name=name, guild_id=guild.id)

    asked: list[tuple[Guild, dict, object]] = []

    async def ask(guild: Guild, who: dict) -> object:
        record = await edit(discord, who, channels[guild.id])
        asked.append((guild, who, record))
        return record

    # One edit per process upstream when the fault strikes, each holding a pending reservation.
    limited = member("limited", home)
    hub.inject(Fault(delay=IN_FLIGHT_DELAY), times=2)
    in_flight = [await ask(home, limited), await ask(away, member("away-0", away))]
    await until(lambda: len(hub.requests) == 2, EDIT_TIMEOUT, "both edits to reach the Model Hub")
    assert len(await pending_instances(db)) == 2

    # The fault, with members asking meanwhile: the limited member twice more (one fits), others once each.
    struck = time.monotonic()
    during = [(home, limited), (home, limited), (home, member("home-1", home))]
    during += [(away, member(f"away-{n}", away)) for n in (1, 2, 3)]
    if fault == "postgres restart":
        restarting = asyncio.create_task(restart_postgres())
        during_records = [await ask(guild, who) for guild, who in during]
        await restarting
    elif fault == "liveness terminated":
        await terminate_liveness(db)
        during_records = [await ask(guild, who) for guild, who in during]
    else:
        proxy.cut()
        during_records = [await ask(guild, who) for guild, who in during]
        # The outage itself lasts this long (a fixed span is what is being tested, not a wait for state).
        await asyncio.sleep(OUTAGE_SECONDS - (time.monotonic() - struck))
        proxy.restore()
    over = time.monotonic()
    fault_seconds = over - struck

    # Both processes serve again without a restart: a new member of each server gets a picture.
    recovering = [await ask(home, member("home-after", home)), await ask(away, member("away-after", away))]
    assert [await ending(r) for r in recovering] == ["done", "done"], "\n".join(first.log()[-3000:].splitlines())
    recovered = time.monotonic() - over
    endings = [await ending(record) for _, _, record in asked]  # every member told
    served_during = [await ending(r) for r in during_records].count("done")
    in_flight_done = [await ending(r) for r in in_flight].count("done")

    # Money: each member charged exactly what was posted to them, nothing pending, no limit exceeded.
    await until(lambda: pending_instances_none(db), 30, "every reservation to be settled or returned")
    posted: dict[tuple[int, int], int] = {}
    for guild, who, record in asked:
        key = (guild.id, int(who["id"]))
        posted[key] = posted.get(key, 0) + pictures_posted(record)
    lost = over_charged = 0
    for (guild_id, user_id), pictures in posted.items():
        charged = await images_used(db, guild_id, user_id)
        lost += max(0, pictures - charged)
        over_charged += max(0, charged - pictures)
    over_grants = sum(max(0, n - HOME_LIMIT) for (g, _), n in posted.items() if g == home.id)
    over_grants += max(0, sum(n for (g, _), n in posted.items() if g == away.id) - AWAY_BUDGET)
    figures = (
        f"{fault}: fault {fault_seconds:.1f} s; edits served during the fault {served_during} of {len(during)},"
        f" in flight across it {in_flight_done} of {len(in_flight)}; endings {sorted(endings)};"
        f" reservations lost {lost}; charged twice or unposted {over_charged}; over-grants {over_grants};"
        f" time to recover {recovered:.1f} s"
    )
    print(f"\n{figures}")
    assert (lost, over_charged, over_grants) == (0, 0, 0), figures
    return figures


async def pending_instances_none(db: Database) -> bool:
    return not await pending_instances(db)
