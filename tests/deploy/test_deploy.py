"""The stack files Docker would run (Docker is not available here): parsed and checked against the bot itself."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
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
from services.outside.metrics import Metrics
from services.outside.web import WebServer
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
    assert postgres["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert bot["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]  # named, so `docker compose down` keeps the data
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql://retouch:${POSTGRES_PASSWORD")
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
