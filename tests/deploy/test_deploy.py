"""The stack files Docker would run (Docker is not available here): parsed and checked against the bot itself."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import bot as bot_module
from services.outside.config import load_config
from services.outside.metrics import Metrics
from services.outside.web import WebServer
from tests.helpers import read_variables
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/retouch.json").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def seconds(duration: str) -> float:
    value = re.fullmatch(r"(\d+)(s|m)", duration)
    assert value, duration
    return int(value[1]) * (60 if value[2] == "m" else 1)


def test_compose_runs_the_bot_on_a_healthy_postgres_15_with_a_named_volume():
    services = COMPOSE["services"]
    bot, postgres = services["bot"], services["postgres"]
    assert postgres["image"].startswith("postgres:15.")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert bot["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]  # named, so `docker compose down` keeps the data
    assert bot["environment"]["HTTP_HOST"] == "0.0.0.0"
    for name in ("bot", "postgres"):
        assert services[name]["restart"] == "unless-stopped"
    for name, service in services.items():
        assert service["logging"]["driver"] == "json-file", name
        assert {"max-size", "max-file"} <= set(service["logging"]["options"]), name
    # No secret is written into the file: each comes from the environment (.env) and is required.
    for key in ("DISCORD_TOKEN", "IONOS_API_TOKEN"):
        assert bot["environment"][key] == f"${{{key}:?set {key} in .env}}"


def test_compose_stop_grace_covers_the_shutdown_drain():
    bot = COMPOSE["services"]["bot"]
    assert bot["stop_signal"] == "SIGTERM"
    cancel_wait = 10  # JobQueue.drain waits this long for cancelled edits to refund
    assert seconds(bot["stop_grace_period"]) >= bot_module.SHUTDOWN_GRACE_SECONDS + cancel_wait + 5


def test_monitoring_profile_adds_prometheus_scraping_the_bot_and_a_provisioned_grafana():
    services = COMPOSE["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"] and services["grafana"]["profiles"] == ["monitoring"]
    assert "profiles" not in services["bot"] and "profiles" not in services["postgres"]
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    port = COMPOSE["services"]["bot"]["environment"]["HTTP_PORT"]
    assert job["static_configs"] == [{"targets": [f"bot:{port}"]}]
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    [datasource] = datasources["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/retouch.yml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == providers["providers"][0]["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def exported_sample_names() -> set[str]:
    """Every sample name the bot's registry renders (`_total`, `_bucket`, `_count`, …), gauges included."""
    metrics = Metrics()
    metrics.watch_gateway(lambda: [(0, 0.1)])
    text = generate_latest(metrics.registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_dashboard_query_names_a_metric_the_bot_exports():
    exported = exported_sample_names()
    queried = set()
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"\bretouch_[a-z_]+\b", target["expr"]))
            assert names, target["expr"]
            assert names <= exported, (panel["title"], names - exported)
            queried |= names
    # What issue 10 asks the dashboard to show.
    for needed in (
        "retouch_edits_total",
        "retouch_upstream_request_duration_seconds_bucket",
        "retouch_upstream_errors_total",
        "retouch_queue_waiting",
        "retouch_queue_wait_seconds_bucket",
        "retouch_images_delivered_total",
        "retouch_pacer_images_available",
    ):
        assert needed in queried


def test_dockerfile_is_multi_stage_non_root_and_stops_on_sigterm():
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) >= 2
    assert re.search(r"^USER retouch$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^STOPSIGNAL SIGTERM$", DOCKERFILE, re.MULTILINE)
    assert "HTTP_HOST=0.0.0.0" in DOCKERFILE


def test_the_image_is_built_on_an_exact_tag_from_the_hash_checked_lock():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+", base) for base in bases), bases
    assert re.search(r"^RUN pip wheel .*--require-hashes.* -r requirements\.txt$", DOCKERFILE, re.MULTILINE)
    assert "--no-index" in DOCKERFILE  # the final stage installs those wheels and nothing else


@pytest.mark.parametrize(("lock", "extras"), [("requirements.txt", ()), ("requirements-dev.txt", ("test", "dev"))])
def test_each_lock_pins_every_dependency_within_pyproject_with_hashes(lock: str, extras: tuple[str, ...]):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in extras for r in project["optional-dependencies"][extra]]
    text = (ROOT / lock).read_text()
    pins = {canonicalize_name(n): Version(v) for n, v in re.findall(r"^([\w.-]+)==([^\s;]+)", text, re.MULTILINE)}
    for requirement in wanted:
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{lock} does not pin {requirement.name}"
        assert requirement.specifier.contains(pinned, prereleases=True), f"{lock}: {pinned} is not {requirement}"
    # Every pin carries the hashes pip checks (a pin's hash lines follow it, up to the next pin).
    for entry in re.split(r"^(?=[\w.-]+==)", text, flags=re.MULTILINE)[1:]:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def healthcheck_command() -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", joined, re.MULTILINE)
    assert match
    return json.loads(match[1])


@pytest.mark.parametrize(("reason", "exit_code"), [(None, 0), ("not connected to Discord yet", 1)])
async def test_the_image_healthcheck_follows_readyz(reason, exit_code):
    port = free_port()

    async def gateway() -> str | None:
        return reason

    server = WebServer(Metrics(), {"gateway": gateway})
    await server.start("127.0.0.1", port)
    try:
        command = healthcheck_command()
        assert command[0] == "python"
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env={"HTTP_PORT": str(port)}, stderr=subprocess.DEVNULL
        )
        assert await asyncio.wait_for(process.wait(), 30) == exit_code, shlex.join(command)
    finally:
        await server.close()


# ----------------------------------------------------------------------------- the stack as a newcomer runs it

TOKENS = {"DISCORD_TOKEN": "x", "IONOS_API_TOKEN": "y"}
# What the stack sets itself rather than from .env: its own database, and the endpoint inside the container
# (the port published to the host and scraped by Prometheus).
STACK_OWN = {"DATABASE_URL", "PGPASSWORD", "HTTP_HOST", "HTTP_PORT", "PAINTER_HOST", "PAINTER_PORT"}


def interpolated(value: str) -> str | None:
    """The .env variable `${NAME…}` takes its value from, if the whole value is one such reference."""
    match = re.fullmatch(r"\$\{([A-Z_]+)(?::?[-?][^}]*)?\}", value)
    return match[1] if match else None


def test_compose_passes_every_variable_the_configuration_reads_from_env():
    environment = COMPOSE["services"]["bot"]["environment"]
    assert set(environment) == read_variables(dict(TOKENS))
    for name, value in environment.items():
        if name in STACK_OWN:
            continue
        assert interpolated(value) == name, (name, value)  # from .env, under its own name
        # Unset is empty, and empty means the bot's default (tokens excepted: required).
        if name not in TOKENS:
            assert value in (f"${{{name}:-}}", "${LOG_FORMAT:-json}"), (name, value)


def test_compose_needs_only_the_three_documented_secrets():
    """Compose interpolates every service, profiles or not: only what the README asks for may be required."""
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required == {"DISCORD_TOKEN", "IONOS_API_TOKEN", "POSTGRES_PASSWORD"}
    readme = (ROOT / "README.md").read_text()
    stack = readme.split("### The stack in one command", 1)[1].split("\n### ", 1)[0]
    assert "Put `DISCORD_TOKEN`, `IONOS_API_TOKEN` and `POSTGRES_PASSWORD` in `.env`" in stack
    # Grafana still refuses to start on its default password: its entrypoint checks before Grafana runs.
    grafana = COMPOSE["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    guard = grafana["entrypoint"][-1]
    assert guard.startswith('[ -n "$$GF_SECURITY_ADMIN_PASSWORD" ] || {') and guard.endswith("exec /run.sh")


@pytest.mark.parametrize("password", ["plain", "p@ss/w:rd?#%"])
def test_the_postgres_password_reaches_the_bot_apart_from_the_url(password):
    bot = COMPOSE["services"]["bot"]["environment"]
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert bot["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    assert bot["DATABASE_URL"] == f"postgresql://{postgres['POSTGRES_USER']}@postgres:5432/{postgres['POSTGRES_DB']}"
    # What the bot reads from it, whatever the password holds: the stack's host, the password as a secret.
    config = load_config({**TOKENS, "DATABASE_URL": bot["DATABASE_URL"], "PGPASSWORD": password})
    assert config.database_url == bot["DATABASE_URL"] and config.database_password is not None
    assert config.database_password.reveal() == password
    assert password in set(bot_module.secret_values(config))  # scrubbed from every log line


def docker_compose() -> list[str] | None:
    """`docker compose` (or docker-compose) when installed here, else None."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) and subprocess.run([*command, "version"], capture_output=True).returncode == 0:
            return command
    return None


@pytest.mark.skipif(docker_compose() is None, reason="docker compose is not installed here")
def test_docker_compose_config_accepts_the_three_secrets_and_passes_every_variable(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    env.update(DISCORD_TOKEN="d", IONOS_API_TOKEN="i", POSTGRES_PASSWORD="p@ss/w:rd", PUBLIC_URL="https://r.example")
    command = docker_compose()
    assert command is not None
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    environment = json.loads(result.stdout)["services"]["bot"]["environment"]
    assert set(environment) == read_variables(dict(TOKENS))
    assert (environment["PUBLIC_URL"], environment["PGPASSWORD"]) == ("https://r.example", "p@ss/w:rd")


def test_every_image_is_pinned_to_an_exact_version():
    for name, service in COMPOSE["services"].items():
        if "build" in service:
            continue  # built here from the Dockerfile, whose bases are pinned (below)
        image = service["image"]
        tag = image.partition(":")[2]
        # A full version (15.10, v2.53.0, 11.1.0), never a moving one such as 15-alpine or latest.
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z]+\d+(\.\d+)*)?", tag), (name, image)


def test_no_anonymous_volume_and_the_readme_says_when_passwords_take_effect():
    assert not re.search(r"^VOLUME", DOCKERFILE, re.MULTILINE)  # every container of the stack would get one
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            assert ":" in volume, volume  # named or bound, never anonymous
    readme = (ROOT / "README.md").read_text()
    assert "only when its volume is first created" in readme


async def test_the_image_healthcheck_says_why_it_cannot_ask_with_http_port_0():
    command = healthcheck_command()
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], env={"HTTP_PORT": "0"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert (process.returncode, stderr) == (0, b"")
    assert stdout.decode().strip() == (
        "HTTP_PORT=0: no /readyz to ask, so readiness is not checked; set HTTP_PORT to check it"
    )


# ----------------------------------------------------------------------------- make, on a newcomer's machine


def make(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make -n` (nothing is run) in a copy of the Makefile, so a test never touches the project's venv."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        if not (tmp_path / name).exists():  # copied once: a fresh copy would be newer than the venv's stamps
            shutil.copy(ROOT / name, tmp_path / name)
    # Not as a sub-make of `make test` (CI): its MAKEFLAGS would have this make print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    return subprocess.run(["make", "-n", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_make_refuses_a_python_older_than_3_11_before_installing_anything(tmp_path):
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\ncase "$2" in *platform*) echo 3.9.18 ;; *) echo False ;; esac\n')
    old.chmod(0o755)
    result = make(tmp_path, "run", f"PYTHON={old}")
    assert result.returncode != 0 and result.stdout == ""
    assert (
        f"Python 3.11 or newer is needed; {old} is Python 3.9.18. Name another with PYTHON=python3.11 (or newer)"
        in result.stderr
    )


def test_make_rebuilds_a_venv_another_interpreter_made(tmp_path):
    version = platform.python_version()
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv/.made-by-python-3.9.18").touch()  # an older Python's failed first try
    (tmp_path / ".venv/.runtime").touch()
    commands = make(tmp_path, "run", f"PYTHON={sys.executable}").stdout.splitlines()
    assert commands[:3] == ["rm -rf .venv", f"{sys.executable} -m venv .venv", f"touch .venv/.made-by-python-{version}"]
    assert ".venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements.txt" in commands
    # Made by this interpreter and installed: nothing to do but run.
    (tmp_path / f".venv/.made-by-python-{version}").touch()
    os.utime(tmp_path / ".venv/.runtime")
    assert make(tmp_path, "run", f"PYTHON={sys.executable}").stdout.splitlines() == [".venv/bin/python bot.py"]


def test_make_run_installs_the_runtime_lock_only():
    """requirements.txt holds what the bot imports, and what those need: no test or development tool."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: \$\(VENV\)/\.runtime$", makefile, re.MULTILINE)
    assert re.search(r"^check: \$\(VENV\)/\.runtime$", makefile, re.MULTILINE)
    assert re.search(r"^sync: \$\(VENV\)/\.runtime$", makefile, re.MULTILINE)
    runtime = set(re.findall(r"^([\w.-]+)==", (ROOT / "requirements.txt").read_text(), re.MULTILINE))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tools = {
        canonicalize_name(Requirement(r).name)
        for extra in ("test", "dev")
        for r in project["optional-dependencies"][extra]
    }
    assert not tools & {canonicalize_name(name) for name in runtime}
    assert len(runtime) <= 25, sorted(runtime)
